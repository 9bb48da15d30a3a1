package server

import (
	"context"
	"errors"
	"fmt"
	"os"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/crashpoint"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/sandbox"
)

// RemovePodSandbox stops the pod if needed and removes its containers,
// namespaces, mounts, files and name. Removing an unknown pod succeeds.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtime.RemovePodSandboxRequest) (*runtime.RemovePodSandboxResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalidf("pod_sandbox_id", "required")
	}
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if errors.Is(err, errdefs.ErrNotFound) {
		s.log.Debug("remove of unknown pod sandbox", "pod", req.GetPodSandboxId())
		return &runtime.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod_sandbox_id: %w", err)
	}
	if err := s.removePodSandbox(ctx, sb); err != nil {
		return nil, err
	}
	return &runtime.RemovePodSandboxResponse{}, nil
}

// removePodSandbox releases everything of sb. Every step is idempotent, so
// start-up recovery uses it as well to finish a removal or undo a creation a
// crash interrupted.
func (s *Server) removePodSandbox(ctx context.Context, sb *sandbox.Sandbox) error {
	unlock := s.lockPod(sb.ID)
	defer unlock()
	if sb.Phase() == lifecycle.Removed {
		return nil // a concurrent remove finished it
	}
	// Marked first: a crash from here on is finished by recovery, never
	// left as a half-removed pod that lists as present.
	if err := sb.SetPhase(lifecycle.Removing); err != nil {
		return err
	}
	crashpoint.Hit("RemovePodSandbox:marked")
	if err := s.stopPodSandboxLocked(ctx, sb); err != nil {
		return err
	}
	if err := s.removePodContainers(ctx, sb); err != nil {
		return err
	}
	crashpoint.Hit("RemovePodSandbox:containers")
	if s.nri != nil {
		if err := s.nri.RemovePodSandbox(ctx, s.nriPod(sb)); err != nil {
			s.log.Warn("NRI plugins failed on a pod's removal", "pod", sb.ID, "error", err)
		}
	}
	if sb.InfraID != "" {
		if err := s.removeInfra(ctx, sb); err != nil {
			return fmt.Errorf("remove infra container of pod %s: %w", sb.ID, err)
		}
	}
	if err := s.ns.Remove(sb.ID); err != nil {
		return fmt.Errorf("remove namespaces of pod %s: %w", sb.ID, err)
	}
	crashpoint.Hit("RemovePodSandbox:namespaces")
	if err := s.ns.UnmountShm(sb.ShmPath()); err != nil {
		return err
	}
	if err := os.RemoveAll(sb.Dir); err != nil {
		return fmt.Errorf("remove dir of pod %s: %w", sb.ID, err)
	}
	if err := sb.SetPhase(lifecycle.Removed); err != nil {
		return err
	}
	s.sandboxes.Delete(sb.ID)
	s.podNames.Release(sb.Name, sb.ID)
	s.log.Info("pod sandbox removed", "pod", sb.ID, "name", sb.Name)
	s.emitSandbox(runtime.ContainerEventType_CONTAINER_DELETED_EVENT, sb)
	return nil
}
