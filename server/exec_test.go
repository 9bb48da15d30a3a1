package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/streaming"
)

// scriptRuntime is the fake runtime with the calls a test scripts: exec,
// attach, log reopening and resource updates, and what the container's
// monitor says (whether its init runs, the exit it wrote). An unset script
// keeps the fake's behaviour.
type scriptRuntime struct {
	*fakeRuntime
	execSync   func(c *oci.Container, cmd []string, timeout time.Duration) (*oci.ExecResult, error)
	execStream func(c *oci.Container, cmd []string, st oci.Streams) (int32, error)
	attach     func(c *oci.Container, st oci.Streams) error
	reopenLog  func(c *oci.Container) error
	update     func(c *oci.Container, res *specs.LinuxResources) error

	mu      sync.Mutex
	calls   []string         // "<method> <container id>"
	running map[string]bool  // id → its init runs
	exits   map[string]int32 // id → the code of the exit its monitor wrote
	exitErr error            // reading any exit fails with it
}

func newScriptRuntime(f *fakeRuntime) *scriptRuntime {
	return &scriptRuntime{fakeRuntime: f, running: map[string]bool{}, exits: map[string]int32{}}
}

// run makes id's init run; exit makes it exit with code, its exit written;
// vanish makes it gone with no exit written yet.
func (r *scriptRuntime) run(id string) { r.mu.Lock(); r.running[id] = true; r.mu.Unlock() }
func (r *scriptRuntime) exit(id string, code int32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.running[id], r.exits[id] = false, code
}
func (r *scriptRuntime) vanish(id string) { r.mu.Lock(); r.running[id] = false; r.mu.Unlock() }

func (r *scriptRuntime) failExits(err error) { r.mu.Lock(); r.exitErr = err; r.mu.Unlock() }

func (r *scriptRuntime) called(what string, c *oci.Container) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, what+" "+c.ID)
}

func (r *scriptRuntime) callList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *scriptRuntime) ExecSync(ctx context.Context, c *oci.Container, cmd []string, timeout time.Duration) (*oci.ExecResult, error) {
	r.called("execsync", c)
	if r.execSync == nil {
		return r.fakeRuntime.ExecSync(ctx, c, cmd, timeout)
	}
	return r.execSync(c, cmd, timeout)
}

func (r *scriptRuntime) ExecStream(ctx context.Context, c *oci.Container, cmd []string, st oci.Streams) (int32, error) {
	r.called("exec", c)
	if r.execStream == nil {
		return r.fakeRuntime.ExecStream(ctx, c, cmd, st)
	}
	return r.execStream(c, cmd, st)
}

func (r *scriptRuntime) Attach(ctx context.Context, c *oci.Container, st oci.Streams) error {
	r.called("attach", c)
	if r.attach == nil {
		return r.fakeRuntime.Attach(ctx, c, st)
	}
	return r.attach(c, st)
}

func (r *scriptRuntime) ReopenLog(ctx context.Context, c *oci.Container) error {
	r.called("reopen", c)
	if r.reopenLog == nil {
		return r.fakeRuntime.ReopenLog(ctx, c)
	}
	return r.reopenLog(c)
}

func (r *scriptRuntime) UpdateResources(ctx context.Context, c *oci.Container, res *specs.LinuxResources) error {
	r.called("update", c)
	if r.update == nil {
		return r.fakeRuntime.UpdateResources(ctx, c, res)
	}
	return r.update(c, res)
}

func (r *scriptRuntime) Exit(c *oci.Container) (oci.ExitStatus, bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.exitErr != nil {
		return oci.ExitStatus{}, false, fmt.Errorf("exit status of container %s: %w", c.ID, r.exitErr)
	}
	code, ok := r.exits[c.ID]
	return oci.ExitStatus{Code: code, Finished: time.Now()}, ok, nil
}

func (r *scriptRuntime) InitAlive(c *oci.Container) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running[c.ID]
}

// InitPid is known for every container whose init ran.
func (r *scriptRuntime) InitPid(c *oci.Container) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.running[c.ID]; !ok {
		return 0, fmt.Errorf("init pid of container %s: %w", c.ID, errdefs.ErrNotFound)
	}
	return 4242, nil
}

