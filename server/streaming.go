package server

import (
	"context"
	"fmt"
	"io"
	"sync"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/streaming"
)

// Streamer hands out the URLs of streaming sessions: the streaming server
// (*streaming.Server) or a fake in tests.
type Streamer interface {
	GetExec(*runtime.ExecRequest) (*runtime.ExecResponse, error)
	GetAttach(*runtime.AttachRequest) (*runtime.AttachResponse, error)
	GetPortForward(*runtime.PortForwardRequest) (*runtime.PortForwardResponse, error)
}

// streamerSlot holds the server's Streamer, set once the streaming server
// runs.
type streamerSlot struct {
	mu sync.RWMutex
	st Streamer
}

// SetStreaming gives the server the streaming server whose URLs Exec,
// Attach and PortForward return. Until it is set they answer Unavailable.
func (s *Server) SetStreaming(st Streamer) {
	s.stream.mu.Lock()
	s.stream.st = st
	s.stream.mu.Unlock()
}

// streamer returns the streaming server, or Unavailable when none runs.
func (s *Server) streamer() (Streamer, error) {
	s.stream.mu.RLock()
	defer s.stream.mu.RUnlock()
	if s.stream.st == nil {
		return nil, fmt.Errorf("streaming server is not running: %w", errdefs.ErrUnavailable)
	}
	return s.stream.st, nil
}

// StreamRuntime is what the streaming server runs once a client connects to
// a URL: the sessions of container_exec.go, container_attach.go and
// sandbox_portforward.go.
func (s *Server) StreamRuntime() streaming.Runtime { return streamRuntime{s} }

// streamRuntime adapts the server to streaming.Runtime, whose method names
// the CRI handlers already use.
type streamRuntime struct{ s *Server }

func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan streaming.TerminalSize) error {
	return r.s.execSession(ctx, id, cmd, ociStreams(ctx, in, out, errOut, tty, resize))
}

func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan streaming.TerminalSize) error {
	return r.s.attachSession(ctx, id, ociStreams(ctx, in, out, errOut, tty, resize))
}

func (r streamRuntime) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	return r.s.portForwardSession(ctx, podID, port, stream)
}

// ociStreams converts a session's streams for the oci package. The library
// passes nil interfaces for streams the client did not ask for; resize
// events are forwarded until ctx ends.
func ociStreams(ctx context.Context, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan streaming.TerminalSize) oci.Streams {
	st := oci.Streams{TTY: tty}
	if in != nil {
		st.Stdin = in
	}
	if out != nil {
		st.Stdout = out
	}
	if errOut != nil {
		st.Stderr = errOut
	}
	if resize != nil {
		ch := make(chan oci.TerminalSize)
		st.Resize = ch
		go func() {
			defer close(ch)
			for {
				select {
				case sz, ok := <-resize:
					if !ok {
						return
					}
					select {
					case ch <- oci.TerminalSize{Width: sz.Width, Height: sz.Height}:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return st
}
