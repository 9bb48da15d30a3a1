package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// reopenWait bounds how long ReopenLog waits for conmon to recreate the log.
const reopenWait = 5 * time.Second

// UpdateResources applies res to container c's cgroup with
// `<runtime> update --resources <file>`.
func (r *Runtime) UpdateResources(ctx context.Context, c *Container, res *specs.LinuxResources) error {
	if err := c.validate(); err != nil {
		return err
	}
	if res == nil {
		return nil
	}
	b, err := json.Marshal(res)
	if err != nil {
		return fmt.Errorf("update container %s: encode resources: %w", c.ID, err)
	}
	// crun takes no "-" for stdin, so the resources go through a file.
	f, err := os.CreateTemp(r.PersistDir(c), "resources-*.json")
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("update container %s: %w", c.ID, errdefs.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("update container %s: %w", c.ID, err)
	}
	defer os.Remove(f.Name())
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("update container %s: %w", c.ID, err)
	}
	_, err = r.runtimeCmd(ctx, c.ID, nil, "update", "--resources", f.Name(), c.ID)
	return err
}

// ReopenLog asks container c's conmon to reopen its log file, as kubelet does
// after rotating it (renaming the old file away), and waits until the file
// exists again at c.LogPath. A container whose conmon is gone is
// errdefs.ErrFailedPrecondition.
func (r *Runtime) ReopenLog(ctx context.Context, c *Container) error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := conmon.ReopenLog(r.CtlPath(c)); err != nil {
		if errors.Is(err, conmon.ErrNoConmon) {
			return fmt.Errorf("reopen log of container %s: %w: %w", c.ID, errdefs.ErrFailedPrecondition, err)
		}
		return fmt.Errorf("reopen log of container %s: %w", c.ID, err)
	}
	deadline := time.Now().Add(reopenWait)
	for {
		if _, err := os.Stat(c.LogPath); err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("reopen log of container %s: %s not recreated: %w", c.ID, c.LogPath, errdefs.ErrDeadlineExceeded)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Resize sets the size of container c's terminal through conmon.
func (r *Runtime) Resize(c *Container, height, width uint16) error {
	if err := c.validate(); err != nil {
		return err
	}
	if err := conmon.Resize(r.CtlPath(c), height, width); err != nil {
		return fmt.Errorf("resize terminal of container %s: %w", c.ID, err)
	}
	return nil
}

// Resume thaws a paused container c; StopContainer resumes one before
// signalling it. Berth never pauses a container itself (CRI has no pause),
// but one may have been paused by hand with the runtime.
func (r *Runtime) Resume(ctx context.Context, c *Container) error {
	if err := c.validate(); err != nil {
		return err
	}
	_, err := r.runtimeCmd(ctx, c.ID, nil, "resume", c.ID)
	return err
}
