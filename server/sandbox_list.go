package server

import (
	"context"
	"errors"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/objstore"
)

// ListPodSandbox lists pods, filtered by id (or unique prefix), state and
// label selector.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtime.ListPodSandboxRequest) (*runtime.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	resp := &runtime.ListPodSandboxResponse{Items: []*runtime.PodSandbox{}}
	for _, sb := range candidates(s.sandboxes, f.GetId()) {
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

// candidates are the objects a list filtered by id (or prefix) looks at:
// the one an id or unique prefix names, without a scan of them all (the
// kubelet asks by id for each of its pods); every object otherwise.
func candidates[T objstore.Object](st *objstore.Store[T], id string) []T {
	if id == "" {
		return st.List()
	}
	o, err := st.Get(id)
	switch {
	case err == nil:
		return []T{o}
	case errors.Is(err, errdefs.ErrNotFound):
		return nil
	}
	return st.List() // a prefix of several
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
