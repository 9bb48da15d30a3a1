package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// CreateContainer launches conmon, which runs `<runtime> create` on c's
// bundle, and returns the container's init pid: LaunchContainer and Create
// in one. The container is then "created": its process exists but waits
// for StartContainer. conmon is daemonised (own session, no inherited fds)
// and survives Berth.
//
// On failure nothing is left: conmon, runtime state, conmon's cgroup and
// files are removed again. An id that is still in use is ErrAlreadyExists.
func (r *Runtime) CreateContainer(ctx context.Context, c *Container) (int, error) {
	l, err := r.LaunchContainer(ctx, c)
	if err != nil {
		return 0, err
	}
	return l.Create(ctx)
}

// Launched is a container's conmon, started and being moved into its
// cgroup, waiting to run the runtime's create. Exactly one of Create and
// Abort must follow.
type Launched interface {
	// Create lets conmon run `<runtime> create` on the bundle, which must
	// be complete by now, and returns the container's init pid. On failure
	// nothing is left.
	Create(ctx context.Context) (pid int, err error)
	// Abort kills conmon and removes what the launch made. After Create it
	// does nothing: Create has undone its own failure, and a created
	// container is deleted with DeleteContainer.
	Abort(ctx context.Context) error
}

// LaunchContainer makes c's persist dir and starts its conmon, which waits
// to be let go while it is moved into its cgroup. On cgroup v1 that move
// waits out an RCU grace period of the kernel (about 20 ms on an idle
// 2-CPU machine, against 50 µs once one has passed): the caller overlaps
// it with the rootfs and the spec, and calls Create once they are in
// place. c.BundleDir must exist by then, not now; it may be PersistDir(c).
func (r *Runtime) LaunchContainer(ctx context.Context, c *Container) (Launched, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if c.BundleDir == "" || c.LogPath == "" {
		return nil, fmt.Errorf("create container %s: bundle and log path are required: %w", c.ID, errdefs.ErrInvalidArgument)
	}
	if l := len(r.AttachSocketPath(c)); l > maxSocketPath {
		r.log.WarnContext(ctx, "attach socket path too long to dial directly", "container", c.ID, "length", l)
	}
	if err := r.preparePersistDir(ctx, c); err != nil {
		return nil, err
	}
	l := &launch{r: r, c: c, start: time.Now(), placed: make(chan error, 1)}
	_, l.logErr = os.Stat(c.LogPath)
	stderr, err := os.Create(r.conmonStderr(c))
	if err != nil {
		l.undo(ctx)
		return nil, fmt.Errorf("create container %s: %w", c.ID, err)
	}
	defer stderr.Close() // conmon has its own copy

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
	if l.p, err = conmon.Launch(conmon.Cmd{Path: r.cfg.ConmonPath, Args: args, Dir: r.PersistDir(c), Stderr: stderr}); err != nil {
		l.undo(ctx)
		r.observe("conmon_create", time.Since(l.start), err)
		return nil, fmt.Errorf("create container %s: %w", c.ID, err)
	}
	l.launched = time.Now()
	go func() { l.placed <- r.placeConmon(c, l.p.Pid()) }()
	return l, nil
}

type launch struct {
	r        *Runtime
	c        *Container
	p        *conmon.Process
	placed   chan error
	logErr   error // the log file's absence before the launch: undo removes it
	start    time.Time
	launched time.Time
	used     atomic.Bool // Create or Abort was called
}

func (l *launch) Create(ctx context.Context) (pid int, retErr error) {
	r, c := l.r, l.c
	if l.used.Swap(true) {
		return 0, fmt.Errorf("create container %s: conmon launch already used", c.ID)
	}
	defer func() { r.observe("conmon_create", time.Since(l.start), retErr) }() // metrics hook, see observe.go
	defer func() {
		if retErr != nil {
			l.undo(ctx)
		}
	}()
	defer l.p.Close()
	if err := <-l.placed; err != nil {
		l.p.Kill()
		return 0, err
	}
	placed := time.Now()
	if err := l.p.Release(); err != nil {
		return 0, fmt.Errorf("create container %s: %w", c.ID, err)
	}
	// The process started forks the daemon and exits at once.
	if err := l.p.Wait(); err != nil {
		return 0, fmt.Errorf("create container %s: conmon: %s: %w", c.ID, r.readConmonStderr(c), err)
	}
	forked := time.Now()

	waitCtx, cancel := context.WithTimeout(ctx, r.cfg.CreateTimeout)
	defer cancel()
	msg, err := l.p.Next(waitCtx)
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
	r.log.DebugContext(ctx, "conmon create steps", "container", c.ID, "launch", l.launched.Sub(l.start),
		"cgroup_wait", placed.Sub(l.launched), "daemonise", forked.Sub(placed), "runtime_create", time.Since(forked))
	r.log.InfoContext(ctx, "created container", "container", c.ID, "pid", msg.Data)
	return msg.Data, nil
}

func (l *launch) Abort(ctx context.Context) error {
	if l.used.Swap(true) {
		return nil
	}
	<-l.placed // the placement may still be writing cgroup.procs
	l.p.Kill()
	return l.undo(ctx)
}

// undo removes what the launch made. Keep the caller's error; the undo logs
// its own failures.
func (l *launch) undo(ctx context.Context) error {
	err := l.r.DeleteContainer(context.WithoutCancel(ctx), l.c)
	if err != nil {
		l.r.log.WarnContext(ctx, "undo failed container create", "container", l.c.ID, "error", err)
	}
	if errors.Is(l.logErr, os.ErrNotExist) {
		_ = os.Remove(l.c.LogPath)
	}
	return err
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
