package server

import (
	"context"
	"encoding/json"
	"fmt"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/sandbox"
)

// PodSandboxStatus reports a pod's state, network and namespaces.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtime.PodSandboxStatusRequest) (*runtime.PodSandboxStatusResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalidf("pod_sandbox_id", "required")
	}
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("pod_sandbox_id: %w", err)
	}
	resp := &runtime.PodSandboxStatusResponse{Status: sandboxStatus(sb)}
	if req.GetVerbose() {
		info, err := s.sandboxVerboseInfo(sb)
		if err != nil {
			return nil, err
		}
		resp.Info = info
	}
	resp.ContainersStatuses = s.podContainerStatuses(sb)
	resp.Timestamp = sb.CreatedAt.UnixNano()
	return resp, nil
}

func sandboxState(sb *sandbox.Sandbox) runtime.PodSandboxState {
	if sb.State() == sandbox.StateReady {
		return runtime.PodSandboxState_SANDBOX_READY
	}
	return runtime.PodSandboxState_SANDBOX_NOTREADY
}

func sandboxStatus(sb *sandbox.Sandbox) *runtime.PodSandboxStatus {
	st := &runtime.PodSandboxStatus{
		Id:             sb.ID,
		Metadata:       sb.Config.GetMetadata(),
		State:          sandboxState(sb),
		CreatedAt:      sb.CreatedAt.UnixNano(),
		Labels:         sb.Config.GetLabels(),
		Annotations:    sb.Config.GetAnnotations(),
		RuntimeHandler: sb.RuntimeHandler,
		Linux: &runtime.LinuxPodSandboxStatus{Namespaces: &runtime.Namespace{
			Options: namespaceOptions(sb),
		}},
	}
	if ips := sb.IPs(); len(ips) > 0 {
		st.Network = &runtime.PodSandboxNetworkStatus{Ip: ips[0]}
		for _, ip := range ips[1:] {
			st.Network.AdditionalIps = append(st.Network.AdditionalIps, &runtime.PodIP{Ip: ip})
		}
	}
	return st
}

// namespaceOptions reports the namespace modes the pod actually got, with
// unset modes filled in as the defaults they stand for.
func namespaceOptions(sb *sandbox.Sandbox) *runtime.NamespaceOption {
	req := sb.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	return &runtime.NamespaceOption{
		Network:  req.GetNetwork(),
		Pid:      req.GetPid(),
		Ipc:      req.GetIpc(),
		TargetId: req.GetTargetId(),
	}
}

// sandboxVerboseInfo is the verbose status: what a node admin needs to debug a pod.
func (s *Server) sandboxVerboseInfo(sb *sandbox.Sandbox) (map[string]string, error) {
	info := map[string]any{
		"id":             sb.ID,
		"name":           sb.Name,
		"runtimeHandler": sb.Handler,
		"cgroupParent":   sb.CgroupParent,
		"netns":          sb.NS.Net,
		"ipcns":          sb.NS.IPC,
		"utsns":          sb.NS.UTS,
		"resolvPath":     sb.ResolvPath(),
		"hostsPath":      sb.HostsPath(),
		"config":         sb.Config,
	}
	if sb.InfraID != "" {
		info["infraContainerId"] = sb.InfraID
		info["pid"] = sb.InfraPid
	}
	b, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode verbose status of pod %s: %w", sb.ID, err)
	}
	return map[string]string{"info": string(b)}, nil
}
