package server

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/storage"
)

// PullImage pulls an image and answers with its repo digest,
// name@sha256:<manifest digest>, as CRI-O does; kubelet passes it back in
// CreateContainer and ImageStatus, which accept it as well as the image id.
func (s *Server) PullImage(ctx context.Context, req *runtime.PullImageRequest) (*runtime.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalidf("image.image", "image reference is empty")
	}
	auth := req.GetAuth()
	res, err := s.images.PullImage(ctx, ref, storage.Credentials{
		Username:      auth.GetUsername(),
		Password:      auth.GetPassword(),
		Auth:          auth.GetAuth(),
		IdentityToken: auth.GetIdentityToken(),
		RegistryToken: auth.GetRegistryToken(),
	})
	if err != nil {
		return nil, err
	}
	// The CRI (and critest) require image_ref to be the image id, the same
	// identifier ImageStatus, ListImages and ContainerStatus.image_id give.
	return &runtime.PullImageResponse{ImageRef: res.ImageID}, nil
}
