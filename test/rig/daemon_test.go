package rig

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shortTempDir returns a temp dir short enough for a unix socket path
// (t.TempDir's names, built from the test name, can pass 107 bytes).
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "rig-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestStartBerthWaitsForSocketAndStops(t *testing.T) {
	t.Setenv("BERTH_RIG_FAKE_DAEMON", "listen")
	root := shortTempDir(t)
	d, err := StartBerth(context.Background(), os.Args[0], root, "--log-level", "debug")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Kill() })

	c, err := net.Dial("unix", d.Socket)
	if err != nil {
		t.Fatalf("StartBerth returned before %s accepted connections: %v", d.Socket, err)
	}
	c.Close()
	if info, err := os.Stat(filepath.Join(root, "berth.toml")); err != nil || info.Size() != 0 {
		t.Errorf("want an empty berth.toml: %v", err)
	}
	if err := d.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}

	log, err := os.ReadFile(d.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"--listen " + filepath.Join(root, "berth.sock"),
		"--root " + filepath.Join(root, "storage"),
		"--runroot " + filepath.Join(root, "runroot"),
		"--state-dir " + filepath.Join(root, "state"),
		"--run-dir " + filepath.Join(root, "run"),
		"--config " + filepath.Join(root, "berth.toml"),
		"--config-dir " + filepath.Join(root, "berth.toml.d"),
		"--log-level debug", // extra args come last
		"fake berth: shutting down",
	} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestStartBerthReportsEarlyExitWithLog(t *testing.T) {
	t.Setenv("BERTH_RIG_FAKE_DAEMON", "crash")
	_, err := StartBerth(context.Background(), os.Args[0], shortTempDir(t))
	if err == nil || !strings.Contains(err.Error(), "storage is on fire") || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("StartBerth of a crashing daemon: %v; want the exit and the log tail", err)
	}
}

func TestKillIsACrash(t *testing.T) {
	t.Setenv("BERTH_RIG_FAKE_DAEMON", "listen")
	d, err := StartBerth(context.Background(), os.Args[0], shortTempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Kill(); err != nil {
		t.Fatal(err)
	}
	if d.ExitErr() == nil {
		t.Error("a killed daemon reported a clean exit")
	}
	if err := d.Stop(); err != nil {
		t.Errorf("Stop after Kill: %v, want nil (already stopped)", err)
	}
}

func TestCrictlErrorCarriesStderr(t *testing.T) {
	_, err := Crictl(context.Background(), filepath.Join(shortTempDir(t), "none.sock"), "version")
	if err == nil {
		t.Fatal("crictl against a missing socket succeeded")
	}
	if !strings.Contains(err.Error(), "crictl version") || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("error lacks the command or crictl's stderr: %v", err)
	}
}

// serverSpeaks tells a live server from a socket nobody serves: one whose
// listener is gone, and one still held open by a process that never accepts
// (what a child forked by a SIGKILLed daemon leaves for a moment).
func TestServerSpeaks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		serve func(t *testing.T, l *net.UnixListener)
		want  bool
	}{
		{"server writes first", func(t *testing.T, l *net.UnixListener) {
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					c.Write([]byte("settings"))
					c.Close()
				}
			}()
		}, true},
		{"listening, never accepting", func(t *testing.T, l *net.UnixListener) {}, false},
		{"accepts, never writes", func(t *testing.T, l *net.UnixListener) {
			go func() {
				for {
					c, err := l.Accept()
					if err != nil {
						return
					}
					t.Cleanup(func() { c.Close() })
				}
			}()
		}, false},
		{"stale socket file", func(t *testing.T, l *net.UnixListener) {
			l.SetUnlinkOnClose(false)
			l.Close()
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(shortTempDir(t), "s.sock")
			l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
			tc.serve(t, l)
			if got := serverSpeaks(sock); got != tc.want {
				t.Errorf("serverSpeaks = %v, want %v", got, tc.want)
			}
		})
	}
}
