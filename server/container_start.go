package server

import (
	"context"
	"fmt"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/crashpoint"
)

// StartContainer starts a created container.
func (s *Server) StartContainer(ctx context.Context, req *runtime.StartContainerRequest) (*runtime.StartContainerResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	unlock := s.ctrLocks.Lock(c.ID)
	defer unlock()
	if st := c.State(); st != container.StateCreated {
		return nil, fmt.Errorf("container %s is %s, only a created container can start: %w", c.ID, st, errdefs.ErrFailedPrecondition)
	}
	if err := s.runtimeFor(c.Handler).StartContainer(ctx, s.ociContainer(c)); err != nil {
		return nil, fmt.Errorf("start container %s: %w", c.ID, err)
	}
	crashpoint.Hit("StartContainer:started")
	if err := c.SetRunning(time.Now()); err != nil {
		return nil, err
	}
	s.saveContainerState(c)
	s.log.Info("container started", "container", c.ID, "name", c.Name)
	s.emit(runtime.ContainerEventType_CONTAINER_STARTED_EVENT, c)
	// A process that exits at once may have done so before the state said
	// running; the exit watcher's report then found nothing to update.
	s.checkExit(c)
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
