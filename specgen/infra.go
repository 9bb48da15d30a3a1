package specgen

import (
	"fmt"
	"path/filepath"
	"strconv"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// InfraInput describes a pod's infra (pause) container.
type InfraInput struct {
	ID      string // the infra container's id
	Sandbox SandboxInfo
	Image   *imagespec.ImageConfig // the pause image's config
	Rootfs  string

	CgroupManager         string
	DefaultSeccompProfile string
	// Host is the machine the pod runs on (ProbeHost); required.
	Host *Host
}

// pauseUser is the user pause runs as when its image names none.
const pauseUser = "65535:65535"

// InfraSpec builds the spec of a pod's infra container: the pause image's
// entrypoint and cmd on a read-only root, in the pod's pinned network, IPC
// and UTS namespaces with a new PID namespace (unless the pod uses the
// host's) for the pod's containers to share, no capabilities, no new
// privileges, the pod's seccomp profile, and no oom_score_adj of its own.
func InfraSpec(in InfraInput) (*specs.Spec, error) {
	if in.ID == "" {
		return nil, invalidf("infra container id", "empty")
	}
	if in.Host == nil {
		return nil, invalidf("host", "missing")
	}
	if !filepath.IsAbs(in.Rootfs) {
		return nil, invalidf("infra rootfs", "%q is not an absolute path", in.Rootfs)
	}
	var img imagespec.ImageConfig
	if in.Image != nil {
		img = *in.Image
	}
	sb := in.Sandbox
	sc := sb.SecurityContext
	host := in.Host
	spec := baseSpec(in.Rootfs)
	spec.Root.Readonly = true
	args, err := processArgs(img.Entrypoint, img.Cmd, nil, nil)
	if err != nil {
		return nil, invalidf("pause image", "no entrypoint or cmd")
	}
	p := spec.Process
	p.Args = args
	p.Env = mergeEnv([]string{defaultPath}, img.Env)
	p.NoNewPrivileges = true
	p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: host.nofile, Soft: host.nofile}}
	if p.User, err = infraUser(in.Rootfs, sc, img.User); err != nil {
		return nil, err
	}
	cg, err := cgroupsPath(in.CgroupManager, sb.CgroupParent, in.ID)
	if err != nil {
		return nil, err
	}
	l := spec.Linux
	l.CgroupsPath = cg
	if l.Namespaces, err = podNamespaces(sb); err != nil {
		return nil, err
	}
	if !sb.HostPID {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
	}
	if host.cgroup2 {
		l.Namespaces = append(l.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	if sb.UTSNS != "" {
		spec.Hostname = sb.Hostname
	}
	l.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	l.MaskedPaths = append([]string(nil), defaultMaskedPaths...)
	l.ReadonlyPaths = append([]string(nil), defaultReadonlyPaths...)
	ms := mountSet{root: in.Rootfs}
	for _, pm := range defaultMounts(false) {
		if err := ms.add(pm); err != nil {
			return nil, err
		}
	}
	spec.Mounts = ms.mounts
	if !sc.GetPrivileged() {
		l.Seccomp, err = seccompProfile(sc.GetSeccomp(), sc.GetSeccompProfilePath(),
			"sandbox_config.linux.security_context", in.DefaultSeccompProfile, spec)
		if err != nil {
			return nil, err
		}
	}
	setTypeAnnotations(spec.Annotations, "sandbox", sb.ID)
	return spec, nil
}

// infraUser is the pod's run_as_user/run_as_group when set, else the pause
// image's USER, else 65535:65535.
func infraUser(root string, sc *runtime.LinuxSandboxSecurityContext, imageUser string) (specs.User, error) {
	const field = "sandbox_config.linux.security_context"
	if imageUser == "" {
		imageUser = pauseUser
	}
	if u := sc.GetRunAsUser(); u != nil {
		imageUser = strconv.FormatInt(u.GetValue(), 10)
		if _, err := checkID(field+".run_as_user", u.GetValue()); err != nil {
			return specs.User{}, err
		}
	}
	users, err := readUsers(root)
	if err != nil {
		return specs.User{}, fmt.Errorf("read the pause image's /etc/passwd: %w", err)
	}
	uid, gid, _, err := resolveImageUser(root, users, imageUser)
	if err != nil {
		return specs.User{}, err
	}
	if g := sc.GetRunAsGroup(); g != nil {
		if gid, err = checkID(field+".run_as_group", g.GetValue()); err != nil {
			return specs.User{}, err
		}
	}
	u := specs.User{UID: uid, GID: gid, AdditionalGids: []uint32{gid}}
	for i, g := range sc.GetSupplementalGroups() {
		id, err := checkID(fmt.Sprintf("%s.supplemental_groups[%d]", field, i), g)
		if err != nil {
			return specs.User{}, err
		}
		u.AdditionalGids = appendUniqueID(u.AdditionalGids, id)
	}
	return u, nil
}

func appendUniqueID(list []uint32, id uint32) []uint32 {
	for _, x := range list {
		if x == id {
			return list
		}
	}
	return append(list, id)
}
