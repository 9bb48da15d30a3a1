package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// TerminalSize is a terminal's size in character cells.
type TerminalSize struct {
	Width, Height uint16
}

// Streams are a client's ends of an exec or attach session. A nil stream is
// not connected: the process then reads an empty stdin, or its output of
// that kind is dropped.
type Streams struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// TTY gives an exec'd process a terminal; all its output then goes to
	// Stdout.
	TTY bool
	// Resize carries the client's terminal size changes; nil when it sends
	// none. It is read until it is closed or the session ends.
	Resize <-chan TerminalSize
}

const (
	// outputGrace is how long output is still read once the runtime has
	// exited, counted from the last bytes read: a background child of the
	// exec'd process may hold its stdout open for ever.
	outputGrace = time.Second
	// hangupGrace is how long a process whose terminal was hung up (the
	// client's stdin ended) may take to exit before it is killed.
	hangupGrace = 2 * time.Second
	// execStartWait bounds the wait for the exec'd process's pid when a
	// session is aborted while the runtime is still starting it.
	execStartWait = 5 * time.Second
	// runtimeStderrTail is how much of the runtime's stderr is kept for
	// error messages.
	runtimeStderrTail = 4096
)

// ExecStream runs cmd in the running container c through the OCI runtime's
// exec (`<runtime> --root <root> exec --process <spec> --pid-file <f> <id>`)
// connected to the client's streams, and returns the process's exit code.
// The process is the container's own (user, environment, capabilities,
// rlimits, working directory, security settings, from its config.json) with
// cmd as arguments, in the container's namespaces and cgroup.
//
// With s.TTY the process gets a terminal whose master Berth holds and resizes
// (TIOCSWINSZ) on the client's resize events. crun hands the master over
// through a console socket and still waits for the process; runc accepts a
// console socket only when it detaches, which would orphan the process and
// lose its exit code, so runc runs in the foreground on a terminal of
// Berth's, which it proxies to the process's own and resizes on SIGWINCH.
//
// When ctx ends or the client stops reading, the process and its process
// group are killed. A failure of the runtime to start the process is an
// error; a non-zero exit code is not.
func (r *Runtime) ExecStream(ctx context.Context, c *Container, cmd []string, s Streams) (int32, error) {
	if err := c.validate(); err != nil {
		return 0, err
	}
	if len(cmd) == 0 {
		return 0, fmt.Errorf("exec in container %s: empty command: %w", c.ID, errdefs.ErrInvalidArgument)
	}
	dir, err := os.MkdirTemp(r.PersistDir(c), "exec-")
	if errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("exec in container %s: %w", c.ID, errdefs.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", c.ID, err)
	}
	defer os.RemoveAll(dir)

	base, err := containerProcess(c)
	if err != nil {
		return 0, err
	}
	var size *TerminalSize
	if s.TTY {
		select { // a size the client sent already goes in the spec
		case sz, ok := <-s.Resize:
			if ok {
				size = &sz
			}
		default:
		}
	}
	proc := execProcess(base, cmd, s.TTY, size)
	specPath := filepath.Join(dir, "process.json")
	b, err := json.Marshal(proc)
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: encode process: %w", c.ID, err)
	}
	if err := os.WriteFile(specPath, b, 0o600); err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", c.ID, err)
	}

	e := &execSession{
		r: r, c: c, pidPath: filepath.Join(dir, "pid"),
		exited: make(chan struct{}), stderr: &tailBuffer{max: runtimeStderrTail},
	}
	args := []string{"exec", "--process", specPath, "--pid-file", e.pidPath}
	start := time.Now()
	var code int32
	if s.TTY {
		code, err = e.runTerminal(ctx, args, s, size)
	} else {
		code, err = e.runPipes(ctx, args, s, proc.User)
	}
	r.log.DebugContext(ctx, "exec session ended", "container", c.ID, "cmd", cmd[0], "tty", s.TTY,
		"exit", code, "duration", time.Since(start), "error", err)
	return code, err
}

