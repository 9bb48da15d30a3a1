package server

import (
	"context"
	"fmt"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// UpdatePodSandboxResources is the kubelet telling the runtime of a pod's
// new resources after an in-place resize. The kubelet sets the pod's
// cgroup itself; the runtime passes the news to NRI plugins, which may
// rebalance what they gave the pod.
func (s *Server) UpdatePodSandboxResources(ctx context.Context, req *runtime.UpdatePodSandboxResourcesRequest) (*runtime.UpdatePodSandboxResourcesResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalidf("pod_sandbox_id", "required")
	}
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("pod_sandbox_id: %w", err)
	}
	if s.nri == nil {
		return &runtime.UpdatePodSandboxResourcesResponse{}, nil
	}
	pod := s.nriPod(sb)
	if res := req.GetResources(); res != nil {
		pod.Linux.PodResources = nriResources(res)
	}
	if o := req.GetOverhead(); o != nil {
		pod.Linux.PodOverhead = nriResources(o)
	}
	if err := s.nri.UpdatePodSandbox(ctx, pod, pod.Linux.PodOverhead, pod.Linux.PodResources); err != nil {
		return nil, err
	}
	if err := s.nri.PostUpdatePodSandbox(ctx, pod); err != nil {
		s.log.Warn("NRI plugins failed after a pod's update", "pod", sb.ID, "error", err)
	}
	return &runtime.UpdatePodSandboxResourcesResponse{}, nil
}
