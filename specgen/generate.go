// Package specgen turns a CRI ContainerConfig into an OCI runtime spec, the
// way CRI-O does: every field kubelet sends either lands in the spec or is
// refused with an error naming the field ("config.mounts[1].host_path: ...:
// invalid argument"). Paths inside the container's rootfs are resolved with
// the rootfs as root, so no symlink in an image makes Berth create, write or
// mount anything outside it.
package specgen

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/oci"
)

// Input is everything Generate needs to know about one container.
type Input struct {
	ID      string // container id
	Config  *runtime.ContainerConfig
	Sandbox SandboxInfo
	Image   *imagespec.ImageConfig // the image's config; nil is an empty one
	Rootfs  string                 // the container's rootfs, already mounted

	CgroupManager         string   // "cgroupfs" (default) or "systemd"
	DefaultCapabilities   []string // with or without the CAP_ prefix
	PidsLimit             int64    // 0 or -1: unlimited
	DefaultSeccompProfile string   // JSON profile for RuntimeDefault; "" is moby's
	// AppArmorEnabled tells that the host enforces AppArmor (see
	// AppArmorEnabled); without it a Localhost AppArmor profile is refused.
	AppArmorEnabled bool
	// VolumesDir is where the image's anonymous VOLUMEs get fresh backing
	// directories (<VolumesDir>/<n>); "" creates them inside the rootfs
	// instead, like CRI-O's image_volumes = "mkdir".
	VolumesDir string
	// TargetPid is the init pid of the running container named by
	// namespace_options.target_id, whose pid namespace a container in pid
	// mode TARGET joins; the caller resolves it (it knows the containers).
	TargetPid int
	// SupportsRRO tells that the OCI runtime implements the "rro" mount option.
	SupportsRRO bool
	// ImageMounts are the host paths of the images that image volumes
	// (config.mounts[i].image) mount, mounted read-only, by mount index.
	ImageMounts map[int]string
	// Host is the machine the container runs on (ProbeHost); required.
	Host *Host
}

// SandboxInfo is what a container takes from its pod.
type SandboxInfo struct {
	ID           string
	CgroupParent string
	// Pinned namespace files; "" means the host's namespace.
	NetNS, IPCNS, UTSNS           string
	HostNetwork, HostIPC, HostPID bool
	// InfraPid is the pod's infra process, whose pid namespace containers
	// with the POD pid mode join; 0 when the pod runs none.
	InfraPid int
	// The pod's files; ShmPath is "" for host IPC (the host's /dev/shm is used).
	ResolvPath, HostsPath, HostnamePath, ShmPath string
	Hostname                                     string
	SecurityContext                              *runtime.LinuxSandboxSecurityContext
}

// ResolvedUser is the identity the container's first process runs as.
type ResolvedUser struct {
	UID, GID       uint32
	AdditionalGids []uint32 // includes GID, as id -G shows it
}

// Result is the spec and what the caller must remember about it.
type Result struct {
	Spec       *specs.Spec
	User       ResolvedUser
	Mounts     []*runtime.Mount // what ContainerStatus reports
	StopSignal string           // "SIGTERM" unless the config or image says otherwise
	VolumeDirs []string         // host dirs made for image volumes; remove with the container
}

// gen carries one Generate call's state between its steps.
type gen struct {
	in         Input
	cfg        *runtime.ContainerConfig
	sc         *runtime.LinuxContainerSecurityContext
	image      imagespec.ImageConfig
	privileged bool
	host       *Host
	spec       *specs.Spec
	res        *Result
	user       *userEntry // the passwd entry of the user, if any
	ms         mountSet
}

