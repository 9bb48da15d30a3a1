package server

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ListContainers lists containers, filtered by id prefix, state, pod id
// (or prefix) and label selector.
func (s *Server) ListContainers(ctx context.Context, req *runtime.ListContainersRequest) (*runtime.ListContainersResponse, error) {
	f := req.GetFilter()
	resp := &runtime.ListContainersResponse{Containers: []*runtime.Container{}}
	for _, c := range candidates(s.containers, f.GetId()) {
		state := criState[c.State()]
		switch {
		case f.GetId() != "" && !hasIDPrefix(c.ID, f.GetId()):
			continue
		case f.GetPodSandboxId() != "" && !hasIDPrefix(c.PodID, f.GetPodSandboxId()):
			continue
		case f.GetState() != nil && f.GetState().GetState() != state:
			continue
		case !matchLabels(c.Config.GetLabels(), f.GetLabelSelector()):
			continue
		}
		resp.Containers = append(resp.Containers, &runtime.Container{
			Id:           c.ID,
			PodSandboxId: c.PodID,
			Metadata:     c.Config.GetMetadata(),
			Image:        reportedImage(c),
			ImageRef:     c.ImageRef,
			ImageId:      c.ImageID,
			State:        state,
			CreatedAt:    c.CreatedAt.UnixNano(),
			Labels:       c.Config.GetLabels(),
			Annotations:  c.Config.GetAnnotations(),
		})
	}
	return resp, nil
}
