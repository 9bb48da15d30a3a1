package storage

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"go.podman.io/image/v5/types"
	cstorage "go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	stypes "go.podman.io/storage/types"
)

const (
	driverOverlay = "overlay"
	driverVFS     = "vfs"
)

// Storage is containers/storage opened once and the two services on it:
// Images for what the CRI ImageService does and image volumes, Rootfs for
// container root filesystems. The store itself stays inside the package.
type Storage struct {
	Images *ImageService
	Rootfs *RootfsService

	store cstorage.Store
	root  string
}

// Open opens containers/storage at opts.Root and opts.RunRoot.
func Open(opts Options) (*Storage, error) {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	store, err := openStore(opts, log)
	if err != nil {
		return nil, err
	}
	return &Storage{
		Images: newImageService(opts, log, store),
		Rootfs: &RootfsService{store: store},
		store:  store,
		root:   opts.Root,
	}, nil
}

// Driver is the storage driver in use (after any fallback).
func (s *Storage) Driver() string { return s.store.GraphDriverName() }

// Shutdown releases the store (unmounts layers held by Berth).
func (s *Storage) Shutdown() error {
	if _, err := s.store.Shutdown(false); err != nil {
		return fmt.Errorf("shut down storage at %s: %w", s.root, err)
	}
	return nil
}

// imagesDir and containersDir are where the graph driver keeps image
// layers and containers' writable layers.
func imagesDir(store cstorage.Store) string {
	return filepath.Join(store.GraphRoot(), store.GraphDriverName()+"-images")
}

func containersDir(store cstorage.Store) string {
	return filepath.Join(store.GraphRoot(), store.GraphDriverName()+"-containers")
}

// openStore opens containers/storage at opts.Root and opts.RunRoot. An empty
// driver picks overlay, unless the root already holds only vfs state, and
// falls back to vfs (with a warning) when overlay cannot be used there.
func openStore(opts Options, log *slog.Logger) (cstorage.Store, error) {
	if opts.Root == "" || opts.RunRoot == "" {
		return nil, fmt.Errorf("open storage: root and runroot must be set")
	}
	driver := opts.Driver
	if driver != "" {
		return getStore(opts, driver, opts.DriverOptions)
	}
	prior := graphdriver.ScanPriorDrivers(opts.Root)
	if _, vfs := prior[driverVFS]; vfs {
		if _, overlay := prior[driverOverlay]; !overlay {
			return getStore(opts, driverVFS, driverOptionsFor(driverVFS, opts.DriverOptions))
		}
	}
	store, err := getStore(opts, driverOverlay, driverOptionsFor(driverOverlay, opts.DriverOptions))
	if err == nil {
		return store, nil
	}
	log.Warn("overlay storage driver unusable, falling back to vfs", "root", opts.Root, "error", err)
	return getStore(opts, driverVFS, driverOptionsFor(driverVFS, opts.DriverOptions))
}

func getStore(opts Options, driver string, driverOpts []string) (cstorage.Store, error) {
	for _, dir := range []string{opts.Root, opts.RunRoot} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("open storage: %w", err)
		}
	}
	store, err := cstorage.GetStore(stypes.StoreOptions{
		GraphRoot:          opts.Root,
		RunRoot:            opts.RunRoot,
		GraphDriverName:    driver,
		GraphDriverOptions: driverOpts,
	})
	if err != nil {
		return nil, fmt.Errorf("open storage at %s with driver %s: %w", opts.Root, driver, err)
	}
	return store, nil
}

// driverOptionsFor keeps the options meant for driver ("overlay.x=y") and
// those without a driver prefix.
func driverOptionsFor(driver string, all []string) []string {
	var out []string
	for _, o := range all {
		key, _, _ := strings.Cut(o, "=")
		prefix, _, scoped := strings.Cut(key, ".")
		if !scoped || prefix == driver || (driver == driverOverlay && prefix == "overlay2") {
			out = append(out, o)
		}
	}
	return out
}

// systemContext is the c/image context shared by pulls and local name
// resolution: registries.conf (and its drop-in directory next to it), the
// signature policy and the auth file.
func (s *ImageService) systemContext() *types.SystemContext {
	live := s.live.Load()
	sys := &types.SystemContext{
		SignaturePolicyPath: live.SignaturePolicy,
		AuthFilePath:        s.authFilePath(live),
	}
	if live.RegistriesConf != "" {
		sys.SystemRegistriesConfPath = live.RegistriesConf
		sys.SystemRegistriesConfDirPath = live.RegistriesConf + ".d"
	}
	// Kubelet never answers a prompt: resolve short names to every
	// candidate, as CRI-O does, whatever short-name-mode says.
	mode := types.ShortNameModeDisabled
	sys.ShortNameMode = &mode
	return sys
}

// authFilePath is the configured auth file or, when none is configured, a
// path that never exists, so that no credentials are picked up from $HOME.
func (s *ImageService) authFilePath(live *Reloadable) string {
	if live.AuthFile != "" {
		return live.AuthFile
	}
	return s.opts.RunRoot + "/berth-no-auth-file.json"
}