// Generate builds the runtime spec of container in.ID. It creates missing
// mount targets and the working directory inside the rootfs, host
// directories for CRI mounts that lack them, and the image volumes' backing
// directories (listed in Result.VolumeDirs, and removed again on error).
func Generate(in Input) (_ *Result, err error) {
	cfg := in.Config
	if cfg == nil {
		return nil, invalidf("config", "missing")
	}
	if in.ID == "" {
		return nil, invalidf("container id", "empty")
	}
	if in.Host == nil {
		return nil, invalidf("host", "missing")
	}
	if cfg.GetMetadata().GetName() == "" {
		return nil, invalidf("config.metadata.name", "empty")
	}
	if !filepath.IsAbs(in.Rootfs) {
		return nil, invalidf("rootfs", "%q is not an absolute path", in.Rootfs)
	}
	if len(cfg.GetCDIDevices()) > 0 {
		return nil, fmt.Errorf("config.CDI_devices: CDI devices are not supported: %w", errdefs.ErrNotImplemented)
	}
	g := &gen{
		in:         in,
		cfg:        cfg,
		sc:         cfg.GetLinux().GetSecurityContext(),
		privileged: cfg.GetLinux().GetSecurityContext().GetPrivileged(),
		host:       in.Host,
		res:        &Result{},
	}
	if in.Image != nil {
		g.image = *in.Image
	}
	if g.privileged && !in.Sandbox.SecurityContext.GetPrivileged() {
		return nil, invalidf("config.linux.security_context.privileged", "the pod sandbox is not privileged")
	}
	g.spec = baseSpec(in.Rootfs)
	g.res.Spec = g.spec
	defer func() {
		if err != nil {
			for _, d := range g.res.VolumeDirs {
				_ = os.RemoveAll(d)
			}
		}
	}()
	cgPath, err := cgroupsPath(in.CgroupManager, in.Sandbox.CgroupParent, in.ID)
	if err != nil {
		return nil, err
	}
	g.spec.Linux.CgroupsPath = cgPath
	for _, step := range []func() error{
		g.setProcess, g.setUser, g.setCapabilities, g.setNamespaces,
		g.setResources, g.setDevices, g.setMounts, g.setWorkingDir,
		g.setSecurity, g.setAnnotations,
	} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return g.res, nil
}

// baseSpec is the skeleton every spec starts from.
func baseSpec(rootfs string) *specs.Spec {
	return &specs.Spec{
		Version: oci.SpecVersion, // crun 1.8.1 refuses ociVersion >= 1.2.0
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{
			Cwd:          "/",
			Capabilities: &specs.LinuxCapabilities{},
		},
		Linux: &specs.Linux{
			Resources: &specs.LinuxResources{},
		},
		Annotations: map[string]string{},
	}
}

// CgroupParent is the cgroup parent of a pod that asked for parent (""
// for none) under cgroup manager: the requested one, or Berth's default,
// which is a directory for cgroupfs and a slice for systemd. It is the one
// place that default is decided.
func CgroupParent(manager, parent string) string {
	switch {
	case parent != "":
		return parent
	case manager == oci.SystemdManager:
		return "system.slice"
	default:
		return "/berth"
	}
}

// cgroupsPath names the container's cgroup under its pod's parent: a
// directory for cgroupfs, a "slice:prefix:name" triple for systemd.
func cgroupsPath(manager, parent, id string) (string, error) {
	const field = "sandbox_config.linux.cgroup_parent"
	parent = CgroupParent(manager, parent)
	switch manager {
	case oci.SystemdManager:
		if !strings.HasSuffix(parent, ".slice") || strings.Contains(parent, "/") {
			return "", invalidf(field, "%q is not a systemd slice", parent)
		}
		return parent + ":berth:" + id, nil
	case oci.CgroupfsManager, "":
		for _, c := range strings.Split(parent, "/") {
			if c == ".." {
				return "", invalidf(field, "%q escapes the cgroup root", parent)
			}
		}
		return filepath.Join("/", parent, "berth-"+id), nil
	}
	return "", fmt.Errorf("cgroup manager %q: %w", manager, errdefs.ErrInvalidArgument)
}

// Annotations the runtimes or Berth itself interpret. A pod's own
// annotations with these prefixes are kept out of the spec so that no pod
// author can steer the runtime (crun's run.oci.*, systemd unit properties).
var reservedAnnotationPrefixes = []string{
	"run.oci.", "org.systemd.property.", "io.kubernetes.cri-o.",
	"io.kubernetes.cri.", "io.containers.", "org.criu.",
}

func (g *gen) setAnnotations() error {
	ann := g.spec.Annotations
	copyAnnotations(ann, g.cfg.GetAnnotations())
	setTypeAnnotations(ann, "container", g.in.Sandbox.ID)
	ann["io.kubernetes.cri.container-name"] = g.cfg.GetMetadata().GetName()
	if img := g.cfg.GetImage().GetImage(); img != "" {
		ann["io.kubernetes.cri.image-name"] = img
	}
	return nil
}

func copyAnnotations(dst, src map[string]string) {
next:
	for k, v := range src {
		for _, p := range reservedAnnotationPrefixes {
			if strings.HasPrefix(k, p) {
				continue next
			}
		}
		dst[k] = v
	}
}

func setTypeAnnotations(ann map[string]string, kind, sandboxID string) {
	ann["io.kubernetes.cri.container-type"] = kind
	ann["io.kubernetes.cri.sandbox-id"] = sandboxID
	ann["io.kubernetes.cri-o.ContainerType"] = kind
	ann["io.kubernetes.cri-o.SandboxID"] = sandboxID
}

// isNotExist also covers a path whose parent is not a directory.
func isNotExist(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, errNotDir)
}
