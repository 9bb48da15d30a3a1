package server

import (
	"context"
	"fmt"
	"slices"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
)

// RemoveImage removes an image by id, or untags it by one of several tags.
// Removing an absent image succeeds; an image a container uses is refused
// with FailedPrecondition.
func (s *Server) RemoveImage(ctx context.Context, req *runtime.RemoveImageRequest) (*runtime.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalidf("image.image", "image reference is empty")
	}
	// A container removed a moment ago may still hold the image while its
	// release finishes in the background: that is not a use.
	if img, err := s.images.Image(ctx, ref); err == nil {
		if err := s.takeOverRemovals(ctx, func(c *container.Container) bool {
			return c.ImageID == img.ID || slices.Contains(c.ImageMounts, img.ID)
		}); err != nil {
			return nil, fmt.Errorf("release containers removed from image %s: %w", ref, err)
		}
	}
	if err := s.images.RemoveImage(ctx, ref); err != nil {
		return nil, err
	}
	return &runtime.RemoveImageResponse{}, nil
}
