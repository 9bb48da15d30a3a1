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
	"github.com/berth-dev/berth/internal/lifecycle"
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

// removeContainer releases everything of c. Every step is idempotent, so
// start-up recovery uses it too, to finish a removal or undo a creation.
func (s *Server) removeContainer(ctx context.Context, c *container.Container) error {
	unlock := s.ctrLocks.Lock(c.ID)
	defer unlock()
	if c.Status().Phase == lifecycle.Removed {
		return nil // a concurrent remove finished it
	}
	// Marked first: a crash from here on is finished by recovery.
	if err := c.SetPhase(lifecycle.Removing); err != nil {
		return err
	}
	if err := s.stopContainerLocked(ctx, c, 0); err != nil {
		return err
	}
	if err := s.runtimeFor(c.Handler).DeleteContainer(ctx, s.ociContainer(c)); err != nil {
		return fmt.Errorf("delete container %s: %w", c.ID, err)
	}
	// The reverse of creation: image volumes were mounted after the rootfs.
	if len(c.ImageMounts) > 0 && !c.Status().ImagesReleased {
		for _, id := range c.ImageMounts {
			if err := s.images.UnmountImage(id); err != nil {
				return err
			}
		}
		if err := c.ReleasedImages(); err != nil {
			return err
		}
	}
	if err := s.rootfs.RemoveRootfs(c.ID); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(s.config.Runtime.StateDir, "volumes", c.ID)); err != nil {
		return fmt.Errorf("remove volumes of container %s: %w", c.ID, err)
	}
	if err := c.SetPhase(lifecycle.Removed); err != nil {
		return err
	}
	s.containers.Delete(c.ID)
	s.ctrNames.Release(c.Name, c.ID)
	s.log.Info("container removed", "container", c.ID, "name", c.Name)
	s.emit(runtime.ContainerEventType_CONTAINER_DELETED_EVENT, c)
	return nil
}