// containerProcess reads the process of container c's config.json.
func containerProcess(c *Container) (*specs.Process, error) {
	b, err := os.ReadFile(filepath.Join(c.BundleDir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("exec in container %s: no spec: %w", c.ID, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: read spec: %w", c.ID, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return nil, fmt.Errorf("exec in container %s: decode spec: %w", c.ID, err)
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("exec in container %s: spec has no process: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	return spec.Process, nil
}

// execProcess derives the process of an exec from the container's own: the
// same user, environment, capabilities, rlimits, working directory and
// security settings, with cmd as arguments. It has a terminal only when tty
// is asked for, then of the given size (if known) and with TERM=xterm unless
// the container sets TERM, as containerd does. base is not modified.
func execProcess(base *specs.Process, cmd []string, tty bool, size *TerminalSize) specs.Process {
	p := *base
	p.Args = slices.Clone(cmd)
	p.Env = slices.Clone(base.Env)
	p.Terminal = tty
	p.ConsoleSize = nil
	if tty {
		if size != nil && size.Width > 0 && size.Height > 0 {
			p.ConsoleSize = &specs.Box{Height: uint(size.Height), Width: uint(size.Width)}
		}
		if !slices.ContainsFunc(p.Env, func(v string) bool { return strings.HasPrefix(v, "TERM=") }) {
			p.Env = append(p.Env, "TERM=xterm")
		}
	}
	return p
}

// handsOverTerminal tells whether the runtime sends the terminal master to
// --console-socket while staying in the foreground to wait for the process.
func (r *Runtime) handsOverTerminal() bool {
	return strings.HasPrefix(filepath.Base(r.cfg.Path), "crun")
}

// execSession is one run of `<runtime> exec`.
type execSession struct {
	r       *Runtime
	c       *Container
	cmd     *exec.Cmd
	pidPath string
	// exited is closed once the runtime has exited and been reaped, with
	// its Wait result in werr.
	exited chan struct{}
	werr   error
	// stderr keeps the tail of what the runtime printed.
	stderr   *tailBuffer
	killOnce sync.Once
	// aborted is set when the client went away mid-session.
	abortMu sync.Mutex
	aborted error
}

// command prepares the runtime with args; the container id is appended.
func (e *execSession) command(args []string) *exec.Cmd {
	cmd := exec.Command(e.r.cfg.Path, e.r.globalArgs(append(args, e.c.ID)...)...)
	cmd.Env = conmon.DefaultEnv
	cmd.WaitDelay = time.Second
	e.cmd = cmd
	return cmd
}

// start starts the prepared runtime and reaps it in the background.
func (e *execSession) start() error {
	conmon.CloexecInherited()
	if err := e.cmd.Start(); err != nil {
		return fmt.Errorf("exec in container %s: start %s: %w", e.c.ID, e.r.cfg.Name, err)
	}
	go func() {
		e.werr = e.cmd.Wait()
		close(e.exited)
	}()
	return nil
}

// runPipes runs a session without a terminal: the process's stdin, stdout
// and stderr are pipes Berth copies to and from the client.
func (e *execSession) runPipes(ctx context.Context, args []string, s Streams, user specs.User) (int32, error) {
	cmd := e.command(args)
	// Its own process group, which the exec'd process joins: a kill of the
	// group takes the process, its children and the runtime.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// childEnds go to the runtime and are closed here once it has them;
	// parentEnds are ours, closed here only when the session fails to start.
	var childEnds, parentEnds []*os.File
	started := false
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
		if !started {
			for _, f := range parentEnds {
				f.Close()
			}
		}
	}()
	pipe := func() (r, w *os.File, err error) {
		if r, w, err = os.Pipe(); err != nil {
			return nil, nil, fmt.Errorf("exec in container %s: %w", e.c.ID, err)
		}
		return r, w, nil
	}
	var stdinW, outR, errR *os.File
	if s.Stdin != nil {
		r, w, err := pipe()
		if err != nil {
			return 0, err
		}
		childEnds, parentEnds, stdinW, cmd.Stdin = append(childEnds, r), append(parentEnds, w), w, r
		// The process may reopen /proc/self/fd/0 as the container's user.
		if err := r.Chown(int(user.UID), int(user.GID)); err != nil {
			return 0, fmt.Errorf("exec in container %s: give stdin to uid %d: %w", e.c.ID, user.UID, err)
		}
	}
	if s.Stdout != nil {
		r, w, err := pipe()
		if err != nil {
			return 0, err
		}
		childEnds, parentEnds, outR, cmd.Stdout = append(childEnds, w), append(parentEnds, r), r, w
	}
	r, w, err := pipe()
	if err != nil {
		return 0, err
	}
	childEnds, parentEnds, errR, cmd.Stderr = append(childEnds, w), append(parentEnds, r), r, w
	if err := e.start(); err != nil {
		return 0, err
	}
	started = true
	for _, f := range childEnds { // the runtime has them now
		f.Close()
	}
	childEnds = nil

	if stdinW != nil {
		go func() {
			// Copies until the client's stdin ends, then the process reads
			// EOF. A write error means the process closed its stdin.
			_, _ = io.Copy(stdinW, s.Stdin)
			stdinW.Close()
		}()
	}
	var copies sync.WaitGroup
	if outR != nil {
		copies.Go(func() { e.drain(s.Stdout, outR) })
	}
	errDst := io.Writer(e.stderr)
	if s.Stderr != nil {
		errDst = io.MultiWriter(s.Stderr, e.stderr)
	}
	copies.Go(func() { e.drain(errDst, errR) })
	return e.finish(ctx, &copies)
}

// finish waits for the runtime (killing the process when ctx ends first),
// then for the output copies, and returns the process's exit code.
func (e *execSession) finish(ctx context.Context, copies *sync.WaitGroup) (int32, error) {
	select {
	case <-e.exited:
	case <-ctx.Done():
		e.kill()
		<-e.exited
	}
	copies.Wait()
	return e.result(ctx)
}

// result turns the runtime's exit into the process's exit code or an error.
func (e *execSession) result(ctx context.Context) (int32, error) {
	if ctx.Err() != nil {
		return 0, fmt.Errorf("exec in container %s: %w", e.c.ID, ctxErr(ctx))
	}
	e.abortMu.Lock()
	aborted := e.aborted
	e.abortMu.Unlock()
	if aborted != nil {
		return 0, fmt.Errorf("exec in container %s: %w", e.c.ID, aborted)
	}
	code := 0
	if e.werr != nil {
		var ee *exec.ExitError
		if !errors.As(e.werr, &ee) {
			return 0, fmt.Errorf("exec in container %s: %s exec: %w", e.c.ID, e.r.cfg.Name, e.werr)
		}
		code = ee.ExitCode()
	}
	_, pidErr := conmon.ReadPidFile(e.pidPath)
	if code != 0 && pidErr != nil {
		// No pid file: the runtime failed before the process ran.
		msg := runtimeMessage(e.stderr.String())
		if msg == "" {
			msg = fmt.Sprintf("exit status %d", code)
		}
		if kind := classify(msg); kind != nil {
			return 0, fmt.Errorf("exec in container %s: %s exec: %s: %w", e.c.ID, e.r.cfg.Name, msg, kind)
		}
		return 0, fmt.Errorf("exec in container %s: %s exec: %s", e.c.ID, e.r.cfg.Name, msg)
	}
	if code < 0 {
		return 0, fmt.Errorf("exec in container %s: %s exec killed: %v", e.c.ID, e.r.cfg.Name, e.werr)
	}
	return int32(code), nil
}

// abort ends the session because its client went away.
func (e *execSession) abort(err error) {
	e.abortMu.Lock()
	if e.aborted == nil {
		e.aborted = err
	}
	e.abortMu.Unlock()
	e.kill()
}

// kill SIGKILLs the exec'd process and its process group, once. A process
// not started yet is waited for while the runtime runs; a runtime that
// never writes its pid is killed itself.
func (e *execSession) kill() {
	e.killOnce.Do(func() {
		go func() {
			deadline := time.Now().Add(execStartWait)
			for {
				select {
				case <-e.exited:
					return
				default:
				}
				if _, err := conmon.ReadPidFile(e.pidPath); err == nil {
					killPidFile(e.pidPath)
					return
				}
				if time.Now().After(deadline) {
					_ = e.cmd.Process.Kill()
					return
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
	})
}

// drain copies src to dst until src ends (EOF, or EIO from a terminal master
// whose slave is closed once the runtime has exited) or, once the runtime
// has exited, no bytes came for outputGrace. When dst fails the client is gone: the session is
// aborted and src is still read so the process never blocks on it.
func (e *execSession) drain(dst io.Writer, src *os.File) {
	defer src.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-e.exited:
			_ = src.SetReadDeadline(time.Now().Add(outputGrace))
		case <-stop:
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				e.abort(fmt.Errorf("client stopped reading output: %w", werr))
				dst = io.Discard
			}
			select {
			case <-e.exited:
				_ = src.SetReadDeadline(time.Now().Add(outputGrace))
			default:
			}
		}
		if errors.Is(err, syscall.EIO) {
			// A terminal master reads EIO while no slave is open: final
			// once the runtime has exited, but the process may not have
			// opened its terminal yet.
			select {
			case <-e.exited:
				return
			case <-time.After(10 * time.Millisecond):
				continue
			}
		}
		if err != nil {
			return // io.EOF, os.ErrDeadlineExceeded or os.ErrClosed
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func (t *tailBuffer) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.b)
}
