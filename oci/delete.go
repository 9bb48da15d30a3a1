package oci

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/conmon"
)

// conmonExitWait is how long DeleteContainer lets conmon drain the logs and
// write the exit file after the container died before killing conmon.
const conmonExitWait = 2 * time.Second

// DeleteContainer removes container c: `<runtime> delete --force` (which
// kills a container still running), then conmon, its cgroup, its files and
// the exit file. It is idempotent: a container unknown to the runtime, or
// already deleted, is success.
func (r *Runtime) DeleteContainer(ctx context.Context, c *Container) error {
	if err := c.validate(); err != nil {
		return err
	}
	if _, err := r.runtimeCmd(ctx, c.ID, nil, "delete", "--force", c.ID); err != nil && !isNotFound(err) {
		return err
	}
	if err := r.stopConmon(ctx, c); err != nil {
		return err
	}
	if err := r.removeConmonCgroup(c); err != nil {
		return err
	}
	var errs []error
	if c.BundleDir != "" { // unknown for leftovers found at start-up; never resolve against the cwd
		for _, name := range conmon.BundleFiles {
			errs = append(errs, removeFile(filepath.Join(c.BundleDir, name)))
		}
	}
	errs = append(errs,
		removeFile(filepath.Join(r.socketDir(), c.ID)),
		removeFile(r.ExitFile(c)),
		os.RemoveAll(r.PersistDir(c)),
	)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete container %s: %w", c.ID, err)
	}
	r.log.InfoContext(ctx, "deleted container", "container", c.ID)
	return nil
}

// stopConmon waits a moment for container c's conmon to exit on its own
// (its container is gone), then kills it and waits until it is gone.
func (r *Runtime) stopConmon(ctx context.Context, c *Container) error {
	pid, err := r.ConmonPid(c)
	if err != nil {
		return nil // never started, or already cleaned up
	}
	if waitGone(ctx, pid, c.ID, conmonExitWait) {
		return nil
	}
	r.log.WarnContext(ctx, "conmon outlived its container, killing it", "container", c.ID, "pid", pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill conmon of container %s: %w", c.ID, err)
	}
	if !waitGone(ctx, pid, c.ID, conmonExitWait) {
		return fmt.Errorf("conmon of container %s (pid %d) survives SIGKILL", c.ID, pid)
	}
	return nil
}

func waitGone(ctx context.Context, pid int, id string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	// conmon usually exits within a millisecond or two of its container:
	// poll fast at first, then back off, so a remove does not wait a
	// whole coarse tick for it.
	wait := 500 * time.Microsecond
	for conmon.IsConmon(pid, id) {
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
	return true
}

func removeFile(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}
