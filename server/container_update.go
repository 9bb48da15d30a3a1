package server

import (
	"context"
	"fmt"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/specgen"
)

// UpdateContainerResources applies new limits to a created or running
// container's cgroup.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtime.UpdateContainerResourcesRequest) (*runtime.UpdateContainerResourcesResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if req.GetLinux() == nil {
		return nil, invalidf("linux", "required")
	}
	unlock := s.ctrLocks.Lock(c.ID)
	defer unlock()
	linux := req.GetLinux()
	if s.nri != nil {
		pod, ctr := s.nriPodOf(c), s.nriContainer(c, nil)
		res, others, err := s.nri.UpdateContainer(ctx, pod, ctr, nriResources(linux))
		if err != nil {
			return nil, err
		}
		// Plugins may move other containers to make room for this one.
		for _, u := range others {
			if u == nil {
				continue
			}
			if err := s.NRIDomain().UpdateContainer(ctx, u); err != nil && !u.GetIgnoreFailure() {
				return nil, fmt.Errorf("apply an NRI plugin's update of container %s: %w", u.GetContainerId(), err)
			}
		}
		if res != nil {
			linux = criResources(res, linux)
		}
		defer func() {
			if err := s.nri.PostUpdateContainer(ctx, pod, s.nriContainer(c, nil)); err != nil {
				s.log.Warn("NRI plugins failed after a container's update", "container", c.ID, "error", err)
			}
		}()
	}
	if err := s.updateResourcesLocked(ctx, c, linux); err != nil {
		return nil, err
	}
	return &runtime.UpdateContainerResourcesResponse{}, nil
}

// updateResourcesLocked applies linux to c's cgroup and record; the caller
// holds c's lock.
func (s *Server) updateResourcesLocked(ctx context.Context, c *container.Container, linux *runtime.LinuxContainerResources) error {
	res, err := specgen.Resources(linux, s.config.Runtime.PidsLimit, s.host)
	if err != nil {
		return fmt.Errorf("linux: %w", err)
	}
	if err := s.runtimeFor(c.Handler).UpdateResources(ctx, s.ociContainer(c), res); err != nil {
		return fmt.Errorf("update resources of container %s: %w", c.ID, err)
	}
	if err := c.SetResources(linux); err != nil {
		return fmt.Errorf("record resources of container %s: %w", c.ID, err)
	}
	s.log.Info("container resources updated", "container", c.ID)
	return nil
}
