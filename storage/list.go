package storage

import (
	"context"
	"errors"
	"fmt"

	"github.com/berth-dev/berth/errdefs"
)

// ListImages describes every stored image or, with a non-empty filter, the
// image the filter names (matched as Image matches a reference).
func (s *ImageService) ListImages(ctx context.Context, filter string) ([]*Image, error) {
	if filter != "" {
		img, err := s.Image(ctx, filter)
		if errors.Is(err, errdefs.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return []*Image{img}, nil
	}
	images, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]*Image, 0, len(images))
	present := make(map[string]bool, len(images))
	for i := range images {
		present[images[i].ID] = true
		img, err := s.describe(ctx, &images[i])
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed while listing
		}
		if err != nil {
			return nil, err
		}
		out = append(out, img)
	}
	s.forgetConfigs(present)
	return out, nil
}
