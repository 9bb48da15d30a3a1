package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
)

// RemoveContainer kills the container if it runs and removes it with all it
// holds. Removing an unknown container succeeds.
func (s *Server) RemoveContainer(ctx context.Context, req *runtime.RemoveContainerRequest) (*runtime.RemoveContainerResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if errors.Is(err, errdefs.ErrNotFound) {
		s.log.Debug("remove of unknown container", "container", req.GetContainerId())
		return &runtime.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.removeContainer(ctx, c); err != nil {
		return nil, err
	}
	return &runtime.RemoveContainerResponse{}, nil
}

func (s *Server) removeContainer(ctx context.Context, c *container.Container) error {
	c.SetPhase(container.PhaseRemoving)
	if err := s.saveContainer(c); err != nil {
		return err
	}
	if err := s.stopContainer(ctx, c, 0); err != nil {
		return err
	}
	unlock := s.ctrLocks.Lock(c.ID)
	defer unlock()
	if err := s.runtimeFor(c.Handler).DeleteContainer(ctx, s.ociContainer(c)); err != nil {
		return fmt.Errorf("delete container %s: %w", c.ID, err)
	}
	if err := s.images.RemoveRootfs(c.ID); err != nil {
		return err
	}
	for _, id := range c.ImageMounts {
		if err := s.images.UnmountImage(id); err != nil {
			return err
		}
	}
	if len(c.ImageMounts) > 0 {
		// Released: a removal finished after a crash must not release a
		// mount another container holds.
		c.ImageMounts = nil
		if err := s.saveContainer(c); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(filepath.Join(s.config.Runtime.StateDir, "volumes", c.ID)); err != nil {
		return fmt.Errorf("remove volumes of container %s: %w", c.ID, err)
	}
	if err := s.containerRecords().Delete(c.ID); err != nil {
		return err
	}
	s.containers.Delete(c.ID)
	s.ctrNames.Release(c.Name, c.ID)
	s.log.Info("container removed", "container", c.ID, "name", c.Name)
	s.emit(runtime.ContainerEventType_CONTAINER_DELETED_EVENT, c)
	return nil
}
