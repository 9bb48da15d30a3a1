package server

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/sandbox"
)

// fakeStreamer records the requests it hands URLs out for.
type fakeStreamer struct {
	exec   *runtime.ExecRequest
	attach *runtime.AttachRequest
	pf     *runtime.PortForwardRequest
}

func (f *fakeStreamer) GetExec(r *runtime.ExecRequest) (*runtime.ExecResponse, error) {
	f.exec = r
	return &runtime.ExecResponse{Url: "http://streams/exec/t"}, nil
}

func (f *fakeStreamer) GetAttach(r *runtime.AttachRequest) (*runtime.AttachResponse, error) {
	f.attach = r
	return &runtime.AttachResponse{Url: "http://streams/attach/t"}, nil
}

func (f *fakeStreamer) GetPortForward(r *runtime.PortForwardRequest) (*runtime.PortForwardResponse, error) {
	f.pf = r
	return &runtime.PortForwardResponse{Url: "http://streams/portforward/t"}, nil
}

// streamingServer is a Server with containers and pods in every state a
// streaming call checks, and a runtime handler that has run nothing (so no
// exit is ever read back).
func streamingServer(t *testing.T) (*Server, *fakeStreamer) {
	t.Helper()
	s := unitServer(t)
	add := func(id string, stdin bool, state container.State) {
		addContainerWith(t, s, id, "pod-ready", &runtime.ContainerConfig{Stdin: stdin}, state)
	}
	add("running-with-stdin", true, container.StateRunning)
	add("running-plain", false, container.StateRunning)
	add("created", false, container.StateCreated)
	add("exited", false, container.StateExited)
	hostNet := &runtime.PodSandboxConfig{Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
		NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE},
	}}}
	addReadyPod(t, s, "pod-ready", hostNet)
	s.sandboxes.Add(sandbox.New("pod-stopped", "stopped", hostNet, "", "crun", t.TempDir(), s.sandboxRecords()))
	f := &fakeStreamer{}
	s.SetStreaming(f)
	return s, f
}

func TestStreamingCallsCheckTheirObject(t *testing.T) {
	s, f := streamingServer(t)
	ctx := context.Background()
	exec := func(r *runtime.ExecRequest) func() error {
		return func() error { _, err := s.Exec(ctx, r); return err }
	}
	attach := func(r *runtime.AttachRequest) func() error {
		return func() error { _, err := s.Attach(ctx, r); return err }
	}
	pf := func(r *runtime.PortForwardRequest) func() error {
		return func() error { _, err := s.PortForward(ctx, r); return err }
	}
	for _, tc := range []struct {
		name  string
		call  func() error
		code  codes.Code
		names string // the error must name it
	}{
		{"exec", exec(&runtime.ExecRequest{ContainerId: "running-plain", Cmd: []string{"sh"}, Tty: true, Stdin: true, Stdout: true}), codes.OK, ""},
		{"exec by id prefix", exec(&runtime.ExecRequest{ContainerId: "running-p", Cmd: []string{"sh"}, Stdout: true}), codes.OK, ""},
		{"exec without container id", exec(&runtime.ExecRequest{Cmd: []string{"sh"}, Stdout: true}), codes.InvalidArgument, "container_id"},
		{"exec of an unknown container", exec(&runtime.ExecRequest{ContainerId: "nope", Cmd: []string{"sh"}, Stdout: true}), codes.NotFound, "nope"},
		{"exec without command", exec(&runtime.ExecRequest{ContainerId: "running-plain", Stdout: true}), codes.InvalidArgument, "cmd"},
		{"exec without streams", exec(&runtime.ExecRequest{ContainerId: "running-plain", Cmd: []string{"sh"}}), codes.InvalidArgument, "stdin"},
		{"exec tty with stderr", exec(&runtime.ExecRequest{ContainerId: "running-plain", Cmd: []string{"sh"}, Tty: true, Stderr: true}), codes.InvalidArgument, "stderr"},
		{"exec in an exited container", exec(&runtime.ExecRequest{ContainerId: "exited", Cmd: []string{"sh"}, Stdout: true}), codes.FailedPrecondition, "exited"},
		{"exec in a created container", exec(&runtime.ExecRequest{ContainerId: "created", Cmd: []string{"sh"}, Stdout: true}), codes.FailedPrecondition, "created"},
		{"attach", attach(&runtime.AttachRequest{ContainerId: "running-with-stdin", Stdin: true, Stdout: true}), codes.OK, ""},
		{"attach to a created container", attach(&runtime.AttachRequest{ContainerId: "created", Stdout: true}), codes.OK, ""},
		{"attach stdin without container stdin", attach(&runtime.AttachRequest{ContainerId: "running-plain", Stdin: true, Stdout: true}), codes.FailedPrecondition, "running-plain"},
		{"attach to an exited container", attach(&runtime.AttachRequest{ContainerId: "exited", Stdout: true}), codes.FailedPrecondition, "exited"},
		{"attach to an unknown container", attach(&runtime.AttachRequest{ContainerId: "nope", Stdout: true}), codes.NotFound, "nope"},
		{"port-forward", pf(&runtime.PortForwardRequest{PodSandboxId: "pod-ready", Port: []int32{80}}), codes.OK, ""},
		{"port-forward to a stopped pod", pf(&runtime.PortForwardRequest{PodSandboxId: "pod-stopped", Port: []int32{80}}), codes.FailedPrecondition, "pod-stopped"},
		{"port-forward to an unknown pod", pf(&runtime.PortForwardRequest{PodSandboxId: "nope", Port: []int32{80}}), codes.NotFound, "nope"},
		{"port-forward to port 0", pf(&runtime.PortForwardRequest{PodSandboxId: "pod-ready", Port: []int32{0}}), codes.InvalidArgument, "port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := ToStatus(tc.call())
			if status.Code(err) != tc.code || (tc.names != "" && !strings.Contains(err.Error(), tc.names)) {
				t.Errorf("error = %v, want %s naming %q", err, tc.code, tc.names)
			}
		})
	}
	// The streaming server gets the full id, whatever prefix was asked for.
	if f.exec.GetContainerId() != "running-plain" || f.attach.GetContainerId() == "" || f.pf.GetPodSandboxId() != "pod-ready" {
		t.Errorf("requests handed to the streaming server: %v, %v, %v", f.exec, f.attach, f.pf)
	}
}

