package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// runTerminal runs a session on a terminal whose master Berth holds.
func (e *execSession) runTerminal(ctx context.Context, args []string, s Streams, size *TerminalSize) (int32, error) {
	if e.r.handsOverTerminal() {
		sock, err := listenConsole()
		if err != nil {
			return 0, fmt.Errorf("exec in container %s: %w", e.c.ID, err)
		}
		defer sock.Close()
		cmd := e.command(append([]string{args[0], "--console-socket", sock.path}, args[1:]...))
		cmd.Stdout, cmd.Stderr = e.stderr, e.stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := e.start(); err != nil {
			return 0, err
		}
		master, err := sock.receive(ctx, e.exited)
		if err != nil {
			select {
			case <-e.exited: // the runtime failed before handing it over
				return e.result(ctx)
			default:
			}
			e.kill()
			<-e.exited
			return 0, fmt.Errorf("exec in container %s: receive terminal: %w", e.c.ID, err)
		}
		return e.serveTerminal(ctx, master, s)
	}

	master, slave, err := openPTY()
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", e.c.ID, err)
	}
	if size != nil {
		setWinsize(master, *size) // the runtime copies it to the process's terminal
	}
	cmd := e.command(append([]string{args[0], "--tty"}, args[1:]...))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	err = e.start()
	slave.Close()
	if err != nil {
		master.Close()
		return 0, err
	}
	return e.serveTerminal(ctx, master, s)
}

// serveTerminal copies between the client and the terminal master until the
// runtime has exited and the output is drained, and applies resizes.
func (e *execSession) serveTerminal(ctx context.Context, master *os.File, s Streams) (int32, error) {
	var closeOnce sync.Once
	closeMaster := func() { closeOnce.Do(func() { master.Close() }) }
	defer closeMaster()

	done := make(chan struct{})
	defer close(done)
	if s.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-s.Resize:
					if !ok {
						return
					}
					setWinsize(master, sz)
				case <-done:
					return
				}
			}
		}()
	}
	if s.Stdin != nil {
		go func() {
			if !copyInput(master, s.Stdin) {
				return // the terminal is gone: the process has exited
			}
			select {
			case <-done:
				return
			default:
			}
			// The client's stdin ended or broke: it went away. Hang up
			// the terminal as a closed terminal window does (SIGHUP), and
			// kill what outlives that.
			closeMaster()
			time.AfterFunc(hangupGrace, e.kill)
		}()
	}
	out := s.Stdout
	if out == nil {
		out = io.Discard
	}
	var copies sync.WaitGroup
	copies.Go(func() { e.drain(out, master) })
	code, err := e.finish(ctx, &copies)
	if err == nil && code != 0 && e.stderr.Len() > 0 {
		// What the runtime itself printed (crun with a console socket) is
		// not on the terminal; show it to the client.
		_, _ = io.WriteString(out, e.stderr.String())
	}
	return code, err
}

// copyInput copies the client's input to the terminal until either ends;
// it reports whether the client's side ended (EOF or an error reading it).
func copyInput(master io.Writer, in io.Reader) (clientEnded bool) {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			if _, werr := master.Write(buf[:n]); werr != nil {
				return false
			}
		}
		if err != nil {
			return true
		}
	}
}

// consoleBacklogWait bounds the accept of a connection an exited runtime
// left in the console socket's backlog.
const consoleBacklogWait = 200 * time.Millisecond

// consoleSocket is a unix socket an OCI runtime connects to (its
// --console-socket) to send the master of the terminal it made.
type consoleSocket struct {
	path string
	dir  string
	ln   *net.UnixListener
}

// listenConsole listens on a fresh socket in the temp directory, which is
// short enough for a socket path wherever Berth's own directories are (as
// conmon does).
func listenConsole() (*consoleSocket, error) {
	dir, err := os.MkdirTemp("", "berth-console-")
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	path := filepath.Join(dir, "sock")
	if len(path) > maxSocketPath {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket path %s is longer than %d bytes: set TMPDIR shorter", path, maxSocketPath)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("console socket: %w", err)
	}
	return &consoleSocket{path: path, dir: dir, ln: ln}, nil
}

// receive accepts the runtime's connection and returns the terminal master
// it sends, non-blocking so reads can time out. It gives up when ctx ends or
// runtimeExited is closed first.
func (s *consoleSocket) receive(ctx context.Context, runtimeExited <-chan struct{}) (*os.File, error) {
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := s.accept()
		ch <- result{f, err}
	}()
	select {
	case r := <-ch:
		return r.f, r.err
	case <-runtimeExited:
		// A runtime that has exited may still have sent the terminal (a
		// quick process): its connection waits in the backlog.
		_ = s.ln.SetDeadline(time.Now().Add(consoleBacklogWait))
	case <-ctx.Done():
		s.ln.Close() // unblocks accept
	}
	if r := <-ch; r.err == nil {
		return r.f, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, errors.New("runtime exited without sending the terminal")
}

func (s *consoleSocket) accept() (*os.File, error) {
	conn, err := s.ln.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	buf := make([]byte, 256) // the runtime sends the terminal's name
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("read console socket: %w", err)
	}
	fd, err := parseRights(oob[:oobn])
	if err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("terminal master: %w", err)
	}
	return os.NewFile(uintptr(fd), "ptmx"), nil
}

// parseRights returns the one descriptor passed in a SCM_RIGHTS message,
// closing any others.
func parseRights(oob []byte) (int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1, fmt.Errorf("console socket message: %w", err)
	}
	var fds []int
	for i := range msgs {
		got, err := unix.ParseUnixRights(&msgs[i])
		if err == nil {
			fds = append(fds, got...)
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("console socket message carries %d descriptors, want 1", len(fds))
	}
	return fds[0], nil
}

// Close stops listening and removes the socket's directory.
func (s *consoleSocket) Close() error {
	s.ln.Close()
	return os.RemoveAll(s.dir)
}

// openPTY makes a new pseudo-terminal pair. The master is non-blocking, so
// its reads can time out; the slave is meant for a child's stdio.
func openPTY() (master, slave *os.File, err error) {
	mfd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("open terminal: %w", err)
	}
	master = os.NewFile(uintptr(mfd), "ptmx")
	if err := unix.IoctlSetPointerInt(mfd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock terminal: %w", err)
	}
	n, err := unix.IoctlGetInt(mfd, unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("terminal number: %w", err)
	}
	slave, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("open terminal: %w", err)
	}
	return master, slave, nil
}

// setWinsize sets the size of the terminal whose master is f; the kernel
// sends SIGWINCH to the terminal's foreground process group. Errors (the
// terminal is gone) are ignored: a resize is advisory.
func setWinsize(f *os.File, sz TerminalSize) {
	if sz.Width == 0 || sz.Height == 0 {
		return
	}
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		_ = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: sz.Height, Col: sz.Width})
	})
}
