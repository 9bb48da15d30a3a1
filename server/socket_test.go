package server

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// holdLock takes the lock of the socket at path as another daemon would,
// with pid (if any) written in it, and returns the lock's file.
func holdLock(t *testing.T, path, pid string) *os.File {
	t.Helper()
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(pid); err != nil {
		t.Fatal(err)
	}
	return f
}

// lockFree tells whether the lock of the socket at path can be taken.
func lockFree(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.OpenFile(path+".lock", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil
}

// Listen serves a root-owned 0660 socket, in a directory it makes, and
// records its pid in the lock. Only root can give the socket to root: for
// anyone else Listen fails at that step and keeps nothing.
func TestListen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", "berth", "berth.sock")
	l, err := Listen(path)
	if os.Geteuid() != 0 {
		if err == nil || !strings.Contains(err.Error(), "chown socket "+path) || !errors.Is(err, os.ErrPermission) {
			t.Fatalf("Listen as uid %d = %v, want a chown permission error naming the socket", os.Geteuid(), err)
		}
		if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("socket left after a failed Listen: %v", serr)
		}
		if !lockFree(t, path) {
			t.Error("lock kept after a failed Listen")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("socket mode %s owned by %d:%d, want a 0660 socket owned by root", fi.Mode(), st.Uid, st.Gid)
	}
	if b, err := os.ReadFile(path + ".lock"); err != nil || string(b) != strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("lock holds %q, %v; want our pid", b, err)
	}
	accepted := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err == nil {
			c.Close()
		}
		accepted <- err
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := <-accepted; err != nil {
		t.Errorf("Accept = %v", err)
	}

	// A second daemon on the same socket is refused, naming the first.
	if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "another berth (pid "+strconv.Itoa(os.Getpid())+") is already serving "+path) {
		t.Errorf("second Listen = %v", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if !lockFree(t, path) {
		t.Error("lock kept after Close")
	}
	// Once closed, the socket can be served again.
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("Listen after Close = %v", err)
	}
	l2.Close()
}

// The socket file a crashed daemon left behind (its lock is free) is
// replaced; the error past it, if any, is the chown of a non-root user.
func TestListenReplacesStaleSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "berth.sock")
	if err := os.WriteFile(path, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := Listen(path)
	if os.Geteuid() != 0 {
		if err == nil || !strings.Contains(err.Error(), "chown socket") {
			t.Fatalf("Listen = %v, want it to get as far as the chown", err)
		}
		if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
			t.Errorf("stale file still there: %v", serr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("path after Listen: %v, %v; want a socket", fi, err)
	}
}

// deadPid is above any pid_max, so it names no process.
const deadPid = "2147483646"

func shortDeadOwnerWait(t *testing.T) {
	old := deadOwnerWait
	deadOwnerWait = 200 * time.Millisecond
	t.Cleanup(func() { deadOwnerWait = old })
}

// A daemon killed while it forked leaves its lock with the child until the
// child execs: Listen waits for that instead of calling it another daemon.
func TestListenWaitsForALockItsDeadOwnerLeft(t *testing.T) {
	shortDeadOwnerWait(t)
	path := filepath.Join(t.TempDir(), "berth.sock")
	f := holdLock(t, path, deadPid+"\n")
	released := time.AfterFunc(50*time.Millisecond, func() { f.Close() })
	defer released.Stop()
	l, err := Listen(path)
	if os.Geteuid() != 0 {
		// past the lock, the next refusal is the chown
		if err == nil || !strings.Contains(err.Error(), "chown socket") {
			t.Fatalf("Listen = %v, want it to get past the lock to the chown", err)
		}
		return
	}
	if err != nil {
		t.Fatalf("Listen = %v, want it to wait for the lock", err)
	}
	l.Close()
}

func TestListenRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string) string // returns the socket path
		want  string
	}{
		{
			name: "lock held by a daemon with its pid",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "berth.sock")
				holdLock(t, p, strconv.Itoa(os.Getpid())+"\n")
				return p
			},
			want: "another berth (pid " + strconv.Itoa(os.Getpid()) + ") is already serving",
		},
		{
			// past any pid_max: a pid that names no process
			name: "lock kept by a child of a daemon that is gone",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "berth.sock")
				holdLock(t, p, deadPid+"\n")
				return p
			},
			want: "berth pid " + deadPid + " has exited but",
		},
		{
			name: "lock held by a daemon yet to write its pid",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "berth.sock")
				holdLock(t, p, "")
				return p
			},
			want: "another berth (pid unknown) is already serving",
		},
		{
			name: "socket directory cannot be made",
			setup: func(t *testing.T, dir string) string {
				if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
					t.Fatal(err)
				}
				return filepath.Join(dir, "file", "berth.sock")
			},
			want: "create socket directory",
		},
		{
			name: "lock cannot be opened",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "berth.sock")
				if err := os.Mkdir(p+".lock", 0o755); err != nil {
					t.Fatal(err)
				}
				return p
			},
			want: "open lock",
		},
		{
			name: "stale socket cannot be removed",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "berth.sock")
				if err := os.MkdirAll(filepath.Join(p, "child"), 0o755); err != nil {
					t.Fatal(err)
				}
				return p
			},
			want: "remove stale socket",
		},
		{
			name: "path too long for a unix socket",
			setup: func(t *testing.T, dir string) string {
				return filepath.Join(dir, strings.Repeat("s", 120)+".sock")
			},
			want: "listen on",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			shortDeadOwnerWait(t)
			path := tc.setup(t, t.TempDir())
			l, err := Listen(path)
			if err == nil {
				l.Close()
				t.Fatal("Listen succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Listen = %v, want %q", err, tc.want)
			}
		})
	}
}

// Close stops listening and gives the lock up, even when the listener was
// closed already.
func TestListenerClose(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, "s.sock"))
	if err != nil {
		t.Fatal(err)
	}
	lock := holdLock(t, filepath.Join(dir, "s.sock"), "1\n")
	l := &Listener{Listener: ln, lock: lock}
	if err := l.Close(); err != nil {
		t.Errorf("Close = %v", err)
	}
	if _, err := lock.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Errorf("lock file still open after Close: write = %v", err)
	}
	if !lockFree(t, filepath.Join(dir, "s.sock")) {
		t.Error("lock kept after Close")
	}
	if err := l.Close(); err == nil {
		t.Error("second Close = nil, want the listener's error")
	}
}
