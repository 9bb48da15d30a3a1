// Package oci runs containers through an OCI runtime (crun, runc) with a
// conmon per container, the way CRI-O does. It takes ready bundles (a
// directory with config.json); building specs from CRI configs lives
// elsewhere.
//
// Everything about a container can be found again from disk after a restart
// of Berth (see Container for the layout): conmon is daemonised and outlives
// the daemon, its pid and the container's init pid are in pid files, the exit
// code lands in the shared exit directory, and the runtime keeps its own
// state under its root.
package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// Cgroup managers a Runtime can drive.
const (
	CgroupfsManager = "cgroupfs"
	SystemdManager  = "systemd"
)

// DefaultCreateTimeout bounds how long CreateContainer waits for conmon to
// report the container's pid when the context has no earlier deadline.
const DefaultCreateTimeout = 2 * time.Minute

// Config describes one runtime handler.
type Config struct {
	// Name is the RuntimeClass handler name ("crun", "runc").
	Name string
	// Path of the OCI runtime binary.
	Path string
	// Root is the runtime's state directory (its --root).
	Root string
	// ConmonPath is the path of the conmon binary.
	ConmonPath string
	// CgroupManager is CgroupfsManager (default) or SystemdManager.
	CgroupManager string
	// RunDir is Berth's volatile state directory; the Runtime uses its
	// exits/, sockets/ and containers/ subdirectories, which handlers share.
	RunDir string
	// ConmonLogLevel is conmon's own log level; empty means "info".
	ConmonLogLevel string
	// CreateTimeout defaults to DefaultCreateTimeout.
	CreateTimeout time.Duration
	// Log defaults to slog.Default().
	Log *slog.Logger
	// Observe is told of every invocation of the runtime and conmon (the
	// daemon's metrics); nil records nothing.
	Observe Observer
}

// Runtime runs containers for one handler. Its methods may be called
// concurrently for different containers; calls for one container are the
// caller's to serialise (the container store holds a lock per container).
type Runtime struct {
	cfg    Config
	conmon conmon.Binary
	log    *slog.Logger
}

// New checks cfg and creates the directories the runtime writes to.
func New(cfg Config) (*Runtime, error) {
	if cfg.Path == "" || cfg.Root == "" || cfg.ConmonPath == "" || cfg.RunDir == "" {
		return nil, fmt.Errorf("runtime handler %q: path, root, conmon and run dir are required: %w", cfg.Name, errdefs.ErrInvalidArgument)
	}
	switch cfg.CgroupManager {
	case "":
		cfg.CgroupManager = CgroupfsManager
	case CgroupfsManager, SystemdManager:
	default:
		return nil, fmt.Errorf("runtime handler %q: unknown cgroup manager %q: %w", cfg.Name, cfg.CgroupManager, errdefs.ErrInvalidArgument)
	}
	if cfg.ConmonLogLevel == "" {
		cfg.ConmonLogLevel = "info"
	}
	if cfg.CreateTimeout <= 0 {
		cfg.CreateTimeout = DefaultCreateTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	r := &Runtime{
		cfg: cfg,
		conmon: conmon.Binary{
			Path:          cfg.ConmonPath,
			RuntimePath:   cfg.Path,
			RuntimeRoot:   cfg.Root,
			SystemdCgroup: cfg.CgroupManager == SystemdManager,
			LogLevel:      cfg.ConmonLogLevel,
		},
		log: cfg.Log.With("handler", cfg.Name),
	}
	for _, d := range []string{r.ExitDir(), r.socketDir(), r.containersDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("runtime handler %q: %w", cfg.Name, err)
		}
	}
	return r, nil
}

// Name is the handler's name.
func (r *Runtime) Name() string { return r.cfg.Name }

// ExitDir is where conmon writes exit files, one per container id. It is
// shared by all handlers with the same RunDir; watch it with WatchExits.
func (r *Runtime) ExitDir() string { return ExitDir(r.cfg.RunDir) }

// ExitDir is the exit directory of runDir.
func ExitDir(runDir string) string { return filepath.Join(runDir, "exits") }

func (r *Runtime) socketDir() string     { return filepath.Join(r.cfg.RunDir, "sockets") }
func (r *Runtime) containersDir() string { return filepath.Join(r.cfg.RunDir, "containers") }

// globalArgs are the runtime's global flags, --root (and --systemd-cgroup),
// followed by args: every call of the runtime binary starts with them.
func (r *Runtime) globalArgs(args ...string) []string {
	full := []string{"--root", r.cfg.Root}
	if r.cfg.CgroupManager == SystemdManager {
		full = append(full, "--systemd-cgroup")
	}
	return append(full, args...)
}

// runtimeCmd runs the OCI runtime with its global flags and args, feeding it
// stdin, and returns its stdout. Errors carry the runtime's stderr and wrap
// errdefs.ErrNotFound when the container does not exist.
func (r *Runtime) runtimeCmd(ctx context.Context, id string, stdin []byte, args ...string) ([]byte, error) {
	conmon.CloexecInherited()
	cmd := exec.CommandContext(ctx, r.cfg.Path, r.globalArgs(args...)...)
	cmd.Env = conmon.DefaultEnv
	cmd.WaitDelay = time.Second
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r.log.DebugContext(ctx, "ran oci runtime", "container", id, "args", args, "duration", time.Since(start), "error", err)
	r.observe("runtime_"+args[0], time.Since(start), err) // metrics hook, see observe.go
	if err == nil {
		return stdout.Bytes(), nil
	}
	msg := runtimeMessage(stderr.String())
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%s %s container %s: %w", r.cfg.Name, args[0], id, ctxErr(ctx))
	}
	if kind := classify(msg); kind != nil {
		return nil, fmt.Errorf("%s %s container %s: %s: %w", r.cfg.Name, args[0], id, msg, kind)
	}
	return nil, fmt.Errorf("%s %s container %s: %s: %w", r.cfg.Name, args[0], id, msg, err)
}

// classify maps runtime error text to sentinel errors. runc says "container
// does not exist"; crun fails to open "<root>/<id>/status".
func classify(stderr string) error {
	switch {
	case strings.Contains(stderr, "does not exist"),
		strings.Contains(stderr, "status`: No such file or directory"):
		return errdefs.ErrNotFound
	case strings.Contains(stderr, "already exists"):
		return errdefs.ErrAlreadyExists
	case strings.Contains(stderr, "not running"),
		strings.Contains(stderr, "No such process"),
		strings.Contains(stderr, "no such process"),
		strings.Contains(stderr, "container is paused"),
		strings.Contains(stderr, "stopped container"),
		strings.Contains(stderr, "cannot start"):
		return errdefs.ErrFailedPrecondition
	}
	return nil
}

// isNotFound reports whether err says the container is unknown to the runtime.
func isNotFound(err error) bool { return errors.Is(err, errdefs.ErrNotFound) }

// runtimeMessage trims runtime stderr and unwraps runc's logrus lines
// (time="..." level=error msg="...") to their message.
func runtimeMessage(stderr string) string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if i := strings.Index(l, ` msg="`); i >= 0 && strings.HasPrefix(l, "time=") {
			if m, err := strconv.Unquote(strings.TrimSpace(l[i+5:])); err == nil {
				l = m
			}
		}
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "; ")
}

// ctxErr is ctx's error, also wrapping errdefs.ErrDeadlineExceeded when its
// deadline passed.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", errdefs.ErrDeadlineExceeded, err)
	}
	return err
}