// scriptedServer is a fake-backed server whose handler "crun" is a
// scriptRuntime, with a running container "run-1", a created one "new-1"
// and an exited one "done-1", all of pod "pod-1".
func scriptedServer(t *testing.T) (*Server, *fakes, *scriptRuntime) {
	t.Helper()
	s, f := fakeServer(t)
	rt := newScriptRuntime(f.runtime)
	s.runtimes = map[string]OCIRuntime{"crun": rt}
	addReadyPod(t, s, "pod-1", hostNetworkPod("exec"))
	addContainerWith(t, s, "run-1", "pod-1", &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: "run"}, Stdin: true}, container.StateRunning)
	addContainer(t, s, "new-1", "pod-1", container.StateCreated)
	addContainer(t, s, "done-1", "pod-1", container.StateExited)
	rt.run("run-1")
	rt.exit("done-1", 0)
	return s, f, rt
}

func stateOf(t *testing.T, s *Server, id string) container.State {
	t.Helper()
	c, err := s.containers.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	return c.State()
}

func TestExecSync(t *testing.T) {
	errRuntime := errors.New("crun exec: executable file not found")
	for _, tc := range []struct {
		name  string
		req   *runtime.ExecSyncRequest
		exec  func(rt *scriptRuntime) func(*oci.Container, []string, time.Duration) (*oci.ExecResult, error)
		code  codes.Code
		names string
		// after is the state of the container once the call returned.
		after container.State
	}{
		{name: "empty container id", req: &runtime.ExecSyncRequest{Cmd: []string{"true"}}, code: codes.InvalidArgument, names: "container_id"},
		{name: "unknown container", req: &runtime.ExecSyncRequest{ContainerId: "nope", Cmd: []string{"true"}}, code: codes.NotFound, names: "nope"},
		{name: "no command", req: &runtime.ExecSyncRequest{ContainerId: "run-1"}, code: codes.InvalidArgument, names: "cmd", after: container.StateRunning},
		{name: "created container", req: &runtime.ExecSyncRequest{ContainerId: "new-1", Cmd: []string{"true"}}, code: codes.FailedPrecondition, names: "new-1 is created"},
		{name: "exited container", req: &runtime.ExecSyncRequest{ContainerId: "done-1", Cmd: []string{"true"}}, code: codes.FailedPrecondition, names: "done-1 is exited"},
		{
			name: "timed out",
			req:  &runtime.ExecSyncRequest{ContainerId: "run-1", Cmd: []string{"sleep", "9"}, Timeout: 1},
			exec: func(*scriptRuntime) func(*oci.Container, []string, time.Duration) (*oci.ExecResult, error) {
				return func(c *oci.Container, _ []string, d time.Duration) (*oci.ExecResult, error) {
					return nil, fmt.Errorf("exec in %s: killed after %s: %w", c.ID, d, errdefs.ErrDeadlineExceeded)
				}
			},
			code: codes.DeadlineExceeded, names: "killed after 1s", after: container.StateRunning,
		},
		{
			name: "container exited under the exec",
			req:  &runtime.ExecSyncRequest{ContainerId: "run-1", Cmd: []string{"true"}},
			exec: func(rt *scriptRuntime) func(*oci.Container, []string, time.Duration) (*oci.ExecResult, error) {
				return func(c *oci.Container, _ []string, _ time.Duration) (*oci.ExecResult, error) {
					rt.exit(c.ID, 137) // conmon wrote the exit
					return nil, errRuntime
				}
			},
			code: codes.FailedPrecondition, names: "the container is exited", after: container.StateExited,
		},
		{
			name: "container's init gone before its exit is written",
			req:  &runtime.ExecSyncRequest{ContainerId: "run-1", Cmd: []string{"true"}},
			exec: func(rt *scriptRuntime) func(*oci.Container, []string, time.Duration) (*oci.ExecResult, error) {
				return func(c *oci.Container, _ []string, _ time.Duration) (*oci.ExecResult, error) {
					rt.vanish(c.ID) // no init, no exit file yet
					return nil, errRuntime
				}
			},
			code: codes.FailedPrecondition, names: "exited during the exec", after: container.StateRunning,
		},
		{
			name: "runtime fails, container still runs",
			req:  &runtime.ExecSyncRequest{ContainerId: "run-1", Cmd: []string{"nosuch"}},
			exec: func(*scriptRuntime) func(*oci.Container, []string, time.Duration) (*oci.ExecResult, error) {
				return func(*oci.Container, []string, time.Duration) (*oci.ExecResult, error) { return nil, errRuntime }
			},
			code: codes.Internal, names: "exec in container run-1: crun exec: executable file not found", after: container.StateRunning,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, rt := scriptedServer(t)
			if tc.exec != nil {
				rt.execSync = tc.exec(rt)
			}
			_, err := s.ExecSync(context.Background(), tc.req)
			wantCode(t, err, tc.code, tc.names)
			if tc.exec == nil && len(rt.callList()) != 0 {
				t.Errorf("runtime called for a refused exec: %v", rt.callList())
			}
			if tc.after != "" {
				if got := stateOf(t, s, tc.req.GetContainerId()); got != tc.after {
					t.Errorf("container is %s after the call, want %s", got, tc.after)
				}
			}
		})
	}
}

