package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/events"
)

func TestToStatus(t *testing.T) {
	already := status.Error(codes.Aborted, "aborted upstream")
	for _, tc := range []struct {
		name string
		err  error
		code codes.Code
	}{
		{"invalid argument", fmt.Errorf("container_id: required: %w", errdefs.ErrInvalidArgument), codes.InvalidArgument},
		{"not found", fmt.Errorf("container %q: %w", "x", errdefs.ErrNotFound), codes.NotFound},
		{"already exists", fmt.Errorf("name a: %w", errdefs.ErrAlreadyExists), codes.AlreadyExists},
		{"failed precondition", fmt.Errorf("container x is exited: %w", errdefs.ErrFailedPrecondition), codes.FailedPrecondition},
		{"unavailable", fmt.Errorf("registry: %w", errdefs.ErrUnavailable), codes.Unavailable},
		{"deadline exceeded", fmt.Errorf("exec: %w", errdefs.ErrDeadlineExceeded), codes.DeadlineExceeded},
		{"permission denied", fmt.Errorf("pull: %w", errdefs.ErrPermissionDenied), codes.PermissionDenied},
		{"not implemented", fmt.Errorf("checkpoint: %w", errdefs.ErrNotImplemented), codes.Unimplemented},
		{"subscriber overflow", fmt.Errorf("events: %w", events.ErrOverflow), codes.ResourceExhausted},
		{"broker closed", fmt.Errorf("events: %w", events.ErrClosed), codes.Unavailable},
		{"context canceled", fmt.Errorf("pull: %w", context.Canceled), codes.Canceled},
		{"context deadline", fmt.Errorf("pull: %w", context.DeadlineExceeded), codes.DeadlineExceeded},
		{"joined: the table's order decides", errors.Join(errdefs.ErrNotFound, errdefs.ErrInvalidArgument), codes.InvalidArgument},
		{"unclassified", errors.New("disk on fire"), codes.Internal},
		{"already a status", already, codes.Aborted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ToStatus(tc.err)
			st, ok := status.FromError(got)
			if !ok || st.Code() != tc.code {
				t.Fatalf("ToStatus(%v) = %v, want %s", tc.err, got, tc.code)
			}
			if st.Message() != tc.err.Error() && tc.err != already {
				t.Errorf("message = %q, want the error's %q", st.Message(), tc.err.Error())
			}
		})
	}
	if ToStatus(nil) != nil {
		t.Error("ToStatus(nil) is not nil")
	}
	if ToStatus(already) != already {
		t.Error("a status error was rebuilt instead of passed through")
	}
	if err := invalidf("linux.cpu_shares", "%d is negative", -2); !errors.Is(err, errdefs.ErrInvalidArgument) ||
		err.Error() != "linux.cpu_shares: -2 is negative: invalid argument" {
		t.Errorf("invalidf = %q", err)
	}
}

// callLog is a CallObserver that keeps what it observes.
type callLog struct {
	mu    sync.Mutex
	calls []string // "<method> <code>"
	total time.Duration
}

func (c *callLog) ObserveCall(method string, code codes.Code, d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, method+" "+code.String())
	c.total += d
}

func (c *callLog) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

// logBuffer is a debug-level text log in a buffer, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestUnaryInterceptor(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/ContainerStatus"}
	for _, tc := range []struct {
		name    string
		handler grpc.UnaryHandler
		resp    any
		code    codes.Code
		message string // in the status's message
		logged  string // in the log
	}{
		{
			name:    "success",
			handler: func(ctx context.Context, req any) (any, error) { return "resp to " + req.(string), nil },
			resp:    "resp to req", code: codes.OK, logged: `msg="CRI call" method=ContainerStatus`,
		},
		{
			name: "sentinel error",
			handler: func(ctx context.Context, req any) (any, error) {
				return nil, fmt.Errorf("container_id: %w", errdefs.ErrNotFound)
			},
			code: codes.NotFound, message: "container_id: not found", logged: `msg="CRI call failed" method=ContainerStatus`,
		},
		{
			name:    "panic",
			handler: func(ctx context.Context, req any) (any, error) { panic("nil map") },
			code:    codes.Internal, message: "ContainerStatus: internal error: nil map", logged: `msg="panic in CRI call" method=ContainerStatus`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log logBuffer
			first, second := &callLog{}, &callLog{}
			resp, err := UnaryInterceptor(log.logger(), first, second)(context.Background(), "req", info, tc.handler)
			if status.Code(err) != tc.code || (tc.message != "" && !strings.Contains(err.Error(), tc.message)) {
				t.Errorf("error = %v, want %s with %q", err, tc.code, tc.message)
			}
			if _, ok := status.FromError(err); !ok {
				t.Errorf("error %v is no gRPC status", err)
			}
			if tc.resp != nil && resp != tc.resp {
				t.Errorf("response = %v, want %v", resp, tc.resp)
			}
			want := "ContainerStatus " + tc.code.String()
			for _, o := range []*callLog{first, second} {
				if got := o.list(); len(got) != 1 || got[0] != want {
					t.Errorf("observed %v, want [%s]", got, want)
				}
			}
			if out := log.String(); !strings.Contains(out, tc.logged) || !strings.Contains(out, "request=") {
				t.Errorf("log %q does not have %q with a request number", out, tc.logged)
			}
		})
	}
}

