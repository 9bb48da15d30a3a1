package server

import (
	"context"
	"fmt"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

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
	res, err := specgen.Resources(req.GetLinux(), s.config.Runtime.PidsLimit, s.host)
	if err != nil {
		return nil, fmt.Errorf("linux: %w", err)
	}
	if err := s.runtimeFor(c.Handler).UpdateResources(ctx, s.ociContainer(c), res); err != nil {
		return nil, fmt.Errorf("update resources of container %s: %w", c.ID, err)
	}
	if err := c.SetResources(req.GetLinux()); err != nil {
		return nil, fmt.Errorf("record resources of container %s: %w", c.ID, err)
	}
	s.log.Info("container resources updated", "container", c.ID)
	return &runtime.UpdateContainerResourcesResponse{}, nil
}
