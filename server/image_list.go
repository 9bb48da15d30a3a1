package server

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/storage"
)

// ListImages lists stored images; filter.image.image narrows the list to
// the image it names (by id, id prefix, name or digest, as ImageStatus).
func (s *Server) ListImages(ctx context.Context, req *runtime.ListImagesRequest) (*runtime.ListImagesResponse, error) {
	images, err := s.images.ListImages(ctx, req.GetFilter().GetImage().GetImage())
	if err != nil {
		return nil, err
	}
	resp := &runtime.ListImagesResponse{Images: make([]*runtime.Image, 0, len(images))}
	for _, img := range images {
		resp.Images = append(resp.Images, criImage(img))
	}
	return resp, nil
}

// criImage describes an image the way the CRI does.
func criImage(img *storage.Image) *runtime.Image {
	out := &runtime.Image{
		Id:          img.ID,
		RepoTags:    img.RepoTags,
		RepoDigests: img.RepoDigests,
		Size:        img.Size,
		Username:    img.Username,
		Pinned:      img.Pinned,
	}
	if out.RepoTags == nil {
		out.RepoTags = []string{}
	}
	if out.RepoDigests == nil {
		out.RepoDigests = []string{}
	}
	if img.UID != nil {
		out.Uid = &runtime.Int64Value{Value: *img.UID}
	}
	return out
}
