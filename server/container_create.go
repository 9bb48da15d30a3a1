package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/crashpoint"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/internal/undo"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/specgen"
	"github.com/berth-dev/berth/storage"
)

// CreateContainer creates a container in a pod: its name, root filesystem,
// runtime spec and, through conmon, the runtime's created container.
func (s *Server) CreateContainer(ctx context.Context, req *runtime.CreateContainerRequest) (*runtime.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	switch {
	case req.GetPodSandboxId() == "":
		return nil, invalidf("pod_sandbox_id", "required")
	case cfg == nil:
		return nil, invalidf("config", "required")
	case cfg.GetMetadata().GetName() == "":
		return nil, invalidf("config.metadata.name", "required")
	case cfg.GetImage().GetImage() == "":
		return nil, invalidf("config.image.image", "required")
	}
	for i, kv := range cfg.GetEnvs() {
		// The runtime passes env as C strings: a NUL would silently cut
		// the value short.
		if strings.ContainsRune(kv.GetKey(), 0) || bytes.IndexByte(kv.GetValue(), 0) >= 0 {
			return nil, invalidf(fmt.Sprintf("config.envs[%d]", i), "variable %q contains a NUL byte", kv.GetKey())
		}
	}
	for i, m := range cfg.GetMounts() {
		if m.GetHostPath() == "" && m.GetImage().GetImage() == "" {
			return nil, invalidf(fmt.Sprintf("config.mounts[%d].host_path", i), "required")
		}
		if m.GetContainerPath() == "" {
			return nil, invalidf(fmt.Sprintf("config.mounts[%d].container_path", i), "required")
		}
	}
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("pod_sandbox_id: %w", err)
	}
	if sb.State() != sandbox.StateReady {
		return nil, fmt.Errorf("pod sandbox %s is not ready: %w", sb.ID, errdefs.ErrFailedPrecondition)
	}
	name := container.Name(cfg.GetMetadata(), sb.Config.GetMetadata())
	id, err := s.ctrCreates.Do(ctx, name, requestKey(req), func(ctx context.Context) (string, error) {
		// Before any lock: a plugin connecting now sees this container
		// in its sync or hears of it.
		defer s.blockNRISync()()
		// Held to the end: StopPodSandbox waits for this container and
		// then stops it, or this create sees the pod stopped.
		done, err := sb.BeginCreate()
		if err != nil {
			return "", err
		}
		defer done()
		c, err := s.createContainer(ctx, sb, cfg)
		if err != nil {
			return "", err
		}
		return c.ID, nil
	})
	if err != nil {
		return nil, err
	}
	return &runtime.CreateContainerResponse{ContainerId: id}, nil
}

