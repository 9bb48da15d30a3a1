package server

import (
	"path/filepath"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/internal/checkpoint"
	"github.com/berth-dev/berth/sandbox"
)

// Records of sandboxes and containers live in the persistent state dir, so
// they survive a restart of Berth and a reboot of the node.
func (s *Server) sandboxRecords() checkpoint.Dir {
	return checkpoint.Dir(filepath.Join(s.config.Runtime.StateDir, "sandboxes"))
}

func (s *Server) containerRecords() checkpoint.Dir {
	return checkpoint.Dir(filepath.Join(s.config.Runtime.StateDir, "containers"))
}

func (s *Server) saveSandbox(sb *sandbox.Sandbox) error {
	rec, err := sb.Record()
	if err != nil {
		return err
	}
	return s.sandboxRecords().Save(sb.ID, rec)
}

func (s *Server) saveContainer(c *container.Container) error {
	rec, err := c.Record()
	if err != nil {
		return err
	}
	return s.containerRecords().Save(c.ID, rec)
}

// saveContainerState records a lifecycle change that is already true (an
// exit, a start); a failed write is logged, not returned: the change stands
// and recovery re-derives it from conmon's files.
func (s *Server) saveContainerState(c *container.Container) {
	if err := s.saveContainer(c); err != nil {
		s.log.Warn("checkpoint container", "container", c.ID, "error", err)
	}
}
