package sandbox

import (
	"fmt"
	"strconv"
	"strings"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/errdefs"
)

// specVersion is the newest runtime-spec version crun 1.8 accepts.
const specVersion = "1.1.0"

// CgroupsPath is where a container of the pod (or its infra process) gets
// its cgroup, in the form each cgroup manager expects.
func CgroupsPath(manager, parent, id string) string {
	if manager == "systemd" {
		return parent + ":berth:" + id
	}
	return strings.TrimSuffix(parent, "/") + "/berth-" + id
}

// InfraSpec is the runtime spec of the pod's pause process: it joins the
// pod's pinned namespaces, is the init of the pod's PID namespace, and does
// nothing but wait, with no capabilities and a read-only root.
func (s *Sandbox) InfraSpec(rootfs string, img *imgspecv1.Image, cgroupManager string) (*specs.Spec, error) {
	args := append(append([]string{}, img.Config.Entrypoint...), img.Config.Cmd...)
	if len(args) == 0 {
		return nil, fmt.Errorf("pause image has neither entrypoint nor cmd: %w", errdefs.ErrInvalidArgument)
	}
	uid, gid, err := numericUser(img.Config.User)
	if err != nil {
		return nil, err
	}
	env := img.Config.Env
	if len(env) == 0 {
		env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	}
	spec := &specs.Spec{
		Version: specVersion,
		Root:    &specs.Root{Path: rootfs, Readonly: true},
		Process: &specs.Process{
			Args:            args,
			Env:             env,
			Cwd:             "/",
			User:            specs.User{UID: uid, GID: gid},
			NoNewPrivileges: true,
			Capabilities:    &specs.LinuxCapabilities{},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Annotations: map[string]string{
			"io.kubernetes.cri.container-type": "sandbox",
			"io.kubernetes.cri.sandbox-id":     s.ID,
		},
		Linux: &specs.Linux{
			CgroupsPath: CgroupsPath(cgroupManager, s.CgroupParent, s.ID),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
			},
			ReadonlyPaths: []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	for _, ns := range []struct {
		typ  specs.LinuxNamespaceType
		path string
	}{
		{specs.NetworkNamespace, s.NS.Net},
		{specs.IPCNamespace, s.NS.IPC},
		{specs.UTSNamespace, s.NS.UTS},
	} {
		if ns.path != "" {
			spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: ns.typ, Path: ns.path})
		}
	}
	return spec, nil
}

// numericUser parses the pause image's USER, which must be numeric: the
// pause image has no /etc/passwd to resolve names against.
func numericUser(user string) (uid, gid uint32, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid64, err := strconv.ParseUint(u, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("pause image user %q is not numeric: %w", user, errdefs.ErrInvalidArgument)
	}
	gid64 := uid64
	if hasGroup {
		if gid64, err = strconv.ParseUint(g, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("pause image group %q is not numeric: %w", user, errdefs.ErrInvalidArgument)
		}
	}
	return uint32(uid64), uint32(gid64), nil
}