func (s *Server) createContainer(ctx context.Context, sb *sandbox.Sandbox, cfg *runtime.ContainerConfig) (*container.Container, error) {
	begin := time.Now()
	// Before anything is made: a bad target is the request's fault.
	targetPid, err := s.targetPid(sb, cfg)
	if err != nil {
		return nil, err
	}
	img, err := s.images.Image(ctx, cfg.GetImage().GetImage())
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil, fmt.Errorf("config.image.image: image %q is not present; pull it first: %w", cfg.GetImage().GetImage(), errdefs.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("config.image.image: %w", err)
	}

	imageLookup := time.Since(begin)
	id := newID()
	name := container.Name(cfg.GetMetadata(), sb.Config.GetMetadata())
	c := container.New(id, name, sb.ID, cfg, s.ctrHooks)
	c.ImageID, c.Handler, c.CgroupParent = img.ID, sb.Handler, sb.CgroupParent
	if len(img.RepoDigests) > 0 {
		c.ImageRef = img.RepoDigests[0]
	} else {
		c.ImageRef = img.ID
	}
	c.ImageName = imageName(cfg.GetImage(), img)
	log := s.log.With("container", id, "name", name, "pod", sb.ID)
	var undos undo.Stack
	defer undos.Run(log)
	steps := newStepTimes(begin)
	steps.add("image_lookup", imageLookup)
	defer func() { log.Debug("create steps", steps.attrs()...) }()

	if err := s.ctrNames.Reserve(name, id); err != nil {
		return nil, fmt.Errorf("reserve container name: %w", err)
	}
	undos.Add("release container name "+name, func() error { s.ctrNames.Release(name, id); return nil })
	// A container of this name removed a moment ago may still hold its
	// storage container, whose name is the same: its release is finished
	// first.
	if err := s.takeOverRemovals(ctx, func(old *container.Container) bool { return old.Name == name }); err != nil {
		return nil, fmt.Errorf("finish the removal of an earlier container named %s: %w", name, err)
	}
	steps.done("earlier_removal")
	// The bundle is the runtime's own dir of the container, known before
	// anything is made, so conmon can be launched first (below).
	rt := s.runtimeFor(c.Handler)
	c.Bundle = rt.PersistDir(&oci.Container{ID: id})
	if c.LogPath, err = containerLogPath(sb, cfg, c.Bundle); err != nil {
		return nil, err
	}
	// Recorded before anything is made; the record's deletion is the last
	// undo, so a crash at any later step is undone by recovery.
	if err := c.Checkpoint(); err != nil {
		return nil, err
	}
	undos.Add("delete container record", func() error { return c.SetPhase(lifecycle.Removed) })
	crashpoint.Hit("CreateContainer:recorded")
	steps.done("record")

	// conmon is moved into its cgroup, which on cgroup v1 waits out a
	// grace period of the kernel, while the rootfs and the spec are made.
	oc := s.ociContainer(c)
	launched, err := rt.LaunchContainer(ctx, oc)
	if err != nil {
		return nil, fmt.Errorf("create container %s: %w", name, err)
	}
	undos.Add("abort conmon launch", func() error { return launched.Abort(context.WithoutCancel(ctx)) })
	steps.done("conmon_launch")

	if err := s.rootfs.CreateRootfs(ctx, id, name, img.ID, storage.Owner{Pod: sb.ID, Kind: storage.KindContainer}); err != nil {
		return nil, err
	}
	undos.Add("remove rootfs", func() error { return s.rootfs.RemoveRootfs(id) })
	steps.done("rootfs_create")
	rootfs, err := s.rootfs.MountRootfs(id)
	if err != nil {
		return nil, err
	}
	steps.done("rootfs_mount")
	crashpoint.Hit("CreateContainer:rootfs")

	imageMounts, err := s.mountImageVolumes(ctx, c, &undos)
	if err != nil {
		return nil, err
	}
	steps.done("image_volumes")

	var imgCfg *imgspecv1.ImageConfig
	if img.Config != nil {
		imgCfg = &img.Config.Config
	}
	in := s.specInput(id, sb, cfg)
	in.Image, in.Rootfs, in.ImageMounts, in.TargetPid = imgCfg, rootfs, imageMounts, targetPid
	res, err := specgen.Generate(in)
	if err != nil {
		return nil, fmt.Errorf("generate runtime spec of container %s: %w", name, err)
	}
	c.Mounts, c.VolumeDirs, c.StopSignal = res.Mounts, res.VolumeDirs, res.StopSignal
	for _, m := range c.Mounts {
		if m.GetImage().GetImage() != "" {
			// ContainerStatus reports which image an image volume holds.
			ref, _ := s.images.Image(ctx, m.GetImage().GetImage())
			if ref != nil {
				m.Image.ImageRef = ref.ID
			}
		}
	}
	c.User = &runtime.ContainerUser{Linux: &runtime.LinuxContainerUser{
		Uid: int64(res.User.UID), Gid: int64(res.User.GID), SupplementalGroups: int64s(res.User.AdditionalGids),
	}}
	undos.Add("remove volume dirs", func() error { return os.RemoveAll(filepath.Join(s.config.Runtime.StateDir, "volumes", id)) })
	steps.done("spec_generate")
	if s.nri != nil {
		if err := s.nriCreateContainer(ctx, sb, c, res.Spec, &undos); err != nil {
			return nil, err
		}
		crashpoint.Hit("CreateContainer:nri")
		steps.done("nri")
	}
	if err := oci.WriteSpec(c.Bundle, res.Spec); err != nil {
		return nil, err
	}
	steps.done("spec_write")

	if _, err := launched.Create(ctx); err != nil {
		return nil, fmt.Errorf("create container %s: %w", name, err)
	}
	undos.Add("delete runtime container", func() error { return rt.DeleteContainer(context.WithoutCancel(ctx), oc) })
	crashpoint.Hit("CreateContainer:runtime")
	steps.done("runtime_create")

	if err := c.SetPhase(lifecycle.Created); err != nil {
		return nil, err
	}
	steps.done("record_created")
	crashpoint.Hit("CreateContainer:done")
	s.containers.Add(c)
	undos.Commit()
	log.Info("container created", "image", cfg.GetImage().GetImage())
	if s.nri != nil {
		if err := s.nri.PostCreateContainer(ctx, s.nriPod(sb), s.nriContainer(c, res.Spec)); err != nil {
			log.Warn("NRI plugins failed after a container's creation", "error", err)
		}
	}
	s.emit(runtime.ContainerEventType_CONTAINER_CREATED_EVENT, c)
	return c, nil
}

