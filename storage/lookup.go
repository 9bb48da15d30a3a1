package storage

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	cstorage "go.podman.io/storage"

	"github.com/berth-dev/berth/errdefs"
)

// lookup finds a stored image by full id, unique id prefix (at least three
// hex digits, "sha256:" optional), name with or without tag
// (busybox is docker.io/library/busybox:latest), name@digest, or short name
// resolved through the alias table and search registries. It returns the
// name that matched, nil when the id did.
func (s *ImageService) lookup(ref string) (*cstorage.Image, reference.Named, error) {
	if ref == "" {
		return nil, nil, fmt.Errorf("empty image reference: %w", errdefs.ErrInvalidArgument)
	}
	id, isID := idPrefix(ref)
	if isID {
		img, err := s.imageByIDPrefix(id)
		if err == nil || !errors.Is(err, errdefs.ErrNotFound) || strings.HasPrefix(ref, "sha256:") {
			return img, nil, err
		}
	}
	candidates, err := localCandidates(s.systemContext(), ref)
	if err != nil {
		if isID { // a 64-digit id is no valid name
			return nil, nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
		}
		return nil, nil, err
	}
	for _, name := range candidates {
		img, err := s.imageByName(name)
		if err == nil {
			return img, name, nil
		}
		if !errors.Is(err, cstorage.ErrImageUnknown) {
			return nil, nil, fmt.Errorf("look up image %q: %w", ref, err)
		}
	}
	return nil, nil, fmt.Errorf("image %q: %w", ref, errdefs.ErrNotFound)
}

// imageByIDPrefix finds the one image whose id starts with prefix.
func (s *ImageService) imageByIDPrefix(prefix string) (*cstorage.Image, error) {
	if len(prefix) == 64 {
		if img, err := s.store.Image(prefix); err == nil && img.ID == prefix {
			return img, nil
		}
		return nil, fmt.Errorf("image %s: %w", prefix, errdefs.ErrNotFound)
	}
	images, err := s.store.Images()
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var match *cstorage.Image
	for i := range images {
		if !strings.HasPrefix(images[i].ID, prefix) {
			continue
		}
		if match != nil {
			return nil, fmt.Errorf("image id prefix %s is ambiguous: %w", prefix, errdefs.ErrInvalidArgument)
		}
		match = &images[i]
	}
	if match == nil {
		return nil, fmt.Errorf("image %s: %w", prefix, errdefs.ErrNotFound)
	}
	return match, nil
}

// imageByName finds the image carrying name, or for name@digest an image of
// that repository with that manifest digest.
func (s *ImageService) imageByName(name reference.Named) (*cstorage.Image, error) {
	if img, err := s.store.Image(name.String()); err == nil && slices.Contains(img.Names, name.String()) {
		return img, nil
	}
	if d, ok := name.(reference.Digested); ok {
		images, err := s.store.ImagesByDigest(d.Digest())
		if err != nil && !errors.Is(err, cstorage.ErrImageUnknown) {
			return nil, err
		}
		for _, img := range images {
			if hasRepo(img.Names, name) {
				return img, nil
			}
		}
	}
	return nil, cstorage.ErrImageUnknown
}

// hasRepo reports whether any of names is in name's repository.
func hasRepo(names []string, name reference.Named) bool {
	repo := name.Name()
	for _, n := range names {
		if parsed, err := reference.ParseNormalizedNamed(n); err == nil && parsed.Name() == repo {
			return true
		}
	}
	return false
}
