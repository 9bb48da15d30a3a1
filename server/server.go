// Package server implements the CRI RuntimeService and ImageService. Handlers
// are thin: they validate the request and call into the package that owns the
// resource (storage, network, oci, conmon). Errors are returned as plain
// wrapped errors; instrument.go maps them to gRPC codes in one place.
package server

import (
	"log/slog"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/config"
	"github.com/berth-dev/berth/storage"
)

// Server is Berth's CRI server. Calls it does not implement yet are answered
// with codes.Unimplemented by the embedded Unimplemented servers.
type Server struct {
	runtime.UnimplementedRuntimeServiceServer
	runtime.UnimplementedImageServiceServer

	config     *config.Config
	configPath string
	images     *storage.ImageService
	log        *slog.Logger
}

// New builds a server on opened subsystems.
func New(cfg *config.Config, configPath string, images *storage.ImageService, log *slog.Logger) *Server {
	return &Server{config: cfg, configPath: configPath, images: images, log: log}
}
