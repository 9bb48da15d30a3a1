package oci

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/errdefs"
)

func TestExecProcess(t *testing.T) {
	base := &specs.Process{
		Args: []string{"sleep", "1000"}, Cwd: "/work", Env: []string{"PATH=/bin", "HOME=/root"},
		User:            specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5}},
		Capabilities:    &specs.LinuxCapabilities{Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_KILL"}},
		Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
		NoNewPrivileges: true, ApparmorProfile: "berth-default", Terminal: true,
		ConsoleSize: &specs.Box{Height: 1, Width: 1},
	}
	for _, tc := range []struct {
		name     string
		cmd      []string
		tty      bool
		size     *TerminalSize
		wantEnv  []string
		wantTerm bool
		wantBox  *specs.Box
	}{
		{name: "no terminal", cmd: []string{"echo", "hi"}, wantEnv: []string{"PATH=/bin", "HOME=/root"}},
		{name: "terminal gets TERM", cmd: []string{"sh"}, tty: true, wantTerm: true,
			wantEnv: []string{"PATH=/bin", "HOME=/root", "TERM=xterm"}},
		{name: "terminal with a size", cmd: []string{"sh"}, tty: true, size: &TerminalSize{Width: 90, Height: 30}, wantTerm: true,
			wantEnv: []string{"PATH=/bin", "HOME=/root", "TERM=xterm"}, wantBox: &specs.Box{Height: 30, Width: 90}},
		{name: "a zero size is no size", cmd: []string{"sh"}, tty: true, size: &TerminalSize{}, wantTerm: true,
			wantEnv: []string{"PATH=/bin", "HOME=/root", "TERM=xterm"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := execProcess(base, tc.cmd, tc.tty, tc.size)
			if !reflect.DeepEqual(p.Args, tc.cmd) || !reflect.DeepEqual(p.Env, tc.wantEnv) || p.Terminal != tc.wantTerm || !reflect.DeepEqual(p.ConsoleSize, tc.wantBox) {
				t.Errorf("process = args %v env %v terminal %v size %v", p.Args, p.Env, p.Terminal, p.ConsoleSize)
			}
			// Everything else is the container's.
			if p.Cwd != base.Cwd || !reflect.DeepEqual(p.User, base.User) || p.Capabilities != base.Capabilities ||
				!reflect.DeepEqual(p.Rlimits, base.Rlimits) || !p.NoNewPrivileges || p.ApparmorProfile != base.ApparmorProfile {
				t.Errorf("process lost the container's settings: %+v", p)
			}
		})
	}
	t.Run("the container's TERM is kept", func(t *testing.T) {
		p := execProcess(&specs.Process{Env: []string{"TERM=vt100"}}, []string{"sh"}, true, nil)
		if !reflect.DeepEqual(p.Env, []string{"TERM=vt100"}) {
			t.Errorf("env = %v", p.Env)
		}
	})
	if !reflect.DeepEqual(base.Env, []string{"PATH=/bin", "HOME=/root"}) || base.Args[0] != "sleep" || !base.Terminal {
		t.Errorf("base process modified: %+v", base)
	}
}

