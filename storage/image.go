package storage

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/docker/reference"
	istorage "go.podman.io/image/v5/storage"
	cstorage "go.podman.io/storage"

	"github.com/berth-dev/berth/errdefs"
)

// Image is a stored image as the CRI describes it.
type Image struct {
	ID string
	// RepoTags are the image's tagged names (docker.io/library/busybox:latest).
	RepoTags []string
	// RepoDigests are repo@sha256:<manifest digest> for each repository the
	// image is known under.
	RepoDigests []string
	// Size is the image's size in storage (layers and metadata), in bytes.
	Size uint64
	// UID is the numeric USER of the image config, Username a named one;
	// both are unset when the image names no user.
	UID      *int64
	Username string
	// Pinned images are never garbage collected by kubelet.
	Pinned bool
	// TopLayer is the storage layer containers are created on.
	TopLayer string
	// Config is the OCI image config (nil if it could not be read).
	Config *imgspecv1.Image
}

// Image looks up a stored image by id, id prefix, name, name@digest or short
// name; an absent image is errdefs.ErrNotFound.
func (s *ImageService) Image(ctx context.Context, ref string) (*Image, error) {
	img, _, err := s.lookup(ref)
	if err != nil {
		return nil, err
	}
	return s.describe(ctx, img)
}

// describe turns a storage image into an Image.
func (s *ImageService) describe(ctx context.Context, img *cstorage.Image) (*Image, error) {
	entry, err := s.configOf(ctx, img.ID)
	if err != nil {
		return nil, err
	}
	named := s.namesOf(img)
	out := &Image{
		ID:          img.ID,
		RepoTags:    named.tags,
		RepoDigests: named.digests,
		Size:        entry.size,
		TopLayer:    img.TopLayer,
		Config:      entry.config,
		Pinned:      named.pinned,
	}
	if entry.config != nil {
		out.UID, out.Username = imageUser(entry.config.Config.User)
	}
	return out, nil
}

// namesEntry is what an image's stored names make of it: its repo tags and
// digests and whether it is pinned. Working that out parses every name
// (regular expressions), most of what ListImages cost.
type namesEntry struct {
	// key is the stored names and digests it was made from, live the
	// settings (pinned patterns) in force then.
	key     string
	live    *Reloadable
	tags    []string
	digests []string
	pinned  bool
}

// namesOf returns the names entry of img, reusing the remembered one while
// the image's names, digests and the pinned patterns are those it was made
// from. The key is compared on every call with what the store holds now, so
// a tag added or removed by anyone (podman on a shared store too) shows at
// once. The slices are shared between callers: read them only.
func (s *ImageService) namesOf(img *cstorage.Image) namesEntry {
	key := namesKey(img)
	live := s.live.Load()
	s.config.mu.Lock()
	entry, ok := s.config.names[img.ID]
	s.config.mu.Unlock()
	if ok && entry.key == key && entry.live == live {
		return entry
	}
	tags, digests := splitNames(img.Names)
	entry = namesEntry{key: key, live: live, tags: tags, digests: repoDigests(tags, digests, img)}
	entry.pinned = s.pinned(img.ID, tags, entry.digests)
	s.config.mu.Lock()
	s.config.names[img.ID] = entry
	s.config.mu.Unlock()
	return entry
}

// namesKey is everything namesOf reads of an image, as one string.
func namesKey(img *cstorage.Image) string {
	var b strings.Builder
	for _, n := range img.Names {
		b.WriteString(n)
		b.WriteByte('\n')
	}
	b.WriteByte(0)
	b.WriteString(img.Digest.String())
	for _, d := range img.Digests {
		b.WriteByte('\n')
		b.WriteString(d.String())
	}
	return b.String()
}

// repoDigests adds repo@digest, for each tagged repository and each of the
// image's manifest digests, to the digested names the image already has.
func repoDigests(tags, named []string, img *cstorage.Image) []string {
	out := slices.Clone(named)
	dgsts := img.Digests
	if img.Digest != "" && !slices.Contains(dgsts, img.Digest) {
		dgsts = append([]digest.Digest{img.Digest}, dgsts...)
	}
	for _, t := range tags {
		name, err := reference.ParseNormalizedNamed(t)
		if err != nil {
			continue
		}
		for _, d := range dgsts {
			if rd, err := repoDigest(name, d); err == nil && !slices.Contains(out, rd) {
				out = append(out, rd)
			}
		}
	}
	return out
}

// imageUser splits an image config USER ("uid", "name", "uid:gid") into a
// numeric uid or a user name, as CRI-O does.
func imageUser(user string) (*int64, string) {
	if user == "" {
		return nil, ""
	}
	user, _, _ = strings.Cut(user, ":")
	if uid, err := strconv.ParseInt(user, 10, 64); err == nil {
		return &uid, ""
	}
	return nil, user
}

// configEntry is what configCache remembers of an image.
type configEntry struct {
	config *imgspecv1.Image
	size   uint64
}

// configOf returns an image's config and size, from the cache if possible.
func (s *ImageService) configOf(ctx context.Context, id string) (configEntry, error) {
	s.config.mu.Lock()
	entry, ok := s.config.entries[id]
	s.config.mu.Unlock()
	if ok {
		return entry, nil
	}
	size, err := s.store.ImageSize(id)
	if errors.Is(err, cstorage.ErrImageUnknown) {
		return configEntry{}, fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return configEntry{}, fmt.Errorf("size of image %s: %w", id, err)
	}
	entry = configEntry{size: uint64(max(size, 0))}
	cfg, err := s.readConfig(ctx, id)
	if err != nil {
		// Describe the image anyway; try again next time.
		s.log.Warn("read image config", "id", id, "error", err)
		return entry, nil
	}
	entry.config = cfg
	s.config.mu.Lock()
	s.config.entries[id] = entry
	s.config.mu.Unlock()
	return entry, nil
}

// readConfig reads the OCI config of a stored image (converting a docker
// config if need be).
func (s *ImageService) readConfig(ctx context.Context, id string) (*imgspecv1.Image, error) {
	ref, err := istorage.Transport.NewStoreReference(s.store, nil, id)
	if err != nil {
		return nil, err
	}
	img, err := ref.NewImage(ctx, s.systemContext())
	if err != nil {
		return nil, err
	}
	defer img.Close()
	return img.OCIConfig(ctx)
}

// forgetConfigs drops cached entries of images no longer stored.
func (s *ImageService) forgetConfigs(present map[string]bool) {
	s.config.mu.Lock()
	defer s.config.mu.Unlock()
	for id := range s.config.entries {
		if !present[id] {
			delete(s.config.entries, id)
		}
	}
	for id := range s.config.names {
		if !present[id] {
			delete(s.config.names, id)
		}
	}
}

// forgetConfig drops the cached entry of a removed image.
func (s *ImageService) forgetConfig(id string) {
	s.config.mu.Lock()
	defer s.config.mu.Unlock()
	delete(s.config.entries, id)
	delete(s.config.names, id)
}
