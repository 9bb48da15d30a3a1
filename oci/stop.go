package oci

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// killWait bounds the wait for an exit after SIGKILL when ctx has no deadline.
const killWait = time.Minute

// Kill sends sig to container c's init process through the runtime.
func (r *Runtime) Kill(ctx context.Context, c *Container, sig syscall.Signal) error {
	if err := c.validate(); err != nil {
		return err
	}
	_, err := r.runtimeCmd(ctx, c.ID, nil, "kill", c.ID, strconv.Itoa(int(sig)))
	return err
}

// StopContainer sends stopSignal (SIGTERM if 0) to container c, waits up to
// timeout for it to exit, then sends SIGKILL and waits for the exit. It
// succeeds at once for a container that already exited or does not exist.
// A timeout of 0 kills at once. A paused container is resumed first so it
// can handle the signal.
func (r *Runtime) StopContainer(ctx context.Context, c *Container, timeout time.Duration, stopSignal syscall.Signal) error {
	if err := c.validate(); err != nil {
		return err
	}
	if r.exited(c) {
		return nil
	}
	st, err := r.State(ctx, c)
	if isNotFound(err) {
		return nil
	}
	if err == nil && st.Status == "paused" {
		if err := r.Resume(ctx, c); err != nil {
			r.log.WarnContext(ctx, "resume paused container before stop", "container", c.ID, "error", err)
		}
	}
	if stopSignal == 0 {
		stopSignal = syscall.SIGTERM
	}
	if timeout > 0 && stopSignal != syscall.SIGKILL {
		if err := r.Kill(ctx, c, stopSignal); err != nil {
			if gone(err) {
				// Exiting on its own: wait for conmon to write the exit
				// down, so the caller reads the real code.
				if r.waitExited(ctx, c, killWait) {
					return nil
				}
				return fmt.Errorf("stop container %s: no exit after the runtime said it is gone: %w", c.ID, errdefs.ErrDeadlineExceeded)
			}
			r.log.WarnContext(ctx, "stop signal failed, killing", "container", c.ID, "signal", stopSignal, "error", err)
		} else if r.waitExited(ctx, c, timeout) {
			r.log.InfoContext(ctx, "stopped container", "container", c.ID, "signal", stopSignal)
			return nil
		} else {
			r.log.InfoContext(ctx, "container ignored its stop signal, killing", "container", c.ID, "signal", stopSignal, "timeout", timeout)
		}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("stop container %s: %w", c.ID, ctxErr(ctx))
	}
	if err := r.Kill(ctx, c, syscall.SIGKILL); err != nil && !gone(err) {
		// The runtime may have lost the container; kill the process itself.
		pid, perr := r.InitPid(c)
		if perr != nil || !conmon.ProcessAlive(pid) {
			return err
		}
		if kerr := syscall.Kill(pid, syscall.SIGKILL); kerr != nil && !errors.Is(kerr, syscall.ESRCH) {
			return fmt.Errorf("kill container %s: %w", c.ID, errors.Join(err, kerr))
		}
	}
	if !r.waitExited(ctx, c, killWait) {
		return fmt.Errorf("stop container %s: still running after SIGKILL: %w", c.ID, errdefs.ErrDeadlineExceeded)
	}
	r.log.InfoContext(ctx, "killed container", "container", c.ID)
	return nil
}

// gone reports whether a runtime error says the container is not running.
func gone(err error) bool {
	return errors.Is(err, errdefs.ErrNotFound) || errors.Is(err, errdefs.ErrFailedPrecondition)
}