func TestStreamingCallsWithoutStreamingServer(t *testing.T) {
	s, _ := streamingServer(t)
	s.SetStreaming(nil)
	_, err := s.Exec(context.Background(), &runtime.ExecRequest{ContainerId: "running-plain", Cmd: []string{"sh"}, Stdout: true})
	if status.Code(ToStatus(err)) != codes.Unavailable {
		t.Errorf("Exec without a streaming server = %v, want Unavailable", err)
	}
}

// The checks run again when the client connects: the object may have
// changed since the URL was handed out.
func TestSessionsCheckTheirObjectAgain(t *testing.T) {
	s, _ := streamingServer(t)
	r := s.StreamRuntime()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"exec in an exited container", r.Exec(ctx, "exited", []string{"sh"}, nil, nopCloser{io.Discard}, nil, false, nil), errdefs.ErrFailedPrecondition},
		{"exec in a removed container", r.Exec(ctx, "removed", []string{"sh"}, nil, nopCloser{io.Discard}, nil, false, nil), errdefs.ErrNotFound},
		{"attach to an exited container", r.Attach(ctx, "exited", nil, nopCloser{io.Discard}, nil, false, nil), errdefs.ErrFailedPrecondition},
		{"attach stdin without container stdin", r.Attach(ctx, "running-plain", strings.NewReader("x"), nopCloser{io.Discard}, nil, false, nil), errdefs.ErrFailedPrecondition},
		{"port-forward to a stopped pod", r.PortForward(ctx, "pod-stopped", 80, nil), errdefs.ErrFailedPrecondition},
		{"port-forward to a removed pod", r.PortForward(ctx, "removed", 80, nil), errdefs.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, tc.want) {
				t.Errorf("error = %v, want %v", tc.err, tc.want)
			}
		})
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

// A host-network pod's port is reached on the host's loopback; a closed
// port is an error that says so.
func TestPortForwardSessionOnHostNetwork(t *testing.T) {
	s, _ := streamingServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { // an upper-casing echo server that answers after the client's EOF
				b, _ := io.ReadAll(c)
				c.Write([]byte(strings.ToUpper(string(b))))
				c.Close()
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	client, stream := tcpPair(t)
	done := make(chan error, 1)
	go func() { done <- s.StreamRuntime().PortForward(context.Background(), "pod-ready", int32(port), stream) }()
	client.Write([]byte("ping"))
	client.CloseWrite()
	if err := <-done; err != nil {
		t.Errorf("PortForward = %v", err)
	}
	stream.Close() // as the streaming library does once PortForward returns
	if got, _ := io.ReadAll(client); string(got) != "PING" {
		t.Errorf("answer through the forward = %q, want PING", got)
	}

	ln.Close()
	err = s.StreamRuntime().PortForward(context.Background(), "pod-ready", int32(port), stream)
	if err == nil || !strings.Contains(err.Error(), "nothing accepts connections on localhost:"+strconv.Itoa(port)) || !strings.Contains(err.Error(), "pod-ready") {
		t.Errorf("forward to a closed port = %v", err)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}
