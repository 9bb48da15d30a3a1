package server

import (
	"path/filepath"

	"github.com/berth-dev/berth/internal/checkpoint"
)

// Records of sandboxes and containers live in the persistent state dir, so
// they survive a restart of Berth and a reboot of the node. Only the
// sandbox and container packages write them, as part of a status update.
func (s *Server) sandboxRecords() checkpoint.Dir {
	return checkpoint.Dir(filepath.Join(s.config.Runtime.StateDir, "sandboxes"))
}

func (s *Server) containerRecords() checkpoint.Dir {
	return checkpoint.Dir(filepath.Join(s.config.Runtime.StateDir, "containers"))
}
