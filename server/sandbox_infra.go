package server

import (
	"context"
	"fmt"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/undo"
	"github.com/berth-dev/berth/sandbox"
)

// startInfra runs the pod's pause container.
func (s *Server) startInfra(ctx context.Context, sb *sandbox.Sandbox, undos *undo.Stack) error {
	return fmt.Errorf("infra containers: %w", errdefs.ErrNotImplemented)
}

func (s *Server) stopInfra(ctx context.Context, sb *sandbox.Sandbox) error   { return nil }
func (s *Server) removeInfra(ctx context.Context, sb *sandbox.Sandbox) error { return nil }
func (s *Server) infraPid(sb *sandbox.Sandbox) int                           { return 0 }

// Containers of a pod; filled in with the container lifecycle.
func (s *Server) stopPodContainers(ctx context.Context, sb *sandbox.Sandbox) error   { return nil }
func (s *Server) removePodContainers(ctx context.Context, sb *sandbox.Sandbox) error { return nil }
func (s *Server) podContainerStatuses(sb *sandbox.Sandbox) []*runtime.ContainerStatus {
	return nil
}
