package conmon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// DefaultEnv is the environment conmon (and so the OCI runtime) runs with,
// besides the pipe variables. Nothing of the daemon's own environment leaks.
var DefaultEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}

// TimedOutMessage is the message conmon sends when an exec hit its -T timeout.
const TimedOutMessage = "command timed out"

// Message is one line conmon writes to the sync pipe with --api-version 1:
// {"data": N, "message": "..."}. After create, Data is the container's init
// pid, or negative with Message holding the runtime's stderr. After an exec,
// a first message carries the pid and a second the exit code (-1 and
// TimedOutMessage after a timeout).
type Message struct {
	Data    int    `json:"data"`
	Message string `json:"message,omitempty"`
}

// Cmd is one conmon invocation.
type Cmd struct {
	// Path of the conmon binary and its arguments (without argv[0]).
	Path string
	Args []string
	// Dir is conmon's working directory; conmon drops an "oom" file there.
	Dir string
	// Env defaults to DefaultEnv.
	Env []string
	// Stderr receives what conmon prints before it detaches its stdio
	// (argument errors and the like); nil discards it.
	Stderr io.Writer
	// Place runs once conmon has started and before it is let go (through
	// the start pipe) to fork anything: the place to move it into cgroups.
	Place func(pid int) error
}

// Process is a started conmon whose sync pipe the caller reads.
type Process struct {
	cmd   *exec.Cmd
	sync  *os.File
	start *os.File // write end of the start pipe, until Release
	msgs  chan syncResult
}

type syncResult struct {
	m   Message
	err error
}

// Start launches conmon (see Launch), runs c.Place and releases it. Without
// --sync, conmon forks a daemon that calls setsid and outlives the caller;
// the process started here exits right after that fork and must be reaped
// with Wait.
func Start(c Cmd) (*Process, error) {
	p, err := Launch(c)
	if err != nil {
		return nil, err
	}
	if c.Place != nil {
		if err := c.Place(p.Pid()); err != nil {
			p.Kill()
			return nil, err
		}
	}
	if err := p.Release(); err != nil {
		return nil, err
	}
	return p, nil
}

// Launch starts conmon in its own process group with no inherited file
// descriptors but the two pipes. conmon then waits on its start pipe and
// does nothing, touching no file, until Release: the caller may move it into
// cgroups, and finish what conmon will need (the bundle, the spec) in the
// meantime. c.Place is not run; a Process launched must be released or
// killed.
func Launch(c Cmd) (*Process, error) {
	CloexecInherited()
	syncR, syncW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("create conmon sync pipe: %w", err)
	}
	startR, startW, err := os.Pipe()
	if err != nil {
		syncR.Close()
		syncW.Close()
		return nil, fmt.Errorf("create conmon start pipe: %w", err)
	}

	env := c.Env
	if env == nil {
		env = DefaultEnv
	}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Dir = c.Dir
	// fds 0-2 are stdio, so ExtraFiles start at 3.
	cmd.Env = append(append([]string(nil), env...), "_OCI_SYNCPIPE=3", "_OCI_STARTPIPE=4")
	cmd.ExtraFiles = []*os.File{syncW, startR}
	cmd.Stderr = c.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = time.Second
	err = cmd.Start()
	syncW.Close()
	startR.Close()
	if err != nil {
		syncR.Close()
		startW.Close()
		return nil, fmt.Errorf("start conmon: %w", err)
	}
	p := &Process{cmd: cmd, sync: syncR, start: startW, msgs: make(chan syncResult, 4)}
	go p.readSync()
	return p, nil
}

// Release lets a launched conmon go on through its start pipe. On failure
// conmon is killed.
func (p *Process) Release() error {
	_, err := p.start.Write([]byte{0})
	p.start.Close()
	if err != nil {
		p.Kill()
		return fmt.Errorf("release conmon through its start pipe: %w", err)
	}
	return nil
}

// CloexecInherited marks every descriptor above stderr close-on-exec. Go
// opens its own that way, but descriptors the daemon inherited from whatever
// started it are not, and would leak into conmon for the container's
// lifetime (a job runner waiting for its pipe to close would wait forever).
// os/exec still passes ExtraFiles, which it dups in the child.
func CloexecInherited() {
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	// Kernels before 5.11 have no CLOSE_RANGE_CLOEXEC.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}

// Pid is the pid of the conmon process started (not of the daemon it forks).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// readSync decodes messages from the sync pipe until it fails (EOF when
// conmon closed it, an error once Close closed it).
func (p *Process) readSync() {
	defer close(p.msgs)
	dec := json.NewDecoder(p.sync)
	for {
		var m Message
		if err := dec.Decode(&m); err != nil {
			if !errors.Is(err, io.EOF) {
				err = fmt.Errorf("read conmon sync pipe: %w", err)
			}
			p.msgs <- syncResult{err: err}
			return
		}
		p.msgs <- syncResult{m: m}
	}
}

// Next returns the next message from the sync pipe, or ctx's error if ctx
// ends first (the message can still be read by a later call). io.EOF means
// conmon closed the pipe without (more) messages: it exited or failed.
func (p *Process) Next(ctx context.Context) (Message, error) {
	select {
	case r, ok := <-p.msgs:
		if !ok {
			return Message{}, io.EOF
		}
		return r.m, r.err
	case <-ctx.Done():
		return Message{}, ctx.Err()
	}
}

// Wait reaps the conmon process started. The sync pipe stays open: a
// daemon conmon forked still writes to it.
func (p *Process) Wait() error { return p.cmd.Wait() }

// Close closes the read end of the sync pipe.
func (p *Process) Close() error { return p.sync.Close() }

// Kill kills the conmon process started (not a daemon it already forked),
// reaps it and closes the sync pipe.
func (p *Process) Kill() {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	_ = p.sync.Close()
	_ = p.start.Close()
}
