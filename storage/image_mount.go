package storage

import (
	"errors"
	"fmt"

	cstorage "go.podman.io/storage"
)

// MountImage mounts image id read-only for an image volume and returns
// where. containers/storage counts the mounts of an image, so every
// container's volume takes and releases one of its own.
func (s *ImageService) MountImage(id string) (string, error) {
	mp, err := s.store.MountImage(id, []string{"ro"}, "")
	if err != nil {
		return "", fmt.Errorf("mount image %s: %w", id, err)
	}
	return mp, nil
}

// UnmountImage releases one mount of image id taken by MountImage; an image
// that is gone or not mounted is fine.
func (s *ImageService) UnmountImage(id string) error {
	if _, err := s.store.UnmountImage(id, false); err != nil &&
		!errors.Is(err, cstorage.ErrImageUnknown) && !errors.Is(err, cstorage.ErrLayerUnknown) && !errors.Is(err, cstorage.ErrLayerNotMounted) {
		return fmt.Errorf("unmount image %s: %w", id, err)
	}
	return nil
}
