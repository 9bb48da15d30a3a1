package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/storage"
)

// ImageStatus describes one stored image; an absent image is an empty
// response, not an error. Verbose adds info["info"], a JSON document with
// the image config, like CRI-O's.
func (s *Server) ImageStatus(ctx context.Context, req *runtime.ImageStatusRequest) (*runtime.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, invalidf("image.image", "image reference is empty")
	}
	img, err := s.images.Image(ctx, ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		return &runtime.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtime.ImageStatusResponse{Image: criImage(img)}
	if req.GetVerbose() {
		info, err := imageInfo(img)
		if err != nil {
			return nil, err
		}
		resp.Info = info
	}
	return resp, nil
}

// imageVerboseInfo is the verbose document of ImageStatus.
type imageVerboseInfo struct {
	Labels    map[string]string `json:"labels,omitempty"`
	ImageSpec *imgspecv1.Image  `json:"imageSpec"`
	Pinned    bool              `json:"pinned"`
}

func imageInfo(img *storage.Image) (map[string]string, error) {
	info := imageVerboseInfo{ImageSpec: img.Config, Pinned: img.Pinned}
	if img.Config != nil {
		info.Labels = img.Config.Config.Labels
	}
	raw, err := json.Marshal(info)
	if err != nil {
		return nil, fmt.Errorf("encode status of image %s: %w", img.ID, err)
	}
	return map[string]string{"info": string(raw)}, nil
}
