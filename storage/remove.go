package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.podman.io/image/v5/docker/reference"
	cstorage "go.podman.io/storage"

	"github.com/berth-dev/berth/errdefs"
)

// RemoveImage removes what ref names. By id or id prefix the image goes; by
// a tag of an image that has other tags only that tag goes; by its last tag
// or by digest the image goes. An absent image is not an error; an image a
// container uses is errdefs.ErrFailedPrecondition.
func (s *ImageService) RemoveImage(_ context.Context, ref string) error {
	img, name, err := s.lookup(ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove image %q: %w", ref, err)
	}
	if untagOnly(img, name) {
		if err := s.store.RemoveNames(img.ID, []string{name.String()}); err != nil {
			return fmt.Errorf("untag image %s as %s: %w", img.ID, name, err)
		}
		s.log.Info("untagged image", "id", img.ID, "name", name.String())
		return nil
	}
	return s.deleteImage(img.ID, ref)
}

// untagOnly reports whether removing name from img must keep the image:
// name is one of several tags.
func untagOnly(img *cstorage.Image, name reference.Named) bool {
	if name == nil {
		return false
	}
	if _, digested := name.(reference.Digested); digested {
		return false
	}
	tags, _ := splitNames(img.Names)
	return len(tags) > 1 && slices.Contains(img.Names, name.String())
}

// deleteImage deletes an image and the layers only it used.
func (s *ImageService) deleteImage(id, ref string) error {
	layers, err := s.store.DeleteImage(id, true)
	switch {
	case errors.Is(err, cstorage.ErrImageUnknown), errors.Is(err, cstorage.ErrNotAnImage):
		// Gone between lookup and delete: a concurrent RemoveImage won.
		return nil
	case errors.Is(err, cstorage.ErrImageUsedByContainer):
		return fmt.Errorf("remove image %q (%s): used by a container: %w", ref, id, errdefs.ErrFailedPrecondition)
	case err != nil:
		return fmt.Errorf("remove image %q (%s): %w", ref, id, err)
	}
	s.forgetConfig(id)
	s.log.Info("removed image", "id", id, "image", ref, "layers", len(layers))
	return nil
}