func TestExecSyncReturnsTheCommandsResult(t *testing.T) {
	s, _, rt := scriptedServer(t)
	var gotCmd []string
	var gotTimeout time.Duration
	rt.execSync = func(c *oci.Container, cmd []string, timeout time.Duration) (*oci.ExecResult, error) {
		gotCmd, gotTimeout = cmd, timeout
		return &oci.ExecResult{Stdout: []byte("hello\n"), Stderr: []byte("warning\n"), ExitCode: 3}, nil
	}
	resp, err := s.ExecSync(context.Background(), &runtime.ExecSyncRequest{ContainerId: "run", Cmd: []string{"sh", "-c", "echo hello"}, Timeout: 7})
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.GetStdout()) != "hello\n" || string(resp.GetStderr()) != "warning\n" || resp.GetExitCode() != 3 {
		t.Errorf("response = %q %q %d", resp.GetStdout(), resp.GetStderr(), resp.GetExitCode())
	}
	if strings.Join(gotCmd, " ") != "sh -c echo hello" || gotTimeout != 7*time.Second {
		t.Errorf("runtime got %q with timeout %s", gotCmd, gotTimeout)
	}
	if calls := rt.callList(); len(calls) != 1 || calls[0] != "execsync run-1" { // the prefix resolved
		t.Errorf("runtime calls = %v", calls)
	}
}

func TestReopenContainerLog(t *testing.T) {
	errRuntime := errors.New("conmon socket: connection refused")
	for _, tc := range []struct {
		name   string
		id     string
		reopen func(*oci.Container) error
		code   codes.Code
		names  string
		calls  int
	}{
		{name: "running container", id: "run-1", code: codes.OK, calls: 1},
		{name: "empty container id", id: "", code: codes.InvalidArgument, names: "container_id"},
		{name: "unknown container", id: "nope", code: codes.NotFound, names: "nope"},
		{name: "created container", id: "new-1", code: codes.FailedPrecondition, names: "new-1"},
		{name: "exited container", id: "done-1", code: codes.FailedPrecondition, names: "done-1"},
		{name: "conmon fails", id: "run-1", reopen: func(*oci.Container) error { return errRuntime }, code: codes.Internal, names: "reopen log of container run-1", calls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, rt := scriptedServer(t)
			rt.reopenLog = tc.reopen
			_, err := s.ReopenContainerLog(context.Background(), &runtime.ReopenContainerLogRequest{ContainerId: tc.id})
			wantCode(t, err, tc.code, tc.names)
			if got := len(rt.callList()); got != tc.calls {
				t.Errorf("runtime called %d times, want %d", got, tc.calls)
			}
		})
	}
}

