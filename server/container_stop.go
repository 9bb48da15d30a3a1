package server

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
)

// StopContainer sends the container's stop signal, waits up to the timeout
// and then kills it. Stopping an unknown or exited container succeeds.
func (s *Server) StopContainer(ctx context.Context, req *runtime.StopContainerRequest) (*runtime.StopContainerResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if errors.Is(err, errdefs.ErrNotFound) {
		s.log.Debug("stop of unknown container", "container", req.GetContainerId())
		return &runtime.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.stopContainer(ctx, c, time.Duration(req.GetTimeout())*time.Second); err != nil {
		return nil, err
	}
	return &runtime.StopContainerResponse{}, nil
}

func (s *Server) stopContainer(ctx context.Context, c *container.Container, timeout time.Duration) error {
	unlock := s.ctrLocks.Lock(c.ID)
	defer unlock()
	return s.stopContainerLocked(ctx, c, timeout)
}

// stopContainerLocked is stopContainer for a caller that holds c's lock.
func (s *Server) stopContainerLocked(ctx context.Context, c *container.Container, timeout time.Duration) error {
	if c.State() == container.StateExited {
		// Plugins hear of an exit once, whoever reports it first.
		s.nriStopContainer(ctx, c)
		return nil
	}
	sig := stopSignal(c.StopSignal)
	if err := s.runtimeFor(c.Handler).StopContainer(ctx, s.ociContainer(c), timeout, sig); err != nil {
		return fmt.Errorf("stop container %s: %w", c.ID, err)
	}
	s.checkExit(c)
	switch c.State() {
	case container.StateCreated:
		// A created container that never ran has no exit file: conmon
		// writes one only for a process that started.
		s.recordExit(c, container.Exit{Code: 0, FinishedAt: time.Now(), Reason: "Completed"})
	case container.StateRunning:
		// The runtime's stop returns once the exit is written or conmon
		// is gone: without a file, the code is lost with conmon.
		s.recordExit(c, container.Exit{
			Code: 255, FinishedAt: time.Now(), Reason: "Error",
			Message: "exit code lost: conmon wrote no exit file",
		})
	}
	s.log.Info("container stopped", "container", c.ID, "name", c.Name)
	s.nriStopContainer(ctx, c)
	return nil
}

// signals are the names an image's StopSignal may use.
var signals = map[string]syscall.Signal{
	"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT,
	"SIGKILL": syscall.SIGKILL, "SIGHUP": syscall.SIGHUP, "SIGUSR1": syscall.SIGUSR1,
	"SIGUSR2": syscall.SIGUSR2, "SIGWINCH": syscall.SIGWINCH, "SIGPWR": syscall.SIGPWR,
	"SIGSTOP": syscall.SIGSTOP,
}

// stopSignal resolves a signal name (with or without SIG, or a number);
// unknown names fall back to SIGTERM, as the runtimes do.
func stopSignal(name string) syscall.Signal {
	if name == "" {
		return syscall.SIGTERM
	}
	if sig, ok := signals[name]; ok {
		return sig
	}
	if sig, ok := signals["SIG"+name]; ok {
		return sig
	}
	var n int
	if _, err := fmt.Sscanf(name, "%d", &n); err == nil && n > 0 && n < 65 {
		return syscall.Signal(n)
	}
	return syscall.SIGTERM
}
