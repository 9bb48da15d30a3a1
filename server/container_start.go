package server

import (
	"context"
	"fmt"
	"syscall"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/internal/crashpoint"
)

// StartContainer starts a created container. Once the runtime's start has
// succeeded the container did start, however soon it exited: the exit is
// recorded after "running", and the call succeeds.
func (s *Server) StartContainer(ctx context.Context, req *runtime.StartContainerRequest) (*runtime.StartContainerResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	defer s.blockNRISync()()
	unlock := s.ctrLocks.Lock(c.ID)
	defer unlock()
	if err := c.BeginStart(); err != nil {
		return nil, err
	}
	if s.nri != nil {
		if err := s.nri.StartContainer(ctx, s.nriPodOf(c), s.nriContainer(c, nil)); err != nil {
			if aerr := c.AbortStart(); aerr != nil {
				s.log.Error("clear starting mark", "container", c.ID, "error", aerr)
			}
			return nil, err
		}
	}
	// Taken before the start, so startedAt can never follow the exit.
	at := time.Now()
	rt, oc := s.runtimeFor(c.Handler), s.ociContainer(c)
	if err := rt.StartContainer(ctx, oc); err != nil {
		if aerr := c.AbortStart(); aerr != nil {
			s.log.Error("clear starting mark", "container", c.ID, "error", aerr)
		}
		s.checkExit(c) // a process that could not start may have left an exit
		return nil, fmt.Errorf("start container %s: %w", c.ID, err)
	}
	crashpoint.Hit("StartContainer:started")
	if err := c.Started(at); err != nil {
		// The process runs, but no record says so: kill it rather than
		// leave a container running that its status calls created.
		if kerr := rt.StopContainer(context.WithoutCancel(ctx), oc, 0, syscall.SIGKILL); kerr != nil {
			s.log.Error("kill a container whose start could not be recorded", "container", c.ID, "error", kerr)
		}
		if aerr := c.AbortStart(); aerr != nil {
			s.log.Error("clear starting mark", "container", c.ID, "error", aerr)
		}
		s.checkExit(c)
		return nil, fmt.Errorf("record start of container %s: %w", c.ID, err)
	}
	s.log.Info("container started", "container", c.ID, "name", c.Name)
	// An exit the watcher saw while the start was under way was left for
	// this call to record, now that the status says running.
	s.checkExit(c)
	if s.nri != nil {
		if err := s.nri.PostStartContainer(ctx, s.nriPodOf(c), s.nriContainer(c, nil)); err != nil {
			s.log.Warn("NRI plugins failed after a container's start", "container", c.ID, "error", err)
		}
	}
	return &runtime.StartContainerResponse{}, nil
}

// getContainer resolves a request's container id (or unique prefix).
func (s *Server) getContainer(id string) (*container.Container, error) {
	if id == "" {
		return nil, invalidf("container_id", "required")
	}
	c, err := s.containers.Get(id)
	if err != nil {
		return nil, fmt.Errorf("container_id: %w", err)
	}
	return c, nil
}
