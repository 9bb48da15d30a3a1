package specgen

import (
	"fmt"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

// setNamespaces joins the pod's network, IPC and UTS namespaces, picks the
// PID namespace by mode, and always gives a new mount namespace (and a new
// cgroup namespace on cgroup v2).
func (g *gen) setNamespaces() error {
	sb := g.in.Sandbox
	ns, err := podNamespaces(sb)
	if err != nil {
		return err
	}
	opts := NamespaceOptions(g.cfg, sb.SecurityContext)
	const field = scField + ".namespace_options"
	switch opts.GetPid() {
	case runtime.NamespaceMode_CONTAINER:
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace})
	case runtime.NamespaceMode_POD:
		if sb.InfraPid <= 0 {
			return preconditionf(field+".pid", "the pod has no infra process whose pid namespace to share")
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: procNS(sb.InfraPid, "pid")})
	case runtime.NamespaceMode_NODE:
	case runtime.NamespaceMode_TARGET:
		if opts.GetTargetId() == "" {
			return invalidf(field+".target_id", "empty with pid mode TARGET")
		}
		if g.in.TargetPid <= 0 {
			return preconditionf(field+".target_id", "container %s is not running", opts.GetTargetId())
		}
		ns = append(ns, specs.LinuxNamespace{Type: specs.PIDNamespace, Path: procNS(g.in.TargetPid, "pid")})
	default:
		return invalidf(field+".pid", "unknown mode %d", opts.GetPid())
	}
	switch u := opts.GetUsernsOptions(); u.GetMode() {
	case runtime.NamespaceMode_NODE:
	case runtime.NamespaceMode_POD:
		if u != nil {
			return fmt.Errorf("%s.userns_options: user namespaces are not supported: %w", field, errdefs.ErrNotImplemented)
		}
	default:
		return invalidf(field+".userns_options.mode", "mode %s is not allowed for user namespaces", u.GetMode())
	}
	if g.host.cgroup2 {
		ns = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	g.spec.Linux.Namespaces = ns
	if sb.UTSNS != "" {
		g.spec.Hostname = sb.Hostname
	}
	return nil
}

// NamespaceOptions are the namespace modes container cfg gets: its own,
// or, when it names none, its pod's. The server asks it too, to know
// whether it must resolve a TARGET pid namespace's container.
func NamespaceOptions(cfg *runtime.ContainerConfig, pod *runtime.LinuxSandboxSecurityContext) *runtime.NamespaceOption {
	if opts := cfg.GetLinux().GetSecurityContext().GetNamespaceOptions(); opts != nil {
		return opts
	}
	return pod.GetNamespaceOptions()
}

// podNamespaces is a new mount namespace plus the pod's pinned network,
// IPC and UTS namespaces. A namespace the pod has no pinned file for must be
// the host's, by the pod's own settings; anything else is a broken pod.
func podNamespaces(sb SandboxInfo) ([]specs.LinuxNamespace, error) {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}}
	for _, n := range []struct {
		t    specs.LinuxNamespaceType
		path string
		host bool
	}{
		{specs.NetworkNamespace, sb.NetNS, sb.HostNetwork},
		{specs.IPCNamespace, sb.IPCNS, sb.HostIPC},
		{specs.UTSNamespace, sb.UTSNS, sb.HostNetwork},
	} {
		switch {
		case n.path != "":
			ns = append(ns, specs.LinuxNamespace{Type: n.t, Path: n.path})
		case !n.host:
			return nil, preconditionf("sandbox "+sb.ID, "the pod has no pinned %s namespace", n.t)
		}
	}
	return ns, nil
}

func procNS(pid int, kind string) string {
	return "/proc/" + strconv.Itoa(pid) + "/ns/" + kind
}
