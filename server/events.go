package server

import (
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/sandbox"
)

// EventPublisher delivers container lifecycle events to GetContainerEvents
// subscribers. Publish must never block: a slow subscriber must not hold
// up container operations.
type EventPublisher interface {
	Publish(*runtime.ContainerEventResponse)
}

type noEvents struct{}

func (noEvents) Publish(*runtime.ContainerEventResponse) {}

// emit publishes one lifecycle event of c with its pod's status and the
// statuses of the pod's containers, as the kubelet's evented PLEG reads them.
func (s *Server) emit(typ runtime.ContainerEventType, c *container.Container) {
	ev := &runtime.ContainerEventResponse{
		ContainerId:        c.ID,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
	}
	if sb, err := s.sandboxes.Get(c.PodID); err == nil {
		ev.PodSandboxStatus = sandboxStatus(sb)
		ev.ContainersStatuses = s.podContainerStatuses(sb)
	}
	s.events.Publish(ev)
}

// containerChanged publishes the event of a committed state change. It runs
// before the container's next change can begin, so a container's STARTED
// always goes out before its STOPPED.
func (s *Server) containerChanged(c *container.Container, old, next container.Status) {
	if old.State == next.State {
		return
	}
	switch next.State {
	case container.StateRunning:
		s.emit(runtime.ContainerEventType_CONTAINER_STARTED_EVENT, c)
	case container.StateExited:
		s.emit(runtime.ContainerEventType_CONTAINER_STOPPED_EVENT, c)
	}
}

// emitSandbox publishes a sandbox lifecycle event: as in containerd, the
// event's container id is the sandbox's own.
func (s *Server) emitSandbox(typ runtime.ContainerEventType, sb *sandbox.Sandbox) {
	s.events.Publish(&runtime.ContainerEventResponse{
		ContainerId:        sb.ID,
		ContainerEventType: typ,
		CreatedAt:          time.Now().UnixNano(),
		PodSandboxStatus:   sandboxStatus(sb),
		ContainersStatuses: s.podContainerStatuses(sb),
	})
}
