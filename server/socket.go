package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Listener is the CRI socket together with the lock that makes it ours.
type Listener struct {
	net.Listener
	lock *os.File
}

// Close stops listening and releases the lock.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.lock.Close()
	return err
}

// Listen opens the CRI unix socket at path. A lock file beside it makes a
// second daemon on the same socket fail with a clear message instead of
// stealing the socket; a socket file left by a crashed run (the lock is free)
// is replaced. The socket is 0660 and owned by root.
func Listen(path string) (*Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	lockPath := path + ".lock"
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", lockPath, err)
	}
	if err := takeLock(lock); err != nil {
		owner := readPid(lock)
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			if !alive(owner) {
				return nil, fmt.Errorf("berth pid %s has exited but %s is still locked by a process it started", owner, lockPath)
			}
			return nil, fmt.Errorf("another berth (pid %s) is already serving %s", owner, path)
		}
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	if err := lock.Truncate(0); err == nil {
		lock.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		lock.Close()
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	// The umask keeps the socket from being world-connectable even for the
	// instant before the chmod below.
	old := unix.Umask(0o117)
	l, err := net.Listen("unix", path)
	unix.Umask(old)
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		l.Close()
		lock.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	if err := os.Chown(path, 0, 0); err != nil {
		l.Close()
		lock.Close()
		return nil, fmt.Errorf("chown socket %s: %w", path, err)
	}
	return &Listener{Listener: l, lock: lock}, nil
}

// deadOwnerWait bounds how long Listen waits for the lock of a daemon that
// is gone. A child that daemon was forking when it was killed holds a copy
// of the lock (and of the socket) until it execs, which on a busy node can
// take a moment; a restart right after a crash must not fail on that.
var deadOwnerWait = 2 * time.Second

// takeLock locks f, waiting up to deadOwnerWait while the pid recorded in it
// is no longer alive.
func takeLock(f *os.File) error {
	deadline := time.Now().Add(deadOwnerWait)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) || alive(readPid(f)) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// alive reports whether pid (as recorded in a lock) names a live process;
// an unreadable pid counts as alive, so the lock is not waited for.
func alive(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return true
	}
	return !errors.Is(unix.Kill(n, 0), unix.ESRCH)
}

func readPid(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if s := strings.TrimSpace(string(b[:n])); s != "" {
		return s
	}
	return "unknown"
}
