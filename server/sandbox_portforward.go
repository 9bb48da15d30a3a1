package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/sandbox"
)

// portDialTimeout bounds a connection to a port in a pod.
const portDialTimeout = 5 * time.Second

// PortForward prepares a streaming port-forward into a ready pod and
// returns the URL the client connects to. The pod is checked again for
// every connection the client forwards.
func (s *Server) PortForward(ctx context.Context, req *runtime.PortForwardRequest) (*runtime.PortForwardResponse, error) {
	sb, err := s.getSandbox(req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, invalidf("port", "%d is not a TCP port", p)
		}
	}
	if err := requireReady(sb); err != nil {
		return nil, err
	}
	st, err := s.streamer()
	if err != nil {
		return nil, err
	}
	resp, err := st.GetPortForward(&runtime.PortForwardRequest{PodSandboxId: sb.ID, Port: req.GetPort()})
	if err != nil {
		return nil, fmt.Errorf("port-forward to pod %s: %w", sb.ID, err)
	}
	return resp, nil
}

// getSandbox resolves a request's pod sandbox id (or unique prefix).
func (s *Server) getSandbox(id string) (*sandbox.Sandbox, error) {
	if id == "" {
		return nil, invalidf("pod_sandbox_id", "required")
	}
	sb, err := s.sandboxes.Get(id)
	if err != nil {
		return nil, fmt.Errorf("pod_sandbox_id: %w", err)
	}
	return sb, nil
}

// requireReady fails with FailedPrecondition naming sb unless it is ready.
func requireReady(sb *sandbox.Sandbox) error {
	if st := sb.State(); st != sandbox.StateReady {
		return fmt.Errorf("pod sandbox %s is %s, not ready: %w", sb.ID, st, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// portForwardSession forwards one client connection to port in the pod:
// a TCP connection to localhost made inside the pod's network namespace
// (on the host for a host-network pod), copied both ways until the pod's
// side closes.
func (s *Server) portForwardSession(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	sb, err := s.getSandbox(podID)
	if err != nil {
		return err
	}
	if err := requireReady(sb); err != nil {
		return err
	}
	netns := ""
	if sb.NS != nil && !sb.HostNetwork() {
		netns = sb.NS.Net
	}
	conn, err := dialPodPort(netns, port)
	if err != nil {
		return fmt.Errorf("port %d of pod %s: %w", port, sb.ID, err)
	}
	defer conn.Close()
	log := s.log.With("pod", sb.ID, "port", port)
	log.Debug("port-forward connection opened", "to", conn.RemoteAddr().String())
	start := time.Now()
	err = forward(ctx, conn, stream)
	log.Debug("port-forward connection closed", "duration", time.Since(start), "error", err)
	if err != nil {
		return fmt.Errorf("port %d of pod %s: %w", port, sb.ID, err)
	}
	return nil
}

// dialPodPort connects to localhost:port in the network namespace at
// netns ("" is the host's): IPv4 first, then IPv6 for a server listening
// on ::1 only. When neither answers, the error says what each said.
func dialPodPort(netns string, port int32) (net.Conn, error) {
	var conn net.Conn
	dial := func() error {
		d := net.Dialer{Timeout: portDialTimeout}
		p := strconv.Itoa(int(port))
		var err4, err6 error
		if conn, err4 = d.Dial("tcp4", net.JoinHostPort("127.0.0.1", p)); err4 == nil {
			return nil
		}
		if conn, err6 = d.Dial("tcp6", net.JoinHostPort("::1", p)); err6 == nil {
			return nil
		}
		return fmt.Errorf("nothing accepts connections on localhost:%d: %w; %w", port, err4, err6)
	}
	if netns == "" {
		return conn, dial()
	}
	// The socket is made in the pod's namespace and stays there.
	err := namespaces.WithNetNS(netns, dial)
	return conn, err
}

// forward copies between conn and stream until conn's side is done. The
// client ending its side half-closes conn, so the server still answers.
func forward(ctx context.Context, conn net.Conn, stream io.ReadWriteCloser) error {
	toPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		toPod <- err
	}()
	fromPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(stream, conn)
		fromPod <- err
	}()
	select {
	case err := <-fromPod:
		if err != nil && !errors.Is(err, net.ErrClosed) {
			return fmt.Errorf("copy from the pod: %w", err)
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
