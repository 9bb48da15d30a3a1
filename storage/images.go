// Package storage owns containers/storage. Open opens it once and splits it,
// as CRI-O does, into an ImageService (pulls, lookup, listing, removal, fs
// usage, image mounts for image volumes) and a RootfsService (container root
// filesystems and their writable layers).
//
// The daemon's main must start with `if reexec.Init() { return }`
// (go.podman.io/storage/pkg/reexec): the overlay driver and layer extraction
// re-execute the binary for some steps.
package storage

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	cstorage "go.podman.io/storage"
)

// Options configure the store and its services.
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
	// PullObserver is told of every pull; nil tells no one.
	PullObserver PullObserver
	Logger       *slog.Logger
}

// ImageService pulls, looks up, lists and removes images, measures the
// storage filesystems and mounts images for image volumes.
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

// newImageService is the image service on an opened store.
func newImageService(opts Options, log *slog.Logger, store cstorage.Store) *ImageService {
	s := &ImageService{
		opts:   opts,
		log:    log,
		store:  store,
		pulls:  newPullTracker(),
		config: configCache{entries: map[string]configEntry{}, names: map[string]namesEntry{}},
	}
	s.sweep = &layerSweeper{store: store, log: log}
	s.live.Store(opts.reloadable())
	return s
}

// configCache remembers image configs and sizes by image id: both are fixed
// for the life of an image, and ListImages would otherwise re-read every
// image's manifest and config on each call. It also remembers what each
// image's names parse to, checked against the names on every use.
//
// Another tool may share the store (podman, skopeo): every call still reads
// the image record from containers/storage, which reloads it when any
// process changed the store, so names, tags and removals by others show at
// once. Only what an image id fixes is trusted from memory: the config (the
// id is its digest) and the size (its layers are immutable; a signature
// another tool adds later is not counted until the image is pulled again).
type configCache struct {
	mu      sync.Mutex
	entries map[string]configEntry
	names   map[string]namesEntry
}
