package server

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/undo"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/specgen"
	"github.com/berth-dev/berth/storage"
)

// infraStopTimeout bounds how long the pause process gets to exit on
// SIGTERM; it holds nothing, so it never needs long.
const infraStopTimeout = 5 * time.Second

// pauseImage returns the configured pause image, pulling it when missing as
// the kubelet never pulls it itself.
func (s *Server) pauseImage(ctx context.Context) (*storage.Image, error) {
	ref := s.config.Image.PauseImage
	img, err := s.images.Image(ctx, ref)
	if errors.Is(err, errdefs.ErrNotFound) {
		s.log.Info("pulling pause image", "image", ref)
		if _, err := s.images.PullImage(ctx, ref, storage.Credentials{}); err != nil {
			return nil, fmt.Errorf("pull pause image: %w", err)
		}
		img, err = s.images.Image(ctx, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("pause image %s: %w", ref, err)
	}
	if img.Config == nil {
		return nil, fmt.Errorf("pause image %s has no readable config: %w", ref, errdefs.ErrFailedPrecondition)
	}
	return img, nil
}

// infraContainer is the runtime's view of the pod's pause container; the
// infra container shares the pod's id.
func infraContainer(sb *sandbox.Sandbox) *oci.Container {
	return &oci.Container{
		ID:           sb.InfraID,
		Name:         sb.Name,
		BundleDir:    sb.InfraBundle,
		LogPath:      filepath.Join(sb.InfraBundle, "pause.log"),
		CgroupParent: sb.CgroupParent,
	}
}

// startInfra runs the pod's pause container from the pause image.
func (s *Server) startInfra(ctx context.Context, sb *sandbox.Sandbox, undos *undo.Stack) error {
	rt := s.runtimeFor(sb.Handler)
	img, err := s.pauseImage(ctx)
	if err != nil {
		return err
	}
	id := sb.ID
	if err := s.rootfs.CreateRootfs(ctx, id, sb.Name, img.ID, storage.Owner{Pod: sb.ID, Kind: storage.KindInfra}); err != nil {
		return err
	}
	undos.Add("remove infra rootfs", func() error { return s.rootfs.RemoveRootfs(id) })
	rootfs, err := s.rootfs.MountRootfs(id)
	if err != nil {
		return err
	}
	bundle, err := s.rootfs.RootfsRunDir(id)
	if err != nil {
		return err
	}
	spec, err := specgen.InfraSpec(specgen.InfraInput{
		ID:                    id,
		Sandbox:               sandboxInfo(sb),
		Image:                 &img.Config.Config,
		Rootfs:                rootfs,
		CgroupManager:         s.config.Runtime.CgroupManager,
		DefaultSeccompProfile: s.config.Runtime.SeccompProfile,
		Host:                  s.host,
	})
	if err != nil {
		return err
	}
	if err := oci.WriteSpec(bundle, spec); err != nil {
		return err
	}
	sb.InfraID, sb.InfraBundle = id, bundle
	c := infraContainer(sb)
	pid, err := rt.CreateContainer(ctx, c)
	if err != nil {
		return err
	}
	undos.Add("delete infra container", func() error { return rt.DeleteContainer(context.WithoutCancel(ctx), c) })
	// Kept on the pod (and saved with its record when the pod becomes
	// ready): every container of a POD pid namespace joins this process's.
	sb.InfraPid = pid
	if err := rt.StartContainer(ctx, c); err != nil {
		return err
	}
	s.log.Debug("infra container started", "pod", sb.ID, "handler", rt.Name())
	return nil
}

func (s *Server) stopInfra(ctx context.Context, sb *sandbox.Sandbox) error {
	return s.runtimeFor(sb.Handler).StopContainer(ctx, infraContainer(sb), infraStopTimeout, syscall.SIGTERM)
}

func (s *Server) removeInfra(ctx context.Context, sb *sandbox.Sandbox) error {
	if err := s.runtimeFor(sb.Handler).DeleteContainer(ctx, infraContainer(sb)); err != nil {
		return err
	}
	return s.rootfs.RemoveRootfs(sb.InfraID)
}
