package server

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListPodSandbox lists pods, filtered by id (or unique prefix), state and
// label selector.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtime.ListPodSandboxRequest) (*runtime.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	resp := &runtime.ListPodSandboxResponse{Items: []*runtime.PodSandbox{}}
	for _, sb := range s.sandboxes.List() {
		if f.GetId() != "" && !hasIDPrefix(sb.ID, f.GetId()) {
			continue
		}
		state := sandboxState(sb)
		if f.GetState() != nil && f.GetState().GetState() != state {
			continue
		}
		if !matchLabels(sb.Config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		resp.Items = append(resp.Items, &runtime.PodSandbox{
			Id:             sb.ID,
			Metadata:       sb.Config.GetMetadata(),
			State:          state,
			CreatedAt:      sb.CreatedAt.UnixNano(),
			Labels:         sb.Config.GetLabels(),
			Annotations:    sb.Config.GetAnnotations(),
			RuntimeHandler: sb.RuntimeHandler,
		})
	}
	return resp, nil
}

func hasIDPrefix(id, prefix string) bool {
	return len(id) >= len(prefix) && id[:len(prefix)] == prefix
}

// matchLabels tells whether labels hold every key=value of the selector.
func matchLabels(labels, selector map[string]string) bool {
	for k, v := range selector {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