// Each call gets a number of its own, so concurrent calls' lines can be
// told apart.
func TestUnaryInterceptorNumbersCalls(t *testing.T) {
	var log logBuffer
	ic := UnaryInterceptor(log.logger())
	info := &grpc.UnaryServerInfo{FullMethod: "/runtime.v1.RuntimeService/Version"}
	ok := func(context.Context, any) (any, error) { return nil, nil }
	for range 2 {
		if _, err := ic(context.Background(), nil, info, ok); err != nil {
			t.Fatal(err)
		}
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("log lines = %q, want 2", lines)
	}
	num := func(line string) string {
		_, rest, _ := strings.Cut(line, "request=")
		n, _, _ := strings.Cut(rest, " ")
		return n
	}
	if a, b := num(lines[0]), num(lines[1]); a == "" || a == b {
		t.Errorf("request numbers %q and %q, want two different ones", a, b)
	}
}

func TestStreamInterceptor(t *testing.T) {
	info := &grpc.StreamServerInfo{FullMethod: "/runtime.v1.RuntimeService/GetContainerEvents"}
	for _, tc := range []struct {
		name    string
		handler grpc.StreamHandler
		code    codes.Code
		message string
	}{
		{"success", func(any, grpc.ServerStream) error { return nil }, codes.OK, ""},
		{"overflow", func(any, grpc.ServerStream) error {
			return fmt.Errorf("container events: %w", events.ErrOverflow)
		}, codes.ResourceExhausted, "fell behind"},
		{"panic", func(any, grpc.ServerStream) error { panic("boom") }, codes.Internal, "internal error: boom"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log logBuffer
			err := StreamInterceptor(log.logger())(nil, nil, info, tc.handler)
			if status.Code(err) != tc.code || (tc.message != "" && !strings.Contains(err.Error(), tc.message)) {
				t.Errorf("error = %v, want %s with %q", err, tc.code, tc.message)
			}
			if panicked := strings.Contains(log.String(), "panic in CRI stream"); panicked != (tc.name == "panic") {
				t.Errorf("log = %q", log.String())
			}
		})
	}
}

// Over a real gRPC connection the client sees the codes and messages the
// handlers' errors map to, and each call is observed once.
func TestInterceptorsOverGRPC(t *testing.T) {
	s := podStatusFixture(t)
	s.events = events.NewBroker(4)
	sock := filepath.Join(t.TempDir(), "cri.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	obs := &callLog{}
	log := slog.New(slog.DiscardHandler)
	srv := grpc.NewServer(grpc.UnaryInterceptor(UnaryInterceptor(log, obs)), grpc.StreamInterceptor(StreamInterceptor(log)))
	runtime.RegisterRuntimeServiceServer(srv, s)
	go srv.Serve(ln)
	defer srv.Stop()

	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := runtime.NewRuntimeServiceClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	v, err := client.Version(ctx, &runtime.VersionRequest{})
	if err != nil || v.GetRuntimeName() != "berth" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	_, err = client.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{})
	if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || st.Message() != "pod_sandbox_id: required: invalid argument" {
		t.Errorf("PodSandboxStatus without id = %v", err)
	}
	_, err = client.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: "nope"})
	if status.Code(err) != codes.NotFound {
		t.Errorf("ContainerStatus of unknown = %v", err)
	}
	list, err := client.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{Filter: &runtime.PodSandboxFilter{Id: "pod-a"}})
	if err != nil || len(list.GetItems()) != 1 || list.GetItems()[0].GetId() != "pod-a" {
		t.Errorf("ListPodSandbox = %v, %v", list, err)
	}
	_, err = client.PortForward(ctx, &runtime.PortForwardRequest{PodSandboxId: "pod-a", Port: []int32{80}})
	if status.Code(err) != codes.Unavailable { // no streaming server was set
		t.Errorf("PortForward = %v, want Unavailable", err)
	}

	// The stream's headers say the subscription is in place.
	evs, err := client.GetContainerEvents(ctx, &runtime.GetEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := evs.Header(); err != nil {
		t.Fatal(err)
	}
	sb, _ := s.sandboxes.Get("pod-b")
	s.emitSandbox(runtime.ContainerEventType_CONTAINER_STOPPED_EVENT, sb)
	ev, err := evs.Recv()
	if err != nil || ev.GetContainerId() != "pod-b" || ev.GetContainerEventType() != runtime.ContainerEventType_CONTAINER_STOPPED_EVENT {
		t.Errorf("event = %v, %v", ev, err)
	}
	s.events.(*events.Broker).Close()
	if _, err := evs.Recv(); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("stream end at shutdown = %v, want Unavailable", err)
	}

	want := []string{"Version OK", "PodSandboxStatus InvalidArgument", "ContainerStatus NotFound", "ListPodSandbox OK", "PortForward Unavailable"}
	if got := obs.list(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("observed %v, want %v", got, want)
	}
}

func TestRequestKey(t *testing.T) {
	req := func(name string, attempt uint32) *runtime.CreateContainerRequest {
		return &runtime.CreateContainerRequest{PodSandboxId: "pod", Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: name, Attempt: attempt},
			Labels:   map[string]string{"a": "1", "b": "2", "c": "3", "d": "4"},
		}}
	}
	k := requestKey(req("app", 0))
	if len(k) != 64 || strings.Trim(k, "0123456789abcdef") != "" {
		t.Fatalf("key %q is not a hex SHA-256", k)
	}
	for i := range 20 { // map order must not change the key
		if got := requestKey(req("app", 0)); got != k {
			t.Fatalf("try %d: the same request has key %s, then %s", i, k, got)
		}
	}
	if requestKey(req("app", 1)) == k || requestKey(req("other", 0)) == k {
		t.Error("different requests share a key")
	}
	// A string that is not UTF-8 does not marshal: the request matches nothing.
	if got := requestKey(req("bad\xff", 0)); got != "unmarshalable" {
		t.Errorf("key of an unmarshalable request = %q", got)
	}
}