// An exit that cannot be read leaves the container running; one that
// cannot be recorded is read again on the next look.
func TestExitThatCannotBeReadOrRecorded(t *testing.T) {
	t.Run("unreadable", func(t *testing.T) {
		s, _, rt := scriptedServer(t)
		rt.exit("run-1", 1)
		rt.failExits(errors.New("exit file: bad content"))
		if _, err := s.ReopenContainerLog(context.Background(), &runtime.ReopenContainerLogRequest{ContainerId: "run-1"}); err != nil {
			t.Errorf("ReopenContainerLog = %v", err)
		}
		if got := stateOf(t, s, "run-1"); got != container.StateRunning {
			t.Errorf("container is %s after an unreadable exit, want running", got)
		}
	})
	t.Run("unrecordable", func(t *testing.T) {
		s, f, rt := scriptedServer(t)
		rt.exit("run-1", 1)
		f.j.failAt("record save created", 1)
		if _, err := s.ReopenContainerLog(context.Background(), &runtime.ReopenContainerLogRequest{ContainerId: "run-1"}); err != nil {
			t.Errorf("ReopenContainerLog = %v", err)
		}
		if !f.j.hasFired("record save created") || stateOf(t, s, "run-1") != container.StateRunning {
			t.Fatalf("the exit was recorded although its record could not be saved")
		}
		_, err := s.ReopenContainerLog(context.Background(), &runtime.ReopenContainerLogRequest{ContainerId: "run-1"})
		wantCode(t, err, codes.FailedPrecondition, "run-1 is exited")
		if got := stateOf(t, s, "run-1"); got != container.StateExited {
			t.Errorf("container is %s on the next look, want exited", got)
		}
	})
}

// writeExitFile puts an exit file for id into the exit dir the way conmon
// does: written beside it, then renamed in.
func writeExitFile(t *testing.T, s *Server, id string) {
	t.Helper()
	dir := oci.ExitDir(s.config.Runtime.RunDir)
	tmp := filepath.Join(filepath.Dir(dir), id+".tmp")
	if err := os.WriteFile(tmp, []byte("0"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, id)); err != nil {
		t.Fatal(err)
	}
}

