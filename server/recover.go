package server

import (
	"context"

	"github.com/berth-dev/berth/network"
)

// Recover runs once at start-up, before the socket serves: it releases what
// a previous run left behind. Pods Berth still knows keep their network;
// every other CNI attachment in the cache is deleted, so stale host-local
// reservations are freed.
func (s *Server) Recover(ctx context.Context) error {
	var keep []network.Pod
	for _, sb := range s.sandboxes.List() {
		if sb.NetworkSetUp() {
			keep = append(keep, networkPod(sb))
		}
	}
	if err := s.network.GC(ctx, keep); err != nil {
		// A failed GC leaks addresses but must not keep the node's
		// runtime down.
		s.log.Warn("CNI garbage collection failed", "error", err)
	}
	return nil
}