func TestTailBuffer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		writes []string
		want   string
	}{
		{"short", []string{"ab", "cd"}, "abcd"},
		{"keeps the tail", []string{"abcdef", "gh"}, "defgh"},
		{"one long write", []string{"0123456789"}, "56789"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := &tailBuffer{max: 5}
			for _, w := range tc.writes {
				if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			if b.String() != tc.want || b.Len() != len(tc.want) {
				t.Errorf("tail = %q, want %q", b.String(), tc.want)
			}
		})
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a polling reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitOutput waits until out contains want.
func waitOutput(t *testing.T, out *syncBuffer, want string) {
	t.Helper()
	if !waitFor(longWait, func() bool { return strings.Contains(out.String(), want) }) {
		t.Fatalf("output lacks %q:\n%s", want, out.String())
	}
}

// waitTerminalSize has the shell reading in run `stty size` until it prints
// size ("rows cols"), its output going to out: a resize reaches the terminal
// on its own goroutine (and through conmon for an attach), at no moment the
// test can see. Each round waits for its own marker, which the shell
// expands, so the terminal's echo of the command line does not match it.
func waitTerminalSize(t *testing.T, in io.Writer, out *syncBuffer, size string) {
	t.Helper()
	deadline := time.Now().Add(longWait)
	for round := 1; !strings.Contains(out.String(), size); round++ {
		if time.Now().After(deadline) {
			t.Fatalf("terminal size never became %q:\n%s", size, out.String())
		}
		fmt.Fprintf(in, "stty size; echo size-check-$((%d))-done\n", round)
		waitOutput(t, out, fmt.Sprintf("size-check-%d-done", round))
	}
}

// runningContainer creates and starts a container of env running args.
func runningContainer(t *testing.T, env *testEnv, terminal, stdin bool, args ...string) *Container {
	t.Helper()
	c := env.newContainer(args...)
	if terminal {
		spec := testSpec(testRootfs, args, env.parent+"/"+c.ID)
		spec.Process.Terminal = true
		writeSpec(t, c.BundleDir, spec)
	}
	c.Terminal, c.Stdin = terminal, stdin
	if _, err := env.rt.CreateContainer(bgCtx(), c); err != nil {
		t.Fatal(err)
	}
	if err := env.rt.StartContainer(bgCtx(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// containerProcs lists the command lines of the processes in c's cgroup.
func containerProcs(t *testing.T, env *testEnv, c *Container) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", env.parent, c.ID, "cgroup.procs"))
	if err != nil {
		t.Fatalf("read container's cgroup: %v", err)
	}
	var cmds []string
	for _, pid := range strings.Fields(string(b)) {
		cmdline, _ := os.ReadFile("/proc/" + pid + "/cmdline")
		cmds = append(cmds, strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return cmds
}

func TestExecStream(t *testing.T) {
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			env := newTestEnv(t, h)
			c := runningContainer(t, env, false, false, "sleep", "1000")

			t.Run("output and exit code", func(t *testing.T) {
				var out, errOut syncBuffer
				code, err := env.rt.ExecStream(bgCtx(), c, []string{"sh", "-c", "echo hi; echo oops >&2; exit 3"}, Streams{Stdout: &out, Stderr: &errOut})
				if err != nil || code != 3 || out.String() != "hi\n" || errOut.String() != "oops\n" {
					t.Errorf("ExecStream = %d, %v; stdout %q stderr %q", code, err, out.String(), errOut.String())
				}
			})
			t.Run("stdin", func(t *testing.T) {
				var out syncBuffer
				code, err := env.rt.ExecStream(bgCtx(), c, []string{"sh", "-c", "tr a-z A-Z; id -u"}, Streams{Stdin: strings.NewReader("hello\n"), Stdout: &out})
				if err != nil || code != 0 || out.String() != "HELLO\n0\n" {
					t.Errorf("ExecStream = %d, %v; stdout %q", code, err, out.String())
				}
			})
			t.Run("a background child does not hold the session", func(t *testing.T) {
				if !env.rt.handsOverTerminal() {
					// runc copies the process's output itself and waits
					// until every holder of it has closed it.
					t.Skipf("%s waits for the output of background children", h)
				}
				var out syncBuffer
				start := time.Now()
				code, err := env.rt.ExecStream(bgCtx(), c, []string{"sh", "-c", "sleep 30 & echo $!"}, Streams{Stdout: &out})
				if err != nil || code != 0 || time.Since(start) > 10*time.Second {
					t.Errorf("ExecStream = %d, %v after %v; stdout %q", code, err, time.Since(start), out.String())
				}
				if _, err := env.rt.ExecSync(bgCtx(), c, []string{"kill", strings.TrimSpace(out.String())}, longWait); err != nil {
					t.Error(err)
				}
			})
			t.Run("missing binary", func(t *testing.T) {
				var errOut syncBuffer
				_, err := env.rt.ExecStream(bgCtx(), c, []string{"/no/such/binary"}, Streams{Stderr: &errOut})
				if err == nil || !strings.Contains(err.Error(), c.ID) {
					t.Errorf("exec of a missing binary: %v", err)
				}
				t.Logf("error: %v", err)
			})
			t.Run("terminal", func(t *testing.T) {
				inR, inW := io.Pipe()
				resize := make(chan TerminalSize, 1)
				resize <- TerminalSize{Width: 90, Height: 30}
				var out syncBuffer
				type result struct {
					code int32
					err  error
				}
				res := make(chan result, 1)
				go func() {
					code, err := env.rt.ExecStream(bgCtx(), c, []string{"sh"}, Streams{Stdin: inR, Stdout: &out, TTY: true, Resize: resize})
					res <- result{code, err}
				}()
				fmt.Fprintf(inW, "stty size; echo term=$TERM\n")
				waitOutput(t, &out, "30 90")
				waitOutput(t, &out, "term=xterm")
				resize <- TerminalSize{Width: 100, Height: 40}
				waitTerminalSize(t, inW, &out, "40 100")
				fmt.Fprintf(inW, "tty\n")
				waitOutput(t, &out, "/dev/pts/")
				fmt.Fprintf(inW, "exit 4\n")
				select {
				case r := <-res:
					if r.err != nil || r.code != 4 {
						t.Errorf("ExecStream = %d, %v; output:\n%s", r.code, r.err, out.String())
					}
				case <-time.After(longWait):
					t.Fatalf("terminal session did not end; output:\n%s", out.String())
				}
				inW.Close()
			})
			t.Run("cancel kills the process", func(t *testing.T) {
				ctx, cancel := context.WithCancel(bgCtx())
				res := make(chan error, 1)
				for _, tty := range []bool{false, true} {
					var out syncBuffer
					go func() {
						_, err := env.rt.ExecStream(ctx, c, []string{"sh", "-c", "echo up; exec sleep 999"}, Streams{Stdout: &out, TTY: tty})
						res <- err
					}()
					waitOutput(t, &out, "up")
					cancel()
					select {
					case err := <-res:
						if !errors.Is(err, context.Canceled) {
							t.Errorf("tty %v: cancelled exec = %v", tty, err)
						}
					case <-time.After(longWait):
						t.Fatalf("tty %v: cancelled exec did not return", tty)
					}
					ctx, cancel = context.WithCancel(bgCtx())
				}
				cancel()
			})
			t.Run("concurrent sessions leave only the container's process", func(t *testing.T) {
				var wg sync.WaitGroup
				for i := range 10 {
					wg.Go(func() {
						var out syncBuffer
						code, err := env.rt.ExecStream(bgCtx(), c, []string{"sh", "-c", fmt.Sprintf("echo n%d; exit %d", i, i)}, Streams{Stdout: &out, TTY: i%2 == 0})
						if err != nil || code != int32(i) || !strings.Contains(out.String(), fmt.Sprintf("n%d", i)) {
							t.Errorf("session %d = %d, %v; %q", i, code, err, out.String())
						}
					})
				}
				wg.Wait()
				if !waitFor(longWait, func() bool { return len(containerProcs(t, env, c)) == 1 }) {
					t.Errorf("processes in the container after the sessions: %q", containerProcs(t, env, c))
				}
				for _, p := range processesMentioning(c.ID) {
					if strings.Contains(p, " exec ") {
						t.Errorf("runtime exec process left: %s", p)
					}
				}
				if ents, _ := os.ReadDir(env.rt.PersistDir(c)); len(ents) > 0 {
					for _, e := range ents {
						if strings.HasPrefix(e.Name(), "exec-") {
							t.Errorf("exec dir left: %s", e.Name())
						}
					}
				}
			})

			if err := env.rt.StopContainer(bgCtx(), c, 0, 0); err != nil {
				t.Fatal(err)
			}
			if !waitFor(longWait, func() bool { _, exited, _ := env.rt.Exit(c); return exited }) {
				t.Fatal("the container did not exit after its stop")
			}
			_, err := env.rt.ExecStream(bgCtx(), c, []string{"true"}, Streams{})
			if !errors.Is(err, errdefs.ErrFailedPrecondition) && !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("exec in a stopped container: %v, want FailedPrecondition", err)
			}
			t.Logf("stopped: %v", err)
		})
	}
}

func TestAttach(t *testing.T) {
	for _, h := range handlers {
		t.Run(h, func(t *testing.T) {
			env := newTestEnv(t, h)
			t.Run("stdin and both outputs", func(t *testing.T) {
				c := runningContainer(t, env, false, true, "sh", "-c", "while read l; do echo out:$l; echo err:$l >&2; done")
				inR, inW := io.Pipe()
				var out, errOut syncBuffer
				res := make(chan error, 1)
				go func() { res <- env.rt.Attach(bgCtx(), c, Streams{Stdin: inR, Stdout: &out, Stderr: &errOut}) }()
				fmt.Fprintf(inW, "hello\n")
				waitOutput(t, &out, "out:hello\n")
				waitOutput(t, &errOut, "err:hello\n")
				inW.Close() // detaches: the container keeps its stdin (not StdinOnce)
				if err := <-res; err != nil {
					t.Errorf("Attach = %v", err)
				}
				if _, exited, _ := env.rt.Exit(c); exited {
					t.Errorf("container exited when the client detached")
				}
			})
			t.Run("terminal", func(t *testing.T) {
				c := runningContainer(t, env, true, true, "sh")
				inR, inW := io.Pipe()
				var out syncBuffer
				resize := make(chan TerminalSize, 1)
				resize <- TerminalSize{Width: 77, Height: 22}
				res := make(chan error, 1)
				go func() { res <- env.rt.Attach(bgCtx(), c, Streams{Stdin: inR, Stdout: &out, TTY: true, Resize: resize}) }()
				waitTerminalSize(t, inW, &out, "22 77")
				fmt.Fprintf(inW, "exit 0\n")
				select {
				case err := <-res:
					if err != nil {
						t.Errorf("Attach = %v", err)
					}
				case <-time.After(longWait):
					t.Fatal("attach did not end when the container exited")
				}
			})
			t.Run("stdin of a container without it", func(t *testing.T) {
				c := runningContainer(t, env, false, false, "sleep", "1000")
				err := env.rt.Attach(bgCtx(), c, Streams{Stdin: strings.NewReader("x"), Stdout: io.Discard})
				if !errors.Is(err, errdefs.ErrFailedPrecondition) {
					t.Errorf("Attach with stdin = %v, want FailedPrecondition", err)
				}
				if err := env.rt.StopContainer(bgCtx(), c, 0, 0); err != nil {
					t.Fatal(err)
				}
				if !waitFor(longWait, func() bool { _, exited, _ := env.rt.Exit(c); return exited }) {
					t.Fatal("the container did not exit after its stop")
				}
				if !waitFor(longWait, func() bool { _, err := os.Stat(env.rt.AttachSocketPath(c)); return err != nil }) {
					t.Fatal("conmon kept its attach socket after the container exited")
				}
				err = env.rt.Attach(bgCtx(), c, Streams{Stdout: io.Discard})
				if !errors.Is(err, errdefs.ErrFailedPrecondition) {
					t.Errorf("Attach to a stopped container = %v, want FailedPrecondition", err)
				}
			})
		})
	}
}

// packets is a reader returning one packet per Read, as a SOCK_SEQPACKET
// socket does.
type packets [][]byte

func (p *packets) Read(b []byte) (int, error) {
	if len(*p) == 0 {
		return 0, io.EOF
	}
	n := copy(b, (*p)[0])
	*p = (*p)[1:]
	return n, nil
}

func TestAttachOutputDemux(t *testing.T) {
	for _, tc := range []struct {
		name          string
		pkts          [][]byte
		noStderr      bool
		stdout, stder string
	}{
		{name: "streams", pkts: [][]byte{{2, 'a', 'b'}, {3, 'e'}, {2, 'c'}}, stdout: "abc", stder: "e"},
		{name: "stdin and unknown streams are dropped", pkts: [][]byte{{1, 'x'}, {9, 'y'}, {2, 'o'}}, stdout: "o"},
		{name: "a packet without payload", pkts: [][]byte{{2}, {2, 'z'}}, stdout: "z"},
		{name: "an empty packet ends the stream", pkts: [][]byte{{2, 'a'}, {}, {2, 'z'}}, stdout: "a"},
		{name: "no stderr writer", pkts: [][]byte{{3, 'e'}, {2, 'o'}}, noStderr: true, stdout: "o"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			var errW io.Writer = &errOut
			if tc.noStderr {
				errW = nil
			}
			p := packets(tc.pkts)
			if err := copyAttachOutput(&p, &out, errW); err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.stdout || errOut.String() != tc.stder {
				t.Errorf("stdout %q stderr %q, want %q %q", out.String(), errOut.String(), tc.stdout, tc.stder)
			}
		})
	}
}

// packetSizes records the size of every write.
type packetSizes []int

func (p *packetSizes) Write(b []byte) (int, error) { *p = append(*p, len(b)); return len(b), nil }

func TestAttachInputPackets(t *testing.T) {
	var sizes packetSizes
	if err := copyAttachInput(&sizes, bytes.NewReader(make([]byte, 3*attachWrite+5))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual([]int(sizes), []int{attachWrite, attachWrite, attachWrite, 5}) {
		t.Errorf("packet sizes = %v", sizes)
	}
}
