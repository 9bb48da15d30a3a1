package server

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/version"
)

// kubeAPIVersion is the version of the CRI the kubelet negotiates; Version's
// own request field is informational and ignored, as in CRI-O.
const kubeAPIVersion = "0.1.0"

// Version returns the runtime's name and versions.
func (s *Server) Version(ctx context.Context, req *runtime.VersionRequest) (*runtime.VersionResponse, error) {
	return &runtime.VersionResponse{
		Version:           kubeAPIVersion,
		RuntimeName:       version.Name,
		RuntimeVersion:    version.Version,
		RuntimeApiVersion: "v1",
	}, nil
}
