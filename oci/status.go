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
)

// ExitStatus is how a container's init process ended.
type ExitStatus struct {
	// Code is the exit code; 128+n after signal n.
	Code int32
	// Finished is when conmon recorded the exit.
	Finished time.Time
	// OOMKilled is set when the kernel OOM-killed a process of the container.
	OOMKilled bool
}

// State asks the runtime for container c's state ("created", "running",
// "paused", "stopped"). A container the runtime does not know is
// errdefs.ErrNotFound.
func (r *Runtime) State(ctx context.Context, c *Container) (*specs.State, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	out, err := r.runtimeCmd(ctx, c.ID, nil, "state", c.ID)
	if err != nil {
		return nil, err
	}
	var st specs.State
	if err := json.Unmarshal(out, &st); err != nil {
		return nil, fmt.Errorf("decode state of container %s: %w", c.ID, err)
	}
	return &st, nil
}

// Exit reads container c's exit status from the files conmon wrote. exited
// is false while the exit file does not exist. This works the same after a
// restart of Berth: the files outlive it.
//
// A container whose conmon is gone (IsConmonAlive false) without an exit
// file was lost, e.g. with a reboot or a killed conmon; CRI-O reports exit
// code 255 for those, and so should the caller.
func (r *Runtime) Exit(c *Container) (st ExitStatus, exited bool, err error) {
	if err := c.validate(); err != nil {
		return ExitStatus{}, false, err
	}
	code, finished, err := conmon.ReadExitFile(r.ExitFile(c))
	if errors.Is(err, os.ErrNotExist) {
		return ExitStatus{}, false, nil
	}
	if err != nil {
		return ExitStatus{}, false, fmt.Errorf("exit status of container %s: %w", c.ID, err)
	}
	_, oomErr := os.Stat(conmon.OOMFilePath(r.PersistDir(c)))
	return ExitStatus{Code: code, Finished: finished, OOMKilled: oomErr == nil}, true, nil
}

// ConmonPid reads the pid of container c's conmon from its pid file.
func (r *Runtime) ConmonPid(c *Container) (int, error) {
	pid, err := conmon.ReadPidFile(r.conmonPidFile(c))
	if err != nil {
		return 0, fmt.Errorf("conmon pid of container %s: %w", c.ID, err)
	}
	return pid, nil
}

// InitPid reads the pid of container c's init process from its pid file.
// The process may have exited since.
func (r *Runtime) InitPid(c *Container) (int, error) {
	pid, err := conmon.ReadPidFile(r.initPidFile(c))
	if err != nil {
		return 0, fmt.Errorf("init pid of container %s: %w", c.ID, err)
	}
	return pid, nil
}

// InitAlive reports whether container c's init process still runs; a
// zombie, which its conmon has yet to reap, does not count.
func (r *Runtime) InitAlive(c *Container) bool {
	pid, err := r.InitPid(c)
	return err == nil && conmon.ProcessAlive(pid)
}

// IsConmonAlive reports whether container c's conmon still runs. The pid
// from the pid file is checked against its command line, so a recycled pid
// does not count.
func (r *Runtime) IsConmonAlive(c *Container) bool {
	pid, err := r.ConmonPid(c)
	return err == nil && conmon.IsConmon(pid, c.ID)
}

// exited reports whether container c's init process is gone, from disk and
// /proc only: an exit file, or else no conmon and no init process.
func (r *Runtime) exited(c *Container) bool {
	if _, err := os.Stat(r.ExitFile(c)); err == nil {
		return true
	}
	if r.IsConmonAlive(c) {
		return false
	}
	pid, err := r.InitPid(c)
	return err != nil || !conmon.ProcessAlive(pid)
}

// waitExited polls until container c exited, d passed or ctx ended, and
// reports whether it exited.
func (r *Runtime) waitExited(ctx context.Context, c *Container, d time.Duration) bool {
	deadline := time.Now().Add(d)
	interval := 5 * time.Millisecond
	for {
		if r.exited(c) {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		t := time.NewTimer(min(interval, left))
		select {
		case <-ctx.Done():
			t.Stop()
			return r.exited(c)
		case <-t.C:
		}
		interval = min(2*interval, 100*time.Millisecond)
	}
}