func TestWatchExits(t *testing.T) {
	s, f := fakeServer(t)
	rt := newScriptRuntime(f.runtime)
	s.runtimes = map[string]OCIRuntime{"crun": rt}
	exited := make(chan string, 8)
	s.ctrHooks.Changed = func(c *container.Container, old, next container.Status) {
		if next.State == container.StateExited && old.State != next.State {
			exited <- c.ID
		}
	}
	for _, id := range []string{"early-1", "wx1", "wz1"} {
		addContainer(t, s, id, "pod", container.StateRunning)
		rt.exit(id, 0)
	}
	if err := os.MkdirAll(oci.ExitDir(s.config.Runtime.RunDir), 0o700); err != nil { // the runtime made it, or conmon will
		t.Fatal(err)
	}
	writeExitFile(t, s, "early-1") // before the watch: found by its scan
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := s.WatchExits(ctx); err != nil {
		t.Fatal(err)
	}
	wait := func(want string) {
		t.Helper()
		select {
		case id := <-exited:
			if id != want {
				t.Fatalf("exit recorded for %s, want %s", id, want)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("exit of %s not recorded", want)
		}
	}
	wait("early-1")
	// Exit files are handled one after another: once wz1's is, those
	// before it were too. "wx" is no container's id, only a prefix of one.
	writeExitFile(t, s, "wx")
	writeExitFile(t, s, "unknown")
	writeExitFile(t, s, "wz1")
	wait("wz1")
	if got := stateOf(t, s, "wx1"); got != container.StateRunning {
		t.Errorf("wx1 is %s: the exit file of a prefix of its id was taken for its own", got)
	}
}

func TestWatchExitsWithoutExitDir(t *testing.T) {
	s, _ := fakeServer(t)
	if err := os.RemoveAll(oci.ExitDir(s.config.Runtime.RunDir)); err != nil {
		t.Fatal(err)
	}
	err := s.WatchExits(context.Background())
	if err == nil || !strings.Contains(err.Error(), oci.ExitDir(s.config.Runtime.RunDir)) {
		t.Errorf("WatchExits without an exit dir = %v, want an error naming it", err)
	}
}

// errStreamer is a streaming server that cannot hand out URLs.
type errStreamer struct{ err error }

func (e errStreamer) GetExec(*runtime.ExecRequest) (*runtime.ExecResponse, error) { return nil, e.err }
func (e errStreamer) GetAttach(*runtime.AttachRequest) (*runtime.AttachResponse, error) {
	return nil, e.err
}
func (e errStreamer) GetPortForward(*runtime.PortForwardRequest) (*runtime.PortForwardResponse, error) {
	return nil, e.err
}

func TestStreamingURLFailures(t *testing.T) {
	s, _, _ := scriptedServer(t)
	ctx := context.Background()
	exec := &runtime.ExecRequest{ContainerId: "run-1", Cmd: []string{"sh"}, Stdout: true}
	attach := &runtime.AttachRequest{ContainerId: "run-1", Stdout: true}

	s.SetStreaming(nil)
	_, err := s.Attach(ctx, attach)
	wantCode(t, err, codes.Unavailable, "streaming server")
	// The request is checked before the streaming server is needed.
	_, err = s.Attach(ctx, &runtime.AttachRequest{ContainerId: "run-1"})
	wantCode(t, err, codes.InvalidArgument, "stdin")

	cause := fmt.Errorf("token cache full: %w", errdefs.ErrUnavailable)
	s.SetStreaming(errStreamer{cause})
	_, err = s.Exec(ctx, exec)
	wantCode(t, err, codes.Unavailable, "exec in container run-1: token cache full")
	_, err = s.Attach(ctx, attach)
	wantCode(t, err, codes.Unavailable, "attach to container run-1: token cache full")
	if !errors.Is(err, cause) {
		t.Errorf("error %v does not wrap the streaming server's", err)
	}
}

// writeCloser is an io.WriteCloser into a buffer, safe for concurrent use.
type writeCloser struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	closed bool
}

func (w *writeCloser) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

func (w *writeCloser) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
	return nil
}

func (w *writeCloser) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestExecSession(t *testing.T) {
	errRuntime := errors.New("conmon: exec failed")
	for _, tc := range []struct {
		name     string
		code     int32
		err      error
		wantCode int // the exit code the client is told, -1: no exit error
		wantErr  error
	}{
		{name: "command succeeds", wantCode: -1},
		{name: "command exits 7", code: 7, wantCode: 7},
		{name: "runtime fails", err: errRuntime, wantCode: -1, wantErr: errRuntime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, rt := scriptedServer(t)
			var gotCmd []string
			rt.execStream = func(c *oci.Container, cmd []string, st oci.Streams) (int32, error) {
				gotCmd = cmd
				in, _ := io.ReadAll(st.Stdin)
				fmt.Fprintf(st.Stdout, "out:%s", in)
				fmt.Fprint(st.Stderr, "err")
				return tc.code, tc.err
			}
			out, errOut := &writeCloser{}, &writeCloser{}
			err := s.StreamRuntime().Exec(context.Background(), "run-1", []string{"cat"}, strings.NewReader("in"), out, errOut, false, nil)
			var exitErr utilexec.CodeExitError
			switch {
			case tc.wantCode >= 0:
				if !errors.As(err, &exitErr) || exitErr.ExitStatus() != tc.wantCode || !strings.Contains(err.Error(), fmt.Sprint(tc.wantCode)) {
					t.Errorf("error = %v, want exit code %d", err, tc.wantCode)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) || errors.As(err, &exitErr) {
					t.Errorf("error = %v, want %v", err, tc.wantErr)
				}
			case err != nil:
				t.Errorf("error = %v, want nil", err)
			}
			if strings.Join(gotCmd, " ") != "cat" || out.String() != "out:in" || errOut.String() != "err" {
				t.Errorf("runtime got %q; stdout %q, stderr %q", gotCmd, out.String(), errOut.String())
			}
		})
	}
}

