package streaming

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"
)

// errStopping refuses sessions that connect while the server stops.
var errStopping = errors.New("streaming server is stopping")

// sessions wraps the Runtime so that the server knows its running sessions:
// each gets a context that ends when the server stops (port-forwards get
// none from the library), and stop waits for them to return.
type sessions struct {
	rt     Runtime
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	stopping bool
	wg       sync.WaitGroup
}

func newSessions(rt Runtime) *sessions {
	ctx, cancel := context.WithCancel(context.Background())
	return &sessions{rt: rt, ctx: ctx, cancel: cancel}
}

// begin registers a session and returns its context and the function that
// ends it.
func (s *sessions) begin(ctx context.Context) (context.Context, func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return nil, nil, errStopping
	}
	s.wg.Add(1)
	ctx, cancel := context.WithCancel(ctx)
	unhook := context.AfterFunc(s.ctx, cancel)
	return ctx, func() { unhook(); cancel(); s.wg.Done() }, nil
}

// stop ends every session and waits up to wait for them to return; it
// reports whether they all did.
func (s *sessions) stop(wait time.Duration) bool {
	s.mu.Lock()
	s.stopping = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return true
	case <-time.After(wait):
		return false
	}
}

func (s *sessions) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan TerminalSize) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return s.rt.Exec(ctx, id, cmd, in, out, errOut, tty, resize)
}

func (s *sessions) Attach(ctx context.Context, id string, in io.Reader, out, errOut io.WriteCloser, tty bool, resize <-chan TerminalSize) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return s.rt.Attach(ctx, id, in, out, errOut, tty, resize)
}

func (s *sessions) PortForward(ctx context.Context, podID string, port int32, stream io.ReadWriteCloser) error {
	ctx, end, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer end()
	return s.rt.PortForward(ctx, podID, port, stream)
}
