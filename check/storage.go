package check

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/config"
)

// overlay checks that the overlay storage driver can work where the
// storage root is: the kernel knows overlay, and a real overlay mount
// succeeds on that filesystem (overlay on overlay, for one, does not).
func overlay(cfg *config.Config, host Host) Result {
	const name = "overlay"
	driver := cfg.Storage.Driver
	if driver == "vfs" {
		return ok(name, "not needed: storage.driver is vfs")
	}
	// An empty driver falls back to vfs, which works but copies every
	// layer: worth a warning, not a failure.
	status, fallback := Fail, ""
	if driver == "" {
		status, fallback = Warn, " (berth falls back to vfs: slow, and every layer is a full copy)"
	}
	known, err := kernelHasFS(host.ProcFilesystems, "overlay")
	if err != nil {
		return Result{Name: name, Status: status, Detail: fmt.Sprintf("read %s: %v", host.ProcFilesystems, err) + fallback,
			Fix: "mount /proc"}
	}
	if host.MountOverlay == nil {
		if !known {
			return Result{Name: name, Status: status, Detail: "overlay is not in " + host.ProcFilesystems + fallback,
				Fix: "`modprobe overlay` (and add overlay to /etc/modules-load.d/berth.conf)"}
		}
		return ok(name, "the kernel has overlay; a test mount needs root and was not tried")
	}
	base := nearestDir(filepath.Dir(cfg.Storage.Root))
	dir, err := os.MkdirTemp(base, ".berth-check-overlay-")
	if err != nil {
		return Result{Name: name, Status: status, Detail: fmt.Sprintf("cannot try a mount: %v", err) + fallback,
			Fix: fmt.Sprintf("make %s writable", base)}
	}
	defer os.RemoveAll(dir)
	if err := host.MountOverlay(dir); err != nil {
		fix := "put storage.root on a filesystem overlay accepts as upper dir (ext4, xfs), or set storage.driver = \"vfs\""
		if !known {
			fix = "`modprobe overlay` (and add overlay to /etc/modules-load.d/berth.conf), or set storage.driver = \"vfs\""
		}
		return Result{Name: name, Status: status, Fix: fix,
			Detail: fmt.Sprintf("an overlay mount in %s failed: %v", base, err) + fallback}
	}
	return ok(name, "an overlay mount in %s works", base)
}

// kernelHasFS reports whether /proc/filesystems lists fs.
func kernelHasFS(procFilesystems, fs string) (bool, error) {
	f, err := os.Open(procFilesystems)
	if err != nil {
		return false, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 0 && fields[len(fields)-1] == fs {
			return true, nil
		}
	}
	return false, sc.Err()
}

// mountOverlay mounts an overlay of a lower and an upper dir under dir,
// writes through it and unmounts it.
func mountOverlay(dir string) error {
	var paths []string
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		p := filepath.Join(dir, d)
		if err := os.Mkdir(p, 0o700); err != nil {
			return err
		}
		paths = append(paths, p)
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", paths[0], paths[1], paths[2])
	if err := unix.Mount("overlay", paths[3], "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount -t overlay -o %s: %w", opts, err)
	}
	werr := os.WriteFile(filepath.Join(paths[3], "probe"), []byte("berth"), 0o600)
	if err := unix.Unmount(paths[3], unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount test overlay %s: %w", paths[3], err)
	}
	if werr != nil {
		return fmt.Errorf("write through overlay: %w", werr)
	}
	return nil
}

// storagePaths checks that the daemon can create or write its directories.
func storagePaths(cfg *config.Config) []Result {
	return []Result{
		writableDir("storage root", cfg.Storage.Root, "storage.root"),
		writableDir("storage runroot", cfg.Storage.RunRoot, "storage.runroot"),
		writableDir("state dir", cfg.Runtime.StateDir, "runtime.state_dir"),
		writableDir("run dir", cfg.Runtime.RunDir, "runtime.run_dir"),
		writableDir("socket dir", filepath.Dir(cfg.API.Listen), "api.listen"),
	}
}

// writableDir checks that path is a writable directory or, when missing,
// that its nearest existing parent is one, so the daemon can create it.
func writableDir(name, path, key string) Result {
	fi, err := os.Stat(path)
	switch {
	case err == nil && !fi.IsDir():
		return fail(name, fmt.Sprintf("move %s away, or set %s", path, key), "%s is not a directory", path)
	case err == nil:
		if err := unix.Access(path, unix.W_OK); err != nil {
			return fail(name, fmt.Sprintf("make %s writable (a read-only mount?), or set %s", path, key), "%s is not writable: %v", path, err)
		}
		return ok(name, "%s exists and is writable", path)
	case !errors.Is(err, os.ErrNotExist):
		return fail(name, fmt.Sprintf("fix the permissions of %s, or set %s", path, key), "%v", err)
	}
	parent := nearestDir(path)
	fi, err = os.Stat(parent)
	switch {
	case err != nil:
		return fail(name, fmt.Sprintf("set %s", key), "%v", err)
	case !fi.IsDir():
		return fail(name, fmt.Sprintf("move %s away, or set %s", parent, key), "%s does not exist and %s is not a directory", path, parent)
	}
	if err := unix.Access(parent, unix.W_OK); err != nil {
		return fail(name, fmt.Sprintf("`mkdir -p %s`, or set %s to a writable place", path, key),
			"%s does not exist and cannot be created: %s is not writable: %v", path, parent, err)
	}
	return ok(name, "%s does not exist yet; berth creates it under %s, which is writable", path, parent)
}

// nearestDir returns path or its closest ancestor that exists.
func nearestDir(path string) string {
	for {
		if _, err := os.Lstat(path); err == nil {
			return path
		}
		parent := filepath.Dir(path)
		if parent == path {
			return path
		}
		path = parent
	}
}
