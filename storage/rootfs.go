package storage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	cstorage "go.podman.io/storage"

	"github.com/berth-dev/berth/errdefs"
)

// RootfsService makes, mounts and removes container root filesystems. A
// container's root filesystem is a containers/storage container: a writable
// layer on top of its image's layers, named like the CRI object so
// `podman ps --external` shows what it belongs to.
type RootfsService struct {
	store cstorage.Store
}

// Kinds of root filesystem Berth makes.
const (
	KindInfra     = "infra"
	KindContainer = "container"
)

// Owner says which pod's container a root filesystem is. It is stored as
// the storage container's metadata, so that start-up tells Berth's own
// leftovers from other tools' containers (podman's, buildah's) in a shared
// store.
type Owner struct {
	Pod  string
	Kind string // KindInfra or KindContainer
}

// ownerMetadata is Owner as stored; "owner" marks the container Berth's.
type ownerMetadata struct {
	Owner string `json:"owner"` // "berth"
	Pod   string `json:"pod"`
	Kind  string `json:"kind"`
}

const ownerName = "berth"

func encodeOwner(o Owner) string {
	b, _ := json.Marshal(ownerMetadata{Owner: ownerName, Pod: o.Pod, Kind: o.Kind})
	return string(b)
}

// decodeOwner reads the owner back; ok is false for another tool's
// container or metadata Berth did not write.
func decodeOwner(metadata string) (o Owner, ok bool) {
	var md ownerMetadata
	if json.Unmarshal([]byte(metadata), &md) != nil || md.Owner != ownerName {
		return Owner{}, false
	}
	return Owner{Pod: md.Pod, Kind: md.Kind}, true
}

// CreateRootfs makes the storage container id, named name, from imageID,
// marked as owner's.
func (s *RootfsService) CreateRootfs(ctx context.Context, id, name, imageID string, owner Owner) error {
	_, err := s.store.CreateContainer(id, []string{name}, imageID, "", encodeOwner(owner), nil)
	switch {
	case errors.Is(err, cstorage.ErrDuplicateName), errors.Is(err, cstorage.ErrDuplicateID):
		return fmt.Errorf("create rootfs %s (%s): %v: %w", id, name, err, errdefs.ErrAlreadyExists)
	case errors.Is(err, cstorage.ErrImageUnknown):
		return fmt.Errorf("create rootfs %s: image %s: %w", id, imageID, errdefs.ErrNotFound)
	case err != nil:
		return fmt.Errorf("create rootfs %s: %w", id, err)
	}
	return nil
}

// MountRootfs mounts the container's root filesystem and returns where.
func (s *RootfsService) MountRootfs(id string) (string, error) {
	mp, err := s.store.Mount(id, "")
	if err != nil {
		return "", fmt.Errorf("mount rootfs of %s: %w", id, err)
	}
	return mp, nil
}

// UnmountRootfs unmounts the root filesystem; not mounted is fine.
func (s *RootfsService) UnmountRootfs(id string) error {
	if _, err := s.store.Unmount(id, true); err != nil && !errors.Is(err, cstorage.ErrContainerUnknown) && !errors.Is(err, cstorage.ErrLayerUnknown) {
		return fmt.Errorf("unmount rootfs of %s: %w", id, err)
	}
	return nil
}

// RemoveRootfs unmounts and deletes the storage container. Removing what is
// already gone succeeds: remove paths run again after crashes.
func (s *RootfsService) RemoveRootfs(id string) error {
	if err := s.UnmountRootfs(id); err != nil {
		return err
	}
	if err := s.store.DeleteContainer(id); err != nil && !errors.Is(err, cstorage.ErrContainerUnknown) && !errors.Is(err, cstorage.ErrNotAContainer) {
		return fmt.Errorf("delete rootfs of %s: %w", id, err)
	}
	return nil
}

// RootfsRunDir is a volatile directory (on the storage runroot) that belongs
// to the container: Berth keeps its OCI bundle there.
func (s *RootfsService) RootfsRunDir(id string) (string, error) {
	dir, err := s.store.ContainerRunDirectory(id)
	if err != nil {
		return "", fmt.Errorf("run dir of %s: %w", id, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create run dir of %s: %w", id, err)
	}
	return dir, nil
}

// Rootfs is a storage container as start-up recovery sees it.
type Rootfs struct {
	ID      string
	Names   []string
	ImageID string
	// Owner is the pod whose container it is; nil when Berth did not make
	// it.
	Owner *Owner
}

// ListRootfs lists every storage container in the store, Berth's and others'.
func (s *RootfsService) ListRootfs() ([]Rootfs, error) {
	cs, err := s.store.Containers()
	if err != nil {
		return nil, fmt.Errorf("list storage containers: %w", err)
	}
	out := make([]Rootfs, 0, len(cs))
	for _, c := range cs {
		r := Rootfs{ID: c.ID, Names: c.Names, ImageID: c.ImageID}
		if o, ok := decodeOwner(c.Metadata); ok {
			r.Owner = &o
		}
		out = append(out, r)
	}
	return out, nil
}

// WritableLayerUsage measures the writable layer of container id: the graph
// driver walks the layer's upper directory (overlay's diff, the whole
// directory with vfs). An unknown container is errdefs.ErrNotFound.
func (s *RootfsService) WritableLayerUsage(id string) (bytes, inodes uint64, err error) {
	c, err := s.store.Container(id)
	if errors.Is(err, cstorage.ErrContainerUnknown) {
		return 0, 0, fmt.Errorf("writable layer of %s: %w", id, errdefs.ErrNotFound)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("writable layer of %s: %w", id, err)
	}
	driver, err := s.store.GraphDriver()
	if err != nil {
		return 0, 0, fmt.Errorf("writable layer of %s: %w", id, err)
	}
	u, err := driver.ReadWriteDiskUsage(c.LayerID)
	if err != nil {
		return 0, 0, fmt.Errorf("measure writable layer of %s: %w", id, err)
	}
	return uint64(max(u.Size, 0)), uint64(max(u.InodeCount, 0)), nil
}

// LayersDir is the directory writable layers live in: the container
// filesystem that FsInfo measures, so that the kubelet finds both on the
// same filesystem.
func (s *RootfsService) LayersDir() string { return containersDir(s.store) }
