package conmon

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func TestCreateArgv(t *testing.T) {
	b := Binary{Path: "/usr/bin/conmon", RuntimePath: "/usr/bin/crun", RuntimeRoot: "/run/crun", LogLevel: "info"}
	base := CreateArgs{
		ID: "abc", Name: "k8s_c", Bundle: "/b", PersistDir: "/p", ExitDir: "/e", SocketDir: "/s",
		ConmonPidFile: "/p/conmon.pid", ContainerPidFile: "/p/pidfile", LogPath: "/l/0.log",
	}
	common := []string{
		"--api-version", "1", "-c", "abc", "-u", "abc", "-n", "k8s_c", "-r", "/usr/bin/crun",
		"--runtime-arg", "--root=/run/crun", "--log-level", "info",
		"-b", "/b", "-P", "/p/conmon.pid", "-p", "/p/pidfile", "-l", "k8s-file:/l/0.log",
		"--exit-dir", "/e", "--persist-dir", "/p", "--socket-dir-path", "/s",
	}
	for _, tc := range []struct {
		name    string
		systemd bool
		edit    func(*CreateArgs)
		want    []string
	}{
		{name: "plain", want: common},
		{name: "log size", edit: func(a *CreateArgs) { a.LogSizeMax = 1 << 20 }, want: append(slices.Clone(common), "--log-size-max", "1048576")},
		{name: "terminal wins over stdin", edit: func(a *CreateArgs) { a.Terminal, a.Stdin = true, true }, want: append(slices.Clone(common), "-t")},
		{name: "stdin kept open", edit: func(a *CreateArgs) { a.Stdin = true }, want: append(slices.Clone(common), "-i", "--leave-stdin-open")},
		{name: "stdin once", edit: func(a *CreateArgs) { a.Stdin, a.StdinOnce = true, true }, want: append(slices.Clone(common), "-i")},
		{name: "systemd", systemd: true, want: slices.Insert(slices.Clone(common), 12, "-s")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := base
			if tc.edit != nil {
				tc.edit(&a)
			}
			bb := b
			bb.SystemdCgroup = tc.systemd
			if got := bb.CreateArgv(a); !slices.Equal(got, tc.want) {
				t.Errorf("CreateArgv:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestExecArgv(t *testing.T) {
	b := Binary{Path: "/c", RuntimePath: "/r", RuntimeRoot: "/root"}
	base := []string{
		"--api-version", "1", "-c", "id", "-u", "id", "-n", "n", "-r", "/r", "--runtime-arg", "--root=/root",
		"-e", "--exec-process-spec", "/x/p.json", "-p", "/x/pid", "-l", "k8s-file:/x/log", "--sync",
	}
	for _, tc := range []struct {
		name    string
		timeout time.Duration
		max     int64
		want    []string
	}{
		{name: "no timeout", want: base},
		{name: "sub-second timeout rounds up", timeout: 300 * time.Millisecond, want: append(slices.Clone(base), "-T", "1")},
		{name: "timeout and cap", timeout: 1500 * time.Millisecond, max: 16, want: append(slices.Clone(base), "--log-global-size-max", "16", "-T", "2")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := b.ExecArgv(ExecArgs{ID: "id", Name: "n", ProcessSpec: "/x/p.json", PidFile: "/x/pid", LogPath: "/x/log", Timeout: tc.timeout, LogSizeMax: tc.max})
			if !slices.Equal(got, tc.want) {
				t.Errorf("ExecArgv:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestParseLog(t *testing.T) {
	for _, tc := range []struct {
		name, log, stdout, stderr string
	}{
		{name: "empty"},
		{name: "full lines", log: "2024-01-01T00:00:00.1Z stdout F hi\n2024-01-01T00:00:00.2Z stderr F oops\n", stdout: "hi\n", stderr: "oops\n"},
		{name: "partial lines join", log: "t stdout P ab\nt stdout F cd\nt stdout P ef\n", stdout: "abcd\nef"},
		{name: "garbage skipped", log: "nonsense\nt stdin F x\nt stdout F ok\n", stdout: "ok\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errb := ParseLog([]byte(tc.log))
			if string(out) != tc.stdout || string(errb) != tc.stderr {
				t.Errorf("ParseLog = %q, %q; want %q, %q", out, errb, tc.stdout, tc.stderr)
			}
		})
	}
}

func TestReadExitFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, content string
		want          int32
		wantErr       bool
	}{
		{name: "zero", content: "0", want: 0},
		{name: "signal", content: "137", want: 137},
		{name: "newline", content: "3\n", want: 3},
		{name: "negative", content: "-1", want: -1},
		{name: "garbage", content: "x", wantErr: true},
		{name: "empty", content: "", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			if err := os.WriteFile(p, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
			if err := os.Chtimes(p, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			code, finished, err := ReadExitFile(p)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err == nil && (code != tc.want || !finished.Equal(mtime)) {
				t.Errorf("got %d at %v, want %d at %v", code, finished, tc.want, mtime)
			}
		})
	}
	if _, _, err := ReadExitFile(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want ErrNotExist", err)
	}
}

func TestIsConmonRejectsOtherProcesses(t *testing.T) {
	if IsConmon(os.Getpid(), "x") || IsConmon(0, "x") || IsConmon(1<<30, "x") {
		t.Error("IsConmon accepted a process that is not conmon")
	}
	if !ProcessAlive(os.Getpid()) || ProcessAlive(1<<30) {
		t.Error("ProcessAlive is wrong about this process or a missing one")
	}
}

func TestWriteCtlWithoutReader(t *testing.T) {
	if err := ReopenLog(filepath.Join(t.TempDir(), "ctl")); !errors.Is(err, ErrNoConmon) {
		t.Errorf("missing fifo: err = %v, want ErrNoConmon", err)
	}
}

// TestStartHandshake runs a stand-in for conmon that checks it was placed
// (Place ran) before the start pipe released it, then reports a pid.
func TestStartHandshake(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "placed")
	script := `head -c1 <&4 >/dev/null; if [ -e placed ]; then echo '{"data": 42}' >&3; else echo '{"data": -1, "message": "not placed"}' >&3; fi`
	var placedPid int
	p, err := Start(Cmd{
		Path: "/bin/sh", Args: []string{"-c", script}, Dir: dir,
		Place: func(pid int) error { placedPid = pid; return os.WriteFile(marker, nil, 0o600) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if placedPid != p.Pid() {
		t.Errorf("Place got pid %d, want %d", placedPid, p.Pid())
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := p.Next(ctx)
	if err != nil || m.Data != 42 {
		t.Fatalf("Next = %+v, %v; want data 42", m, err)
	}
	if _, err := p.Next(ctx); !errors.Is(err, io.EOF) {
		t.Errorf("second Next: err = %v, want EOF", err)
	}
	if err := p.Wait(); err != nil {
		t.Errorf("Wait: %v", err)
	}
}

func TestNextTimesOut(t *testing.T) {
	p, err := Start(Cmd{Path: "/bin/sh", Args: []string{"-c", "exec sleep 5"}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := p.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next: err = %v, want DeadlineExceeded", err)
	}
}
