package namespaces

import (
	"context"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Host is the node's side of pods' namespaces, with the pins under one
// directory: it pins and unpins them and mounts the /dev/shm tmpfs of a pod
// that has an IPC namespace of its own. All of it needs root, so the server
// holds a Host behind an interface and its logic runs without.
type Host struct {
	// Dir holds the pins, e.g. <rundir>/ns.
	Dir string
}

// Pin is Pin with the pins under h.Dir.
func (h Host) Pin(ctx context.Context, podID string, opts Options) (*Pinned, error) {
	opts.Dir = h.Dir
	return Pin(ctx, podID, opts)
}

// Unpin is Unpin.
func (h Host) Unpin(p *Pinned) error { return Unpin(p) }

// Remove is Remove under h.Dir.
func (h Host) Remove(podID string) error { return Remove(h.Dir, podID) }

// List is List under h.Dir.
func (h Host) List() ([]string, error) { return List(h.Dir) }

// PinPath is where the pin of podID's namespace of kind lives.
func (h Host) PinPath(kind, podID string) string { return PinPath(h.Dir, kind, podID) }

// IsPinned is IsPinned.
func (h Host) IsPinned(path string) bool { return IsPinned(path) }

// MountShm mounts a tmpfs of size bytes on path (made if missing), the
// /dev/shm the pod's containers share with its IPC namespace.
func (h Host) MountShm(path string, size int64) error {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return fmt.Errorf("create shm dir: %w", err)
	}
	opts := fmt.Sprintf("mode=1777,size=%d", size)
	if err := unix.Mount("shm", path, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mount shm tmpfs on %s: %w", path, err)
	}
	return nil
}

// UnmountShm releases a pod's /dev/shm; unmounting what is not mounted
// succeeds, so stop and remove can both call it.
func (h Host) UnmountShm(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount shm %s: %w", path, err)
	}
	return nil
}
