package server

import (
	"context"
	"errors"
	"fmt"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/crashpoint"
	"github.com/berth-dev/berth/sandbox"
)

// StopPodSandbox stops the pod's containers and releases its network; the
// sandbox stays listed (NotReady) until removed. Stopping an unknown or
// already stopped pod succeeds, as the kubelet and critest expect.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtime.StopPodSandboxRequest) (*runtime.StopPodSandboxResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalidf("pod_sandbox_id", "required")
	}
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if errors.Is(err, errdefs.ErrNotFound) {
		s.log.Debug("stop of unknown pod sandbox", "pod", req.GetPodSandboxId())
		return &runtime.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pod_sandbox_id: %w", err)
	}
	if err := s.stopPodSandbox(ctx, sb); err != nil {
		return nil, err
	}
	return &runtime.StopPodSandboxResponse{}, nil
}

func (s *Server) stopPodSandbox(ctx context.Context, sb *sandbox.Sandbox) error {
	unlock := s.lockPod(sb.ID)
	defer unlock()
	return s.stopPodSandboxLocked(ctx, sb)
}

// stopPodSandboxLocked is stopPodSandbox for a caller holding the pod lock.
func (s *Server) stopPodSandboxLocked(ctx context.Context, sb *sandbox.Sandbox) error {
	// Creations under way in the pod finish first, so their containers are
	// stopped below; later ones find the pod not ready.
	release := sb.BlockCreates()
	defer release()
	if err := s.stopPodContainers(ctx, sb); err != nil {
		return err
	}
	crashpoint.Hit("StopPodSandbox:containers")
	if sb.InfraID != "" {
		if err := s.stopInfra(ctx, sb); err != nil {
			return fmt.Errorf("stop infra container of pod %s: %w", sb.ID, err)
		}
	}
	// Once every process is gone, before the network: plugins may want to
	// release what they gave the pod while its namespaces are still there.
	if s.nri != nil {
		if err := s.nri.StopPodSandbox(ctx, s.nriPod(sb)); err != nil {
			s.log.Warn("NRI plugins failed on a pod's stop", "pod", sb.ID, "error", err)
		}
	}
	// The network goes before the namespace: plugins need the netns to
	// find and remove what they added.
	if sb.NetworkSetUp() {
		if err := s.network.Teardown(ctx, networkPod(sb)); err != nil {
			return fmt.Errorf("tear down network of pod %s: %w", sb.ID, err)
		}
		if err := sb.SetNetwork(false, sb.IPs()); err != nil {
			return err
		}
		crashpoint.Hit("StopPodSandbox:network")
	}
	if err := s.ns.UnmountShm(sb.ShmPath()); err != nil {
		return err
	}
	if sb.State() != sandbox.StateNotReady {
		if err := sb.SetState(sandbox.StateNotReady); err != nil {
			return err
		}
		s.log.Info("pod sandbox stopped", "pod", sb.ID, "name", sb.Name)
		s.emitSandbox(runtime.ContainerEventType_CONTAINER_STOPPED_EVENT, sb)
	}
	return nil
}
