package oci

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// maxExecOutput caps what ExecSync keeps of a command's output, as CRI-O
// and kubelet do (16 MiB).
const maxExecOutput = 16 << 20

// execBackstop is how long past the timeout conmon's own -T timer fires.
const execBackstop = 5 * time.Second

// execReapWait bounds the wait for conmon to report a killed exec's exit.
const execReapWait = 2 * time.Second

// ExecResult is the outcome of a command run with ExecSync.
type ExecResult struct {
	Stdout, Stderr []byte
	ExitCode       int32
}

// ExecSync runs cmd in container c through `conmon --exec` and waits for it.
// The process gets the container's process settings (user, cwd, env,
// capabilities, rlimits, ...) from its config.json, with cmd as arguments and
// no terminal. With timeout > 0 the process (and its process group) is
// killed past the timeout and the error wraps errdefs.ErrDeadlineExceeded.
// A non-zero exit code is a result, not an error.
func (r *Runtime) ExecSync(ctx context.Context, c *Container, cmd []string, timeout time.Duration) (_ *ExecResult, retErr error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	if len(cmd) == 0 {
		return nil, fmt.Errorf("exec in container %s: empty command: %w", c.ID, errdefs.ErrInvalidArgument)
	}
	start := time.Now()
	defer func() { r.observe("conmon_exec", time.Since(start), retErr) }() // metrics hook, see observe.go
	dir, err := os.MkdirTemp(r.PersistDir(c), "exec-")
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("exec in container %s: %w", c.ID, errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.ID, err)
	}
	defer os.RemoveAll(dir)
	specPath := filepath.Join(dir, "process.json")
	if err := writeExecProcess(c, cmd, specPath); err != nil {
		return nil, err
	}
	logPath, pidPath := filepath.Join(dir, "log"), filepath.Join(dir, "pid")
	// Berth enforces the timeout itself by killing the process, which conmon
	// then reaps like any exit. conmon's -T, later, is only a backstop in
	// case Berth dies meanwhile: on its own timeout conmon exits without
	// reaping the killed process, which is left a zombie for the host's init
	// and holds up the teardown of the container's pid namespace.
	backstop := time.Duration(0)
	if timeout > 0 {
		backstop = timeout + execBackstop
	}
	args := r.conmon.ExecArgv(conmon.ExecArgs{
		ID: c.ID, Name: c.Name, ProcessSpec: specPath, PidFile: pidPath, LogPath: logPath,
		Timeout: backstop, LogSizeMax: maxExecOutput,
	})
	var stderr bytes.Buffer
	p, err := conmon.Start(conmon.Cmd{Path: r.cfg.ConmonPath, Args: args, Dir: dir, Stderr: &stderr})
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.ID, err)
	}
	code, err := r.waitExec(ctx, c, p, pidPath, timeout)
	if err != nil {
		if s := conmonErrors(stderr.String()); s != "" && !errors.Is(err, errdefs.ErrDeadlineExceeded) {
			err = fmt.Errorf("%w (conmon: %s)", err, s)
		}
		return nil, err
	}
	out, err := readCapped(logPath, maxExecOutput)
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: read output: %w", c.ID, err)
	}
	res := &ExecResult{ExitCode: code}
	res.Stdout, res.Stderr = conmon.ParseLog(out)
	return res, nil
}

// waitExec reads conmon's two exec messages (pid, then exit code) and reaps
// conmon. Past timeout (if > 0), or when ctx ends, the process is killed.
func (r *Runtime) waitExec(ctx context.Context, c *Container, p *conmon.Process, pidPath string, timeout time.Duration) (int32, error) {
	defer p.Close()
	waitCtx, cancel := ctx, context.CancelFunc(func() {})
	if timeout > 0 {
		waitCtx, cancel = context.WithTimeout(ctx, timeout)
	}
	defer cancel()
	msg, err := p.Next(waitCtx)
	if err == nil && msg.Data > 0 {
		msg, err = p.Next(waitCtx)
	}
	if err != nil && waitCtx.Err() != nil {
		abortExec(ctx, p, pidPath)
		if ctx.Err() != nil {
			return 0, fmt.Errorf("exec in container %s: %w", c.ID, ctxErr(ctx))
		}
		return 0, fmt.Errorf("exec in container %s: timed out after %s: %w", c.ID, timeout, errdefs.ErrDeadlineExceeded)
	}
	if err == nil && msg.Data == -1 && msg.Message == conmon.TimedOutMessage {
		// conmon's backstop fired; it killed the process group already.
		killPidFile(pidPath)
		_ = p.Wait()
		return 0, fmt.Errorf("exec in container %s: %s: %w", c.ID, msg.Message, errdefs.ErrDeadlineExceeded)
	}
	waitErr := p.Wait()
	switch {
	case errors.Is(err, io.EOF):
		return 0, fmt.Errorf("exec in container %s: conmon exited early: %v", c.ID, waitErr)
	case err != nil:
		return 0, fmt.Errorf("exec in container %s: %w", c.ID, err)
	case msg.Data < 0:
		text := runtimeMessage(msg.Message)
		if kind := classify(text); kind != nil {
			return 0, fmt.Errorf("exec in container %s: %s: %w", c.ID, text, kind)
		}
		return 0, fmt.Errorf("exec in container %s: %s", c.ID, text)
	}
	return int32(msg.Data), nil
}

// abortExec kills the exec'd process and lets conmon reap it and exit; a
// conmon that does not within execReapWait is killed too.
func abortExec(ctx context.Context, p *conmon.Process, pidPath string) {
	killPidFile(pidPath)
	reapCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), execReapWait)
	defer cancel()
	for {
		if _, err := p.Next(reapCtx); err != nil {
			break // io.EOF once conmon exited, or reapCtx's error
		}
	}
	if reapCtx.Err() != nil {
		p.Kill()
		return
	}
	_ = p.Wait()
}

// killPidFile SIGKILLs the process named in pidPath, if any, and its
// process group unless that is the daemon's own.
func killPidFile(pidPath string) {
	pid, err := conmon.ReadPidFile(pidPath)
	if err != nil {
		return
	}
	if pgid, err := syscall.Getpgid(pid); err == nil && pgid > 1 && pgid != syscall.Getpgrp() {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// writeExecProcess writes the process spec for an exec of cmd in c: the
// container's own process with cmd as arguments and no terminal.
func writeExecProcess(c *Container, cmd []string, path string) error {
	b, err := os.ReadFile(filepath.Join(c.BundleDir, "config.json"))
	if err != nil {
		return fmt.Errorf("exec in container %s: read spec: %w", c.ID, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		return fmt.Errorf("exec in container %s: decode spec: %w", c.ID, err)
	}
	if spec.Process == nil {
		return fmt.Errorf("exec in container %s: spec has no process: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	proc := *spec.Process
	proc.Args = cmd
	proc.Terminal = false
	proc.ConsoleSize = nil
	out, err := json.Marshal(&proc)
	if err != nil {
		return fmt.Errorf("exec in container %s: encode process: %w", c.ID, err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("exec in container %s: %w", c.ID, err)
	}
	return nil
}

func readCapped(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, max))
}

// conmonErrors keeps what conmon printed minus its debug ("[conmon:d]") lines.
func conmonErrors(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "[conmon:d]") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "; ")
}
