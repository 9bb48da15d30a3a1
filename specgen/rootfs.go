package specgen

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var errNotDir = unix.ENOTDIR

// resolveIn resolves the in-container path p against root, following every
// symlink as if root were "/", and returns the result as an absolute
// in-container path without symlinks (as of now).
func resolveIn(root, p string) (string, error) {
	root = filepath.Clean(root)
	full, err := securejoin.SecureJoin(root, p)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(root, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q resolves outside the rootfs", p)
	}
	return path.Join("/", rel), nil
}

func openRoot(root string) (*os.File, error) {
	return os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// ensureDir resolves p inside root and creates it (and its parents) if
// missing. pathrs walks from an open handle of root and never follows a
// symlink out of it, even one swapped in after resolveIn. A directory that
// did not exist before is given to owner, when owner is not root.
func ensureDir(root, p string, mode os.FileMode, owner *specs.User) (string, error) {
	resolved, err := resolveIn(root, p)
	if err != nil {
		return "", err
	}
	rootDir, err := openRoot(root)
	if err != nil {
		return "", err
	}
	defer rootDir.Close()
	existed := false
	if h, err := pathrs.OpenatInRoot(rootDir, resolved); err == nil {
		existed = true
		h.Close()
	}
	h, err := pathrs.MkdirAllHandle(rootDir, resolved, mode)
	if err != nil {
		return "", err
	}
	defer h.Close()
	if !existed && owner != nil && (owner.UID != 0 || owner.GID != 0) {
		if err := unix.Fchownat(int(h.Fd()), "", int(owner.UID), int(owner.GID), unix.AT_EMPTY_PATH); err != nil {
			return "", fmt.Errorf("chown %s: %w", resolved, err)
		}
	}
	return resolved, nil
}

// ensureFile resolves p inside root and creates an empty file there if
// nothing exists yet, to serve as the target of a file bind mount.
func ensureFile(root, p string) (string, error) {
	resolved, err := resolveIn(root, p)
	if err != nil {
		return "", err
	}
	dir, base := path.Split(resolved)
	if base == "" {
		return "", fmt.Errorf("%q resolves to the rootfs itself", p)
	}
	rootDir, err := openRoot(root)
	if err != nil {
		return "", err
	}
	defer rootDir.Close()
	h, err := pathrs.MkdirAllHandle(rootDir, dir, 0o755)
	if err != nil {
		return "", err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(int(h.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return resolved, nil // whatever is there, the runtime judges it
	}
	fd, err := unix.Openat(int(h.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return "", fmt.Errorf("create %s: %w", resolved, err)
	}
	unix.Close(fd)
	return resolved, nil
}

// statInRoot stats p inside root without following symlinks out of it.
func statInRoot(root, p string) (unix.Stat_t, error) {
	var st unix.Stat_t
	h, err := pathrs.OpenInRoot(root, p)
	if err != nil {
		return st, err
	}
	defer h.Close()
	err = unix.Fstat(int(h.Fd()), &st)
	return st, err
}

// readFileInRoot reads the regular file p inside root (at most 4 MiB).
// A missing file, or anything but a regular file (a device node or FIFO an
// image could plant), reads as empty.
func readFileInRoot(root, p string) ([]byte, error) {
	h, err := pathrs.OpenInRoot(root, p)
	if err != nil {
		if isNotExist(err) || errors.Is(err, unix.ELOOP) {
			return nil, nil
		}
		return nil, err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(h.Fd()), &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, nil
	}
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4<<20))
}
