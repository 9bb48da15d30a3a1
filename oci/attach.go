package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/conmon"
	"github.com/berth-dev/berth/errdefs"
)

// Streams of conmon's attach socket: the first byte of every packet conmon
// sends names the stream the rest came from (conmon's stdpipe_t).
const (
	attachStdout = 2
	attachStderr = 3
)

// attachPacket is the largest packet conmon sends (its STDIO_BUF_SIZE plus
// the stream byte) with room to spare; a shorter read buffer would silently
// truncate a SOCK_SEQPACKET packet.
const attachPacket = 32 << 10

// attachWrite is the most stdin sent in one packet: conmon reads the attach
// socket 32 KiB at a time and drops what a packet has beyond that.
const attachWrite = 8 << 10

// Attach connects the client's streams to container c's stdio through
// conmon's attach socket (SOCK_SEQPACKET): packets read carry a stream byte
// then output; what is written is stdin. Resize events go to conmon's ctl
// fifo, and only for a container with a terminal. Stdin is accepted only
// when c was created with stdin.
//
// The session ends when the container exits (conmon closes the socket), when
// ctx ends, or when the client's stdin ends: conmon is then told (a
// half-close), which closes the container's stdin for a StdinOnce container
// without a terminal; its remaining output is still copied. Otherwise the
// client has detached and the session ends at once.
func (r *Runtime) Attach(ctx context.Context, c *Container, s Streams) error {
	if err := c.validate(); err != nil {
		return err
	}
	if s.Stdin != nil && !c.Stdin {
		return fmt.Errorf("attach stdin to container %s: it was created without stdin: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	conn, err := dialAttach(r.AttachSocketPath(c))
	if err != nil {
		return fmt.Errorf("attach to container %s: %w", c.ID, err)
	}
	defer conn.Close()

	done := make(chan struct{})
	defer close(done)
	if c.Terminal && s.Resize != nil {
		go func() {
			for {
				select {
				case sz, ok := <-s.Resize:
					if !ok {
						return
					}
					if err := conmon.Resize(r.CtlPath(c), sz.Height, sz.Width); err != nil {
						r.log.Debug("resize attached terminal", "container", c.ID, "error", err)
					}
				case <-done:
					return
				}
			}
		}()
	}

	output := make(chan error, 1)
	go func() { output <- copyAttachOutput(conn, s.Stdout, s.Stderr) }()
	var input chan error
	if s.Stdin != nil {
		input = make(chan error, 1)
		go func() {
			err := copyAttachInput(conn, s.Stdin)
			if cerr := conn.CloseWrite(); err == nil && cerr != nil && !errors.Is(cerr, net.ErrClosed) {
				err = cerr
			}
			input <- err
		}()
	}

	select {
	case err := <-output:
		if err != nil {
			return fmt.Errorf("attach to container %s: %w", c.ID, err)
		}
		return nil
	case err := <-input:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("attach to container %s: stdin: %w", c.ID, err)
		}
		if c.StdinOnce && !c.Terminal {
			// conmon closed the container's stdin; it will likely exit.
			select {
			case err := <-output:
				if err != nil {
					return fmt.Errorf("attach to container %s: %w", c.ID, err)
				}
			case <-ctx.Done():
				return fmt.Errorf("attach to container %s: %w", c.ID, ctxErr(ctx))
			}
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("attach to container %s: %w", c.ID, ctxErr(ctx))
	}
}

// dialAttach connects to conmon's attach socket at path. The socket is
// reached through its directory's descriptor, so a long path works as well.
// A socket nobody listens on means conmon is gone.
func dialAttach(path string) (*net.UnixConn, error) {
	dirPath, name := filepath.Split(path)
	dir, err := unix.Open(dirPath, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("no attach socket (conmon is gone): %w", errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return nil, fmt.Errorf("open attach socket directory: %w", err)
	}
	defer unix.Close(dir)
	addr := &net.UnixAddr{Name: "/proc/self/fd/" + strconv.Itoa(dir) + "/" + name, Net: "unixpacket"}
	conn, err := net.DialUnix("unixpacket", nil, addr)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
		return nil, fmt.Errorf("attach socket not served (conmon is gone): %w", errdefs.ErrFailedPrecondition)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to attach socket %s: %w", path, err)
	}
	return conn, nil
}

// copyAttachOutput copies conmon's packets to stdout and stderr until conmon
// closes the socket. A nil writer drops its stream.
func copyAttachOutput(conn io.Reader, stdout, stderr io.Writer) error {
	buf := make([]byte, attachPacket)
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if werr := demuxAttach(buf[:n], stdout, stderr); werr != nil {
				return fmt.Errorf("write output: %w", werr)
			}
		}
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read attach socket: %w", err)
		}
		if n == 0 {
			return nil // a zero-length packet: conmon shut the socket down
		}
	}
}

// demuxAttach writes one attach packet's payload to the writer of the
// stream its first byte names. Packets of other streams, or for a nil
// writer, are dropped.
func demuxAttach(pkt []byte, stdout, stderr io.Writer) error {
	if len(pkt) < 2 {
		return nil
	}
	var w io.Writer
	switch pkt[0] {
	case attachStdout:
		w = stdout
	case attachStderr:
		w = stderr
	}
	if w == nil {
		return nil
	}
	_, err := w.Write(pkt[1:])
	return err
}

// copyAttachInput copies stdin to conmon, one packet per read of at most
// attachWrite bytes, until stdin ends.
func copyAttachInput(conn io.Writer, stdin io.Reader) error {
	buf := make([]byte, attachWrite)
	for {
		n, err := stdin.Read(buf)
		if n > 0 {
			if _, werr := conn.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
