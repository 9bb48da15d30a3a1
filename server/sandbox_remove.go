package server

import (
	"context"
	"errors"
	"fmt"
	"os"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/namespaces"
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
	if err := s.stopPodSandbox(ctx, sb); err != nil {
		return nil, err
	}
	unlock := s.lockPod(sb.ID)
	defer unlock()
	if err := s.removePodContainers(ctx, sb); err != nil {
		return nil, err
	}
	if sb.InfraID != "" {
		if err := s.removeInfra(ctx, sb); err != nil {
			return nil, fmt.Errorf("remove infra container of pod %s: %w", sb.ID, err)
		}
	}
	if err := namespaces.Remove(s.nsDir(), sb.ID); err != nil {
		return nil, fmt.Errorf("remove namespaces of pod %s: %w", sb.ID, err)
	}
	if err := os.RemoveAll(sb.Dir); err != nil {
		return nil, fmt.Errorf("remove dir of pod %s: %w", sb.ID, err)
	}
	s.sandboxes.Delete(sb.ID)
	s.podNames.Release(sb.Name, sb.ID)
	s.log.Info("pod sandbox removed", "pod", sb.ID, "name", sb.Name)
	s.emitSandbox(runtime.ContainerEventType_CONTAINER_DELETED_EVENT, sb)
	return &runtime.RemovePodSandboxResponse{}, nil
}
