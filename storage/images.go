// Package storage owns containers/storage: image pulls, listing and removal,
// and (later) container root filesystems.
package storage

import (
	"log/slog"
	"time"
)

// Options configure the image service.
type Options struct {
	Root                string
	RunRoot             string
	Driver              string
	DriverOptions       []string
	RegistriesConf      string
	SignaturePolicy     string
	AuthFile            string
	PauseImage          string
	PinnedImages        []string
	PullProgressTimeout time.Duration
	Logger              *slog.Logger
}

// ImageService pulls, lists and removes images in containers/storage.
type ImageService struct {
	opts Options
	log  *slog.Logger
}

// New opens the image store.
func New(opts Options) (*ImageService, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	return &ImageService{opts: opts, log: log}, nil
}

// Shutdown releases the store (unmounts layers held by Berth).
func (s *ImageService) Shutdown() error { return nil }
