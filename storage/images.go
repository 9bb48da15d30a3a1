// Package storage owns containers/storage: image pulls, listing and removal,
// and (later) container root filesystems.
//
// The daemon's main must start with `if reexec.Init() { return }`
// (go.podman.io/storage/pkg/reexec): the overlay driver and layer extraction
// re-execute the binary for some steps.
package storage

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cstorage "go.podman.io/storage"
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
	opts   Options
	log    *slog.Logger
	store  cstorage.Store
	pulls  *pullTracker
	sweep  *layerSweeper
	fs     fsInfoCache
	config configCache
	// live holds the settings SIGHUP may change; readers Load it once per use.
	live atomic.Pointer[Reloadable]
}

// New opens the image store.
func New(opts Options) (*ImageService, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	store, err := openStore(opts, log)
	if err != nil {
		return nil, err
	}
	s := &ImageService{
		opts:   opts,
		log:    log,
		store:  store,
		pulls:  newPullTracker(),
		config: configCache{entries: map[string]configEntry{}},
	}
	s.sweep = &layerSweeper{store: store, log: log}
	s.live.Store(opts.reloadable())
	return s, nil
}

// Store is the underlying containers/storage store, for the code that builds
// container root filesystems on top of images.
func (s *ImageService) Store() cstorage.Store { return s.store }

// Driver is the storage driver in use (after any fallback).
func (s *ImageService) Driver() string { return s.store.GraphDriverName() }

// Shutdown releases the store (unmounts layers held by Berth).
func (s *ImageService) Shutdown() error {
	if _, err := s.store.Shutdown(false); err != nil {
		return fmt.Errorf("shut down storage at %s: %w", s.opts.Root, err)
	}
	return nil
}

// configCache remembers image configs and sizes by image id: both are fixed
// for the life of an image, and ListImages would otherwise re-read every
// image's manifest and config on each call.
type configCache struct {
	mu      sync.Mutex
	entries map[string]configEntry
}
