package server

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/oci"
)

// WatchExits follows conmon's exit files so an exit is recorded within a
// second of happening, with its code, time and reason.
func (s *Server) WatchExits(ctx context.Context) error {
	return oci.WatchExits(ctx, oci.ExitDir(s.config.Runtime.RunDir), func(id string) {
		if c, err := s.containers.Get(id); err == nil && c.ID == id {
			s.checkExit(c)
		}
	})
}

// checkExit records c's exit if conmon has written it.
func (s *Server) checkExit(c *container.Container) {
	if c.State() == container.StateExited {
		return
	}
	st, exited, err := s.runtimeFor(c.Handler).Exit(s.ociContainer(c))
	if err != nil {
		s.log.Warn("read container exit", "container", c.ID, "error", err)
		return
	}
	if !exited {
		return
	}
	e := container.Exit{Code: st.Code, FinishedAt: st.Finished, Reason: container.ExitReason(st.Code, st.OOMKilled)}
	if c.SetExited(e) {
		s.saveContainerState(c)
		s.log.Info("container exited", "container", c.ID, "name", c.Name, "code", e.Code, "reason", e.Reason)
		s.emit(runtime.ContainerEventType_CONTAINER_STOPPED_EVENT, c)
	}
}
