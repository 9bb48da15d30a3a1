package server

import (
	"context"

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

// checkExit records c's exit if conmon has written it. Any number of
// callers may race here (the exit watcher, a start, a stop, an exec): the
// container records the first report and ignores the rest.
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
	s.recordExit(c, container.Exit{Code: st.Code, FinishedAt: st.Finished, Reason: container.ExitReason(st.Code, st.OOMKilled)})
}

// recordExit records e as c's exit unless one is recorded already.
func (s *Server) recordExit(c *container.Container, e container.Exit) {
	recorded, err := c.Exited(e)
	if err != nil {
		// The exit stays in conmon's exit file; the next look records it.
		s.log.Error("record container exit", "container", c.ID, "error", err)
		return
	}
	if recorded {
		s.log.Info("container exited", "container", c.ID, "name", c.Name, "code", e.Code, "reason", e.Reason)
		if s.nri != nil {
			// Not under the caller's locks: plugins may take their time.
			go s.nriStopContainer(context.Background(), c)
		}
	}
}