func TestExecSessionForwardsResizes(t *testing.T) {
	s, _, rt := scriptedServer(t)
	var got []oci.TerminalSize
	rt.execStream = func(c *oci.Container, cmd []string, st oci.Streams) (int32, error) {
		if !st.TTY || st.Stdin != nil || st.Stderr != nil {
			return 1, fmt.Errorf("streams = %+v, want a tty with stdout only", st)
		}
		for sz := range st.Resize {
			got = append(got, sz)
		}
		return 0, nil
	}
	resize := make(chan streaming.TerminalSize, 2)
	resize <- streaming.TerminalSize{Width: 80, Height: 24}
	resize <- streaming.TerminalSize{Width: 132, Height: 43}
	close(resize)
	if err := s.StreamRuntime().Exec(context.Background(), "run-1", []string{"sh"}, nil, &writeCloser{}, nil, true, resize); err != nil {
		t.Fatal(err)
	}
	want := []oci.TerminalSize{{Width: 80, Height: 24}, {Width: 132, Height: 43}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("resizes = %v, want %v", got, want)
	}
}

// The forwarding of resizes ends with the session, whether or not anyone
// still reads them.
func TestOCIStreamsResizeEndsWithTheSession(t *testing.T) {
	t.Run("nobody resizes", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		st := ociStreams(ctx, nil, nil, nil, false, make(chan streaming.TerminalSize))
		cancel()
		if n := drainResizes(t, st.Resize); n != 0 {
			t.Errorf("%d resizes forwarded, want none", n)
		}
	})
	t.Run("nobody reads the resize", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		resize := make(chan streaming.TerminalSize)
		st := ociStreams(ctx, nil, nil, nil, true, resize)
		resize <- streaming.TerminalSize{Width: 1, Height: 2} // taken by the forwarder, which now waits to hand it on
		cancel()
		if n := drainResizes(t, st.Resize); n > 1 {
			t.Errorf("%d resizes forwarded, want at most the one sent", n)
		}
	})
	t.Run("no resize channel", func(t *testing.T) {
		st := ociStreams(context.Background(), nil, nil, nil, true, nil)
		if st.Resize != nil || st.Stdin != nil || st.Stdout != nil || st.Stderr != nil || !st.TTY {
			t.Errorf("streams = %+v, want a tty and nothing else", st)
		}
	})
}

// drainResizes reads ch until it is closed and returns how many sizes it
// carried.
func drainResizes(t *testing.T, ch <-chan oci.TerminalSize) int {
	t.Helper()
	n := 0
	timeout := time.After(waitTimeout)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return n
			}
			n++
		case <-timeout:
			t.Fatal("resize channel not closed")
		}
	}
}

func TestAttachSession(t *testing.T) {
	errRuntime := errors.New("attach socket: no such file")
	for _, tc := range []struct {
		name string
		err  error
	}{
		{name: "attached"},
		{name: "runtime fails", err: errRuntime},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, rt := scriptedServer(t)
			rt.attach = func(c *oci.Container, st oci.Streams) error {
				in, _ := io.ReadAll(st.Stdin)
				st.Stdout.Write(bytes.ToUpper(in))
				return tc.err
			}
			out := &writeCloser{}
			err := s.StreamRuntime().Attach(context.Background(), "run-1", strings.NewReader("ping"), out, nil, false, nil)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Errorf("error = %v, want %v", err, tc.err)
			}
			if out.String() != "PING" {
				t.Errorf("stdout = %q, want PING", out.String())
			}
			if calls := rt.callList(); len(calls) != 1 || calls[0] != "attach run-1" {
				t.Errorf("runtime calls = %v", calls)
			}
		})
	}
	// A container removed between the URL and the connection.
	s, _, rt := scriptedServer(t)
	err := s.StreamRuntime().Attach(context.Background(), "removed", nil, &writeCloser{}, nil, false, nil)
	if !errors.Is(err, errdefs.ErrNotFound) || len(rt.callList()) != 0 {
		t.Errorf("attach to a removed container = %v, runtime calls %v", err, rt.callList())
	}
}
