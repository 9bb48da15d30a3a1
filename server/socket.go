package server

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

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
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		owner := readPid(lock)
		lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
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

func readPid(f *os.File) string {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if s := strings.TrimSpace(string(b[:n])); s != "" {
		return s
	}
	return "unknown"
}
