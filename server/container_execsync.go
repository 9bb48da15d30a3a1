package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
)

// ExecSync runs a command in a running container and returns its output and
// exit code. Past the timeout the command is killed: DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, req *runtime.ExecSyncRequest) (*runtime.ExecSyncResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if len(req.GetCmd()) == 0 {
		return nil, invalidf("cmd", "required")
	}
	if err := s.requireRunning(c); err != nil {
		return nil, err
	}
	res, err := s.runtimeFor(c.Handler).ExecSync(ctx, s.ociContainer(c), req.GetCmd(), time.Duration(req.GetTimeout())*time.Second)
	if err != nil && !errors.Is(err, errdefs.ErrDeadlineExceeded) {
		// The container may have exited under the exec: say so, rather
		// than pass on whatever the runtime made of it. Its init may be
		// gone before conmon has written the exit down.
		s.checkExit(c)
		if st := c.State(); st != container.StateRunning {
			return nil, fmt.Errorf("exec in container %s: the container is %s: %w", c.ID, st, errdefs.ErrFailedPrecondition)
		}
		if !s.runtimeFor(c.Handler).InitAlive(s.ociContainer(c)) {
			return nil, fmt.Errorf("exec in container %s: the container exited during the exec: %w", c.ID, errdefs.ErrFailedPrecondition)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.ID, err)
	}
	return &runtime.ExecSyncResponse{Stdout: res.Stdout, Stderr: res.Stderr, ExitCode: res.ExitCode}, nil
}

// requireRunning fails with FailedPrecondition naming c unless it runs.
func (s *Server) requireRunning(c *container.Container) error {
	s.checkExit(c)
	if st := c.State(); st != container.StateRunning {
		return fmt.Errorf("container %s is %s, not running: %w", c.ID, st, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// ReopenContainerLog makes conmon reopen the container's log file, after
// the kubelet rotated it.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtime.ReopenContainerLogRequest) (*runtime.ReopenContainerLogResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := s.requireRunning(c); err != nil {
		return nil, err
	}
	if err := s.runtimeFor(c.Handler).ReopenLog(ctx, s.ociContainer(c)); err != nil {
		return nil, fmt.Errorf("reopen log of container %s: %w", c.ID, err)
	}
	return &runtime.ReopenContainerLogResponse{}, nil
}