// imageName is how a container's image is reported: the kubelet creates
// from the image's id and passes the pod spec's name as user_specified_image,
// which is what it compares the status with (an image update restarts the
// container once the status names the new image); another client gets the
// name it gave, or, when it gave an id, the image's first tag.
func imageName(spec *runtime.ImageSpec, img *storage.Image) string {
	if n := spec.GetUserSpecifiedImage(); n != "" {
		return n
	}
	asked := spec.GetImage()
	isID := asked == img.ID || asked == "sha256:"+img.ID || (len(asked) >= 12 && strings.HasPrefix(img.ID, asked))
	if isID && len(img.RepoTags) > 0 {
		return img.RepoTags[0]
	}
	return asked
}

// containerLogPath is <pod log_directory>/<log_path>, its directory made;
// a pod without a log directory logs into the bundle, since conmon always
// needs somewhere to write.
func containerLogPath(sb *sandbox.Sandbox, cfg *runtime.ContainerConfig, bundle string) (string, error) {
	dir, rel := sb.Config.GetLogDirectory(), cfg.GetLogPath()
	if dir == "" || rel == "" {
		return filepath.Join(bundle, "ctr.log"), nil
	}
	path := filepath.Join(dir, filepath.Clean("/"+rel))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return "", fmt.Errorf("create log dir for %s: %w", path, err)
	}
	return path, nil
}

// specInput is what the spec of container id takes from the daemon's
// configuration and the host, its pod and its config; the caller adds what
// it made for the container (rootfs, image mounts) and its target's pid.
func (s *Server) specInput(id string, sb *sandbox.Sandbox, cfg *runtime.ContainerConfig) specgen.Input {
	return specgen.Input{
		ID:                    id,
		Config:                cfg,
		Sandbox:               sandboxInfo(sb),
		CgroupManager:         s.config.Runtime.CgroupManager,
		DefaultCapabilities:   s.config.Runtime.DefaultCapabilities,
		PidsLimit:             s.config.Runtime.PidsLimit,
		DefaultSeccompProfile: s.config.Runtime.SeccompProfile,
		AppArmorEnabled:       s.appArmor,
		VolumesDir:            filepath.Join(s.config.Runtime.StateDir, "volumes", id),
		SupportsRRO:           supportsRRO(),
		Host:                  s.host,
	}
}

// targetField is where a container in pid namespace mode TARGET names the
// container whose pid namespace it joins.
const targetField = "config.linux.security_context.namespace_options.target_id"

// targetPid is the init pid of the container whose pid namespace cfg's
// container joins in pid mode TARGET (kubectl debug --target), and 0 in
// any other mode. As in containerd and CRI-O, the target must be a
// container of the same pod, and running: a target the request names
// wrongly is InvalidArgument, one that does not run (yet or any more) is
// FailedPrecondition.
func (s *Server) targetPid(sb *sandbox.Sandbox, cfg *runtime.ContainerConfig) (int, error) {
	nso := specgen.NamespaceOptions(cfg, sb.Config.GetLinux().GetSecurityContext())
	if nso.GetPid() != runtime.NamespaceMode_TARGET {
		return 0, nil
	}
	id := nso.GetTargetId()
	if id == "" {
		return 0, invalidf(targetField, "required with pid namespace mode TARGET")
	}
	target, err := s.containers.Get(id)
	if err != nil {
		return 0, invalidf(targetField, "%v", err)
	}
	if target.PodID != sb.ID {
		return 0, invalidf(targetField, "container %s belongs to pod %s, not to pod %s", target.ID, target.PodID, sb.ID)
	}
	if st := target.State(); st != container.StateRunning {
		return 0, fmt.Errorf("%s: container %s is %s, not running: %w", targetField, target.ID, st, errdefs.ErrFailedPrecondition)
	}
	rt, oc := s.runtimeFor(target.Handler), s.ociContainer(target)
	pid, err := rt.InitPid(oc)
	if err != nil || !rt.InitAlive(oc) {
		// Exited, and the exit not yet recorded.
		return 0, fmt.Errorf("%s: container %s is not running: its init process is gone: %w", targetField, target.ID, errdefs.ErrFailedPrecondition)
	}
	return pid, nil
}

