package rig

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Daemon is a berth process started by StartBerth.
type Daemon struct {
	Socket  string // the CRI socket, <root>/berth.sock
	Root    string
	LogPath string // stdout+stderr, <root>/berth.log
	Cmd     *exec.Cmd

	done chan struct{} // closed once Cmd has been waited for
	err  error         // Cmd.Wait's result, valid after done
}

// StartBerth starts binary as a berth daemon whose every path lives under
// root (socket, storage, runroot, state, run dir, an empty config file and
// config dir), with args appended to the generated flags, and returns once
// the daemon serves CRI on its socket. If the daemon exits first, or does
// not serve within a minute (or ctx ends), the error carries the tail of its
// log.
func StartBerth(ctx context.Context, binary, root string, args ...string) (*Daemon, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("resolve berth root %s: %w", root, err)
	}
	d := &Daemon{
		Socket:  filepath.Join(root, "berth.sock"),
		Root:    root,
		LogPath: filepath.Join(root, "berth.log"),
		done:    make(chan struct{}),
	}
	// A unix socket path is limited to 107 bytes; fail clearly rather than
	// with the daemon's bind error.
	if len(d.Socket) > 107 {
		return nil, fmt.Errorf("berth socket path %s is longer than 107 bytes: use a shorter root", d.Socket)
	}
	configPath := filepath.Join(root, "berth.toml")
	configDir := filepath.Join(root, "berth.toml.d")
	if err := os.MkdirAll(configDir, 0o755); err != nil {
		return nil, fmt.Errorf("create berth config dir: %w", err)
	}
	if _, err := os.Stat(configPath); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(configPath, nil, 0o644); err != nil {
			return nil, fmt.Errorf("create berth config: %w", err)
		}
	}
	logFile, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open berth log: %w", err)
	}
	defer logFile.Close() // the child has its own descriptor

	flags := []string{
		"--listen", d.Socket,
		"--root", filepath.Join(root, "storage"),
		"--runroot", filepath.Join(root, "runroot"),
		"--state-dir", filepath.Join(root, "state"),
		"--run-dir", filepath.Join(root, "run"),
		"--config", configPath,
		"--config-dir", configDir,
		// NRI's default socket is the node's: each test daemon has its own.
		"--nri-socket", filepath.Join(root, "nri.sock"),
	}
	// Not CommandContext: a test's daemon outlives the context that bounds
	// its start-up; Stop and Kill end it.
	d.Cmd = exec.Command(binary, append(flags, args...)...)
	d.Cmd.Stdout = logFile
	d.Cmd.Stderr = logFile
	if err := d.Cmd.Start(); err != nil {
		return nil, fmt.Errorf("start berth %s: %w", binary, err)
	}
	go func() {
		d.err = d.Cmd.Wait()
		close(d.done)
	}()
	if err := d.waitServing(ctx, time.Minute); err != nil {
		// SIGTERM, not SIGKILL: a daemon that did start must get to release
		// its storage mounts, or the test's temp dir cannot be removed.
		_ = d.Stop()
		return nil, fmt.Errorf("start berth: %w\n--- tail of %s ---\n%s", err, d.LogPath, tailFile(d.LogPath, 30))
	}
	return d, nil
}

// waitServing polls the socket until a gRPC server answers on it. A
// successful connect is not enough: after a SIGKILL, a child the dead daemon
// was forking can still hold its listening socket for a moment, so the
// kernel queues the connection there and resets it when that child execs.
// Only a live gRPC server sends its HTTP/2 settings frame unasked.
func (d *Daemon) waitServing(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if serverSpeaks(d.Socket) {
			return nil
		}
		select {
		case <-d.done:
			return fmt.Errorf("berth exited before serving on %s: %v", d.Socket, d.err)
		case <-ctx.Done():
			return fmt.Errorf("wait for berth to serve on %s: %w", d.Socket, ctx.Err())
		case <-tick.C:
		}
	}
}

// serverSpeaks reports whether the server on socket sends its first bytes
// within a second of a connect.
func serverSpeaks(socket string) bool {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	var b [1]byte
	n, _ := c.Read(b[:])
	return n == 1
}

// Exited returns a channel closed when the daemon has exited.
func (d *Daemon) Exited() <-chan struct{} { return d.done }

// ExitErr is the daemon's exit status (nil for a clean exit); valid once
// Exited is closed.
func (d *Daemon) ExitErr() error { return d.err }

// Stop asks the daemon to shut down with SIGTERM and waits; after 30s it
// sends SIGKILL. It returns the exit error of a daemon that did not exit
// cleanly, so tests notice a shutdown that crashed. A daemon that had already
// exited (killed, crashed) is left as it is: see ExitErr.
func (d *Daemon) Stop() error {
	select {
	case <-d.done:
		return nil
	default:
	}
	if err := d.signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-d.done:
		if d.err != nil {
			return fmt.Errorf("berth exited uncleanly after SIGTERM: %w", d.err)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = d.signal(syscall.SIGKILL)
		<-d.done
		return fmt.Errorf("berth did not exit within 30s of SIGTERM; killed")
	}
}

// Kill ends the daemon with SIGKILL, as a crash would, and waits for it.
func (d *Daemon) Kill() error {
	if err := d.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-d.done
	return nil
}

func (d *Daemon) signal(sig syscall.Signal) error {
	select {
	case <-d.done:
		return nil // already gone
	default:
	}
	if err := d.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("send %v to berth %d: %w", sig, d.Cmd.Process.Pid, err)
	}
	return nil
}
