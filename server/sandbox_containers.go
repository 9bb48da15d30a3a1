package server

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/sandbox"
)

// podContainers lists the containers of a pod.
func (s *Server) podContainers(sb *sandbox.Sandbox) []*container.Container {
	var out []*container.Container
	for _, c := range s.containers.List() {
		if c.PodID == sb.ID {
			out = append(out, c)
		}
	}
	return out
}

// stopPodContainers stops the pod's containers, killing them: a pod stop
// has no grace period of its own (the kubelet stops containers first).
func (s *Server) stopPodContainers(ctx context.Context, sb *sandbox.Sandbox) error {
	for _, c := range s.podContainers(sb) {
		if err := s.stopContainer(ctx, c, 0); err != nil {
			return err
		}
	}
	return nil
}

// removePodContainers removes the pod's containers, those listed and those
// whose RemoveContainer left the release to the background: the pod's
// namespaces and record go only after all they hold.
func (s *Server) removePodContainers(ctx context.Context, sb *sandbox.Sandbox) error {
	for _, c := range s.podContainers(sb) {
		if err := s.removeContainer(ctx, c); err != nil {
			return err
		}
	}
	return s.takeOverRemovals(ctx, func(c *container.Container) bool { return c.PodID == sb.ID })
}

func (s *Server) podContainerStatuses(sb *sandbox.Sandbox) []*runtime.ContainerStatus {
	var out []*runtime.ContainerStatus
	for _, c := range s.podContainers(sb) {
		out = append(out, s.containerStatus(c))
	}
	return out
}