// sandboxInfo is what a container's spec takes from its pod.
func sandboxInfo(sb *sandbox.Sandbox) specgen.SandboxInfo {
	nso := sb.Config.GetLinux().GetSecurityContext().GetNamespaceOptions()
	info := specgen.SandboxInfo{
		ID:              sb.ID,
		CgroupParent:    sb.CgroupParent,
		NetNS:           sb.NS.Net,
		IPCNS:           sb.NS.IPC,
		UTSNS:           sb.NS.UTS,
		HostNetwork:     nso.GetNetwork() == runtime.NamespaceMode_NODE,
		HostIPC:         nso.GetIpc() == runtime.NamespaceMode_NODE,
		HostPID:         nso.GetPid() == runtime.NamespaceMode_NODE,
		ResolvPath:      sb.ResolvPath(),
		HostsPath:       sb.HostsPath(),
		HostnamePath:    sb.HostnamePath(),
		SecurityContext: sb.Config.GetLinux().GetSecurityContext(),
	}
	info.Hostname, _ = sb.Hostname()
	if !info.HostIPC {
		info.ShmPath = sb.ShmPath()
	}
	info.InfraPid = sb.InfraPid
	return info
}

// ociContainer is the runtime's view of c.
func (s *Server) ociContainer(c *container.Container) *oci.Container {
	return &oci.Container{
		ID:           c.ID,
		Name:         c.Name,
		BundleDir:    c.Bundle,
		LogPath:      c.LogPath,
		Terminal:     c.Config.GetTty(),
		Stdin:        c.Config.GetStdin(),
		StdinOnce:    c.Config.GetStdinOnce(),
		CgroupParent: c.CgroupParent,
		LogSizeMax:   s.config.Runtime.LogSizeMax,
	}
}

func int64s(in []uint32) []int64 {
	out := make([]int64, len(in))
	for i, v := range in {
		out[i] = int64(v)
	}
	return out
}

// mountImageVolumes mounts, read-only, every image that an image volume
// (config.mounts[i].image) names, and returns the mount points by index.
func (s *Server) mountImageVolumes(ctx context.Context, c *container.Container, undos *undo.Stack) (map[int]string, error) {
	out := map[int]string{}
	for i, m := range c.Config.GetMounts() {
		ref := m.GetImage().GetImage()
		if ref == "" {
			continue
		}
		img, err := s.images.Image(ctx, ref)
		if err != nil {
			return nil, fmt.Errorf("config.mounts[%d].image: %w", i, err)
		}
		mp, err := s.images.MountImage(img.ID)
		if err != nil {
			return nil, err
		}
		c.ImageMounts = append(c.ImageMounts, img.ID)
		undos.Add("unmount image "+img.ID, func() error { return s.images.UnmountImage(img.ID) })
		out[i] = mp
	}
	return out, nil
}

// stepTimes measures the steps of one call, for a debug line that says
// where its time went.
type stepTimes struct {
	last  time.Time
	begin time.Time
	names []string
	took  []time.Duration
}

func newStepTimes(begin time.Time) *stepTimes { return &stepTimes{begin: begin, last: time.Now()} }

// add records a step measured elsewhere.
func (t *stepTimes) add(name string, d time.Duration) {
	t.names, t.took = append(t.names, name), append(t.took, d)
}

// done ends the step called name, begun when the last one ended.
func (t *stepTimes) done(name string) {
	now := time.Now()
	t.add(name, now.Sub(t.last))
	t.last = now
}

// attrs are the steps as log attributes, in milliseconds, and the total.
func (t *stepTimes) attrs() []any {
	out := make([]any, 0, 2*len(t.names)+2)
	for i, n := range t.names {
		out = append(out, n, ms(t.took[i]))
	}
	return append(out, "total", ms(time.Since(t.begin)))
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000) }
