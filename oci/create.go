package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// CreateContainer launches conmon, which runs `<runtime> create` on c's
// bundle, and returns the container's init pid. The container is then
// "created": its process exists but waits for StartContainer. conmon is
// daemonised (own session, no inherited fds) and survives Berth.
//
// On failure nothing is left: conmon, runtime state, conmon's cgroup and
// files are removed again. An id that is still in use is ErrAlreadyExists.
func (r *Runtime) CreateContainer(ctx context.Context, c *Container) (pid int, retErr error) {
	if err := c.validate(); err != nil {
		return 0, err
	}
	if c.BundleDir == "" || c.LogPath == "" {
		return 0, fmt.Errorf("create container %s: bundle and log path are required: %w", c.ID, errdefs.ErrInvalidArgument)
	}
	if l := len(r.AttachSocketPath(c)); l > maxSocketPath {
		r.log.WarnContext(ctx, "attach socket path too long to dial directly", "container", c.ID, "length", l)
	}
	if err := r.preparePersistDir(ctx, c); err != nil {
		return 0, err
	}
	start := time.Now()
	defer func() { r.observe("conmon_create", time.Since(start), retErr) }() // metrics hook, see observe.go
	_, logErr := os.Stat(c.LogPath)
	defer func() {
		if retErr == nil {
			return
		}
		// Keep the caller's error; the undo logs its own failures.
		if err := r.DeleteContainer(context.WithoutCancel(ctx), c); err != nil {
			r.log.WarnContext(ctx, "undo failed container create", "container", c.ID, "error", err)
		}
		if errors.Is(logErr, os.ErrNotExist) {
			_ = os.Remove(c.LogPath)
		}
	}()

	stderr, err := os.Create(r.conmonStderr(c))
	if err != nil {
		return 0, fmt.Errorf("create container %s: %w", c.ID, err)
	}
	defer stderr.Close()

	args := r.conmon.CreateArgv(conmon.CreateArgs{
		ID:               c.ID,
		Name:             c.Name,
		Bundle:           c.BundleDir,
		PersistDir:       r.PersistDir(c),
		ExitDir:          r.ExitDir(),
		SocketDir:        r.socketDir(),
		ConmonPidFile:    r.conmonPidFile(c),
		ContainerPidFile: r.initPidFile(c),
		LogPath:          c.LogPath,
		LogSizeMax:       c.LogSizeMax,
		Terminal:         c.Terminal,
		Stdin:            c.Stdin,
		StdinOnce:        c.StdinOnce,
	})
	r.log.DebugContext(ctx, "starting conmon", "container", c.ID, "args", args)
	p, err := conmon.Start(conmon.Cmd{
		Path:   r.cfg.ConmonPath,
		Args:   args,
		Dir:    r.PersistDir(c),
		Stderr: stderr,
		Place:  func(pid int) error { return r.placeConmon(c, pid) },
	})
	if err != nil {
		return 0, fmt.Errorf("create container %s: %w", c.ID, err)
	}
	defer p.Close()
	launched := time.Now()
	// The process started forks the daemon and exits at once.
	if err := p.Wait(); err != nil {
		return 0, fmt.Errorf("create container %s: conmon: %s: %w", c.ID, r.readConmonStderr(c), err)
	}
	forked := time.Now()

	waitCtx, cancel := context.WithTimeout(ctx, r.cfg.CreateTimeout)
	defer cancel()
	msg, err := p.Next(waitCtx)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return 0, fmt.Errorf("create container %s: no pid from conmon in time: %w", c.ID, ctxErr(waitCtx))
	case errors.Is(err, io.EOF):
		return 0, fmt.Errorf("create container %s: conmon exited without reporting a pid: %s", c.ID, r.readConmonStderr(c))
	case err != nil:
		return 0, fmt.Errorf("create container %s: %w", c.ID, err)
	case msg.Data <= 0:
		text := runtimeMessage(msg.Message)
		if kind := classify(text); kind != nil {
			return 0, fmt.Errorf("create container %s: %s: %w", c.ID, text, kind)
		}
		return 0, fmt.Errorf("create container %s: %s", c.ID, text)
	}
	r.log.DebugContext(ctx, "conmon create steps", "container", c.ID, "launch", launched.Sub(start),
		"daemonise", forked.Sub(launched), "runtime_create", time.Since(forked))
	r.log.InfoContext(ctx, "created container", "container", c.ID, "pid", msg.Data)
	return msg.Data, nil
}

// preparePersistDir creates c's persist dir. A leftover one from an earlier
// container with the same id is cleared, unless that container still exists.
func (r *Runtime) preparePersistDir(ctx context.Context, c *Container) error {
	dir := r.PersistDir(c)
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create container %s: %w", c.ID, err)
	}
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		// A stale exit file would make the new container look exited.
		if err := os.Remove(r.ExitFile(c)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("create container %s: %w", c.ID, err)
		}
		return nil
	}
	if !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("create container %s: %w", c.ID, err)
	}
	if r.IsConmonAlive(c) {
		return fmt.Errorf("create container %s: %w", c.ID, errdefs.ErrAlreadyExists)
	}
	if _, err := r.State(ctx, c); err == nil {
		return fmt.Errorf("create container %s: %w", c.ID, errdefs.ErrAlreadyExists)
	}
	r.log.InfoContext(ctx, "clearing leftovers of an earlier container", "container", c.ID)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("create container %s: %w", c.ID, err)
	}
	return r.preparePersistDir(ctx, c)
}

func (r *Runtime) readConmonStderr(c *Container) string {
	b, _ := os.ReadFile(r.conmonStderr(c))
	if s := conmonErrors(string(b)); s != "" {
		return s
	}
	return "no output"
}

// StartContainer starts the created container c's init process.
func (r *Runtime) StartContainer(ctx context.Context, c *Container) error {
	if err := c.validate(); err != nil {
		return err
	}
	if _, err := r.runtimeCmd(ctx, c.ID, nil, "start", c.ID); err != nil {
		return err
	}
	r.log.InfoContext(ctx, "started container", "container", c.ID)
	return nil
}
