package specgen

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

// setMounts places the default mounts, the pod's files, the image's
// volumes and the CRI mounts. A CRI mount replaces any other mount of the
// same destination.
func (g *gen) setMounts() error {
	cri, err := g.criMounts()
	if err != nil {
		return err
	}
	covered := map[string]bool{}
	for _, pm := range cri {
		covered[pm.m.Destination] = true
	}
	var list []plannedMount
	for _, pm := range defaultMounts(g.privileged) {
		if !covered[pm.m.Destination] {
			list = append(list, pm)
		}
	}
	if !covered["/dev/shm"] {
		list = append(list, g.shmMount())
	}
	var rest []plannedMount
	rest = append(rest, g.podFileMounts(covered)...)
	vols, err := g.imageVolumes(covered)
	if err != nil {
		return err
	}
	rest = append(append(rest, vols...), cri...)
	sortByDepth(rest)
	g.ms = mountSet{root: g.in.Rootfs}
	for _, pm := range append(list, rest...) {
		if err := g.ms.add(pm); err != nil {
			return err
		}
	}
	g.spec.Mounts = g.ms.mounts
	return nil
}

func (g *gen) underMount(p string) (string, bool) { return g.ms.under(p) }

func (g *gen) shmMount() plannedMount {
	sb := g.in.Sandbox
	pm := plannedMount{field: "sandbox shm", m: specs.Mount{Destination: "/dev/shm"}}
	switch {
	case sb.ShmPath != "":
		pm.m.Type, pm.m.Source, pm.m.Options = "bind", sb.ShmPath, []string{"rw", "bind"}
	case sb.HostIPC:
		pm.m.Type, pm.m.Source, pm.m.Options = "bind", "/dev/shm", []string{"rw", "bind"}
	default:
		pm.m.Type, pm.m.Source = "tmpfs", "shm"
		pm.m.Options = []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}
	}
	return pm
}

// podFileMounts binds the pod's resolv.conf, hosts and hostname files,
// read-only when the rootfs is (as CRI-O does).
func (g *gen) podFileMounts(covered map[string]bool) []plannedMount {
	mode := "rw"
	if g.sc.GetReadonlyRootfs() {
		mode = "ro"
	}
	sb := g.in.Sandbox
	var out []plannedMount
	for _, f := range []struct{ dest, src string }{
		{"/etc/resolv.conf", sb.ResolvPath},
		{"/etc/hosts", sb.HostsPath},
		{"/etc/hostname", sb.HostnamePath},
	} {
		if f.src == "" || covered[f.dest] {
			continue
		}
		out = append(out, plannedMount{
			field: "sandbox file " + f.dest,
			file:  true,
			m: specs.Mount{
				Destination: f.dest, Type: "bind", Source: f.src,
				Options: []string{mode, "bind", "nodev", "nosuid", "noexec"},
			},
		})
	}
	return out
}

// imageVolumes gives each VOLUME of the image that no CRI mount covers a
// fresh directory <VolumesDir>/<n>, bind-mounted, with the owner and mode
// of the image's directory. Without VolumesDir the directory is only made
// to exist in the rootfs (CRI-O's image_volumes = "mkdir").
func (g *gen) imageVolumes(covered map[string]bool) ([]plannedMount, error) {
	var dests []string
	for v := range g.image.Volumes {
		dests = append(dests, path.Join("/", v))
	}
	sort.Strings(dests)
	var out []plannedMount
	for n, dest := range dests {
		field := fmt.Sprintf("image config Volumes[%q]", dest)
		if covered[dest] || dest == "/" {
			continue
		}
		if g.in.VolumesDir == "" {
			out = append(out, plannedMount{field: field, mkdirOnly: true, m: specs.Mount{Destination: dest}})
			continue
		}
		dir := filepath.Join(g.in.VolumesDir, strconv.Itoa(n))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("%s: create volume directory: %w", field, err)
		}
		g.res.VolumeDirs = append(g.res.VolumeDirs, dir)
		if st, err := statInRoot(g.in.Rootfs, dest); err == nil && st.Mode&0o170000 == 0o040000 {
			_ = os.Chmod(dir, os.FileMode(st.Mode&0o777))
			_ = os.Chown(dir, int(st.Uid), int(st.Gid))
		}
		out = append(out, plannedMount{field: field, m: specs.Mount{
			Destination: dest, Type: "bind", Source: dir,
			Options: []string{"rbind", "rprivate", "rw"},
		}})
	}
	return out, nil
}

// Options a CRI mount may add through mount_options.
var allowedMountOptions = map[string]bool{
	"nosuid": true, "suid": true, "nodev": true, "dev": true, "noexec": true, "exec": true,
	"noatime": true, "atime": true, "relatime": true, "norelatime": true,
	"strictatime": true, "nostrictatime": true, "nodiratime": true, "diratime": true,
}

// criMounts validates the CRI mounts and turns them into bind mounts,
// creating missing host directories as CRI-O does. It also records what
// ContainerStatus reports and the rootfs propagation shared mounts need.
func (g *gen) criMounts() ([]plannedMount, error) {
	var out []plannedMount
	for i, m := range g.cfg.GetMounts() {
		f := fmt.Sprintf("config.mounts[%d]", i)
		if len(m.GetUidMappings())+len(m.GetGidMappings()) > 0 {
			return nil, fmt.Errorf("%s.uidMappings: id-mapped mounts are not supported: %w", f, errdefs.ErrNotImplemented)
		}
		dest := m.GetContainerPath()
		if dest == "" || !path.IsAbs(dest) || path.Clean(dest) == "/" {
			return nil, invalidf(f+".container_path", "%q is not an absolute path below /", dest)
		}
		dest = path.Clean(dest)
		var src string
		var isDir bool
		var err error
		if m.GetImage().GetImage() != "" {
			src, isDir, err = g.imageVolumeSource(f, i, m)
		} else {
			src, isDir, err = prepareHostPath(f+".host_path", m.GetHostPath())
		}
		if err != nil {
			return nil, err
		}
		opts, err := g.bindOptions(f, m, src)
		if err != nil {
			return nil, err
		}
		out = append(out, plannedMount{field: f + ".container_path", file: !isDir, m: specs.Mount{
			Destination: dest, Type: "bind", Source: src, Options: opts,
		}})
		g.res.Mounts = append(g.res.Mounts, &runtime.Mount{
			ContainerPath: m.GetContainerPath(), HostPath: m.GetHostPath(),
			Readonly: m.GetReadonly(), SelinuxRelabel: m.GetSelinuxRelabel(),
			Propagation: m.GetPropagation(), RecursiveReadOnly: m.GetRecursiveReadOnly(),
			MountOptions: append([]string(nil), m.GetMountOptions()...),
			Image:        m.GetImage(), ImageSubPath: m.GetImageSubPath(),
		})
	}
	return out, nil
}

// imageVolumeSource is the host path behind an image volume: the image,
// mounted read-only by the caller (Input.ImageMounts), or the sub path
// inside it, resolved so that a symlink in the image cannot lead out of it.
// Image volumes are read-only by definition; asking otherwise is refused.
func (g *gen) imageVolumeSource(f string, i int, m *runtime.Mount) (string, bool, error) {
	if !m.GetReadonly() {
		return "", false, invalidf(f+".readonly", "an image volume must be read-only")
	}
	root, ok := g.in.ImageMounts[i]
	if !ok || root == "" {
		return "", false, invalidf(f+".image", "image %q is not mounted", m.GetImage().GetImage())
	}
	src := root
	if sub := m.GetImageSubPath(); sub != "" {
		p, err := securejoin.SecureJoin(root, sub)
		if err != nil {
			return "", false, invalidf(f+".image_sub_path", "%q: %v", sub, err)
		}
		src = p
	}
	fi, err := os.Stat(src)
	if err != nil {
		return "", false, invalidf(f+".image_sub_path", "%q does not exist in image %q", m.GetImageSubPath(), m.GetImage().GetImage())
	}
	return src, fi.IsDir(), nil
}

// prepareHostPath creates a missing host path as a directory (kubelet
// relies on it, and CRI-O does it) and follows symlinks to the real source.
func prepareHostPath(field, src string) (string, bool, error) {
	if src == "" {
		return "", false, invalidf(field, "empty")
	}
	if !filepath.IsAbs(src) {
		return "", false, invalidf(field, "%q is not an absolute path", src)
	}
	if _, err := os.Stat(src); os.IsNotExist(err) {
		if err := os.MkdirAll(src, 0o755); err != nil {
			return "", false, invalidf(field, "create missing %s: %v", src, err)
		}
	}
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		return "", false, invalidf(field, "%v", err)
	}
	fi, err := os.Stat(real)
	if err != nil {
		return "", false, invalidf(field, "%v", err)
	}
	return real, fi.IsDir(), nil
}

// bindOptions maps readonly, propagation, recursive_read_only and
// mount_options of CRI mount m onto OCI options.
func (g *gen) bindOptions(f string, m *runtime.Mount, src string) ([]string, error) {
	opts := []string{"rbind"}
	switch m.GetPropagation() {
	case runtime.MountPropagation_PROPAGATION_PRIVATE:
		opts = append(opts, "rprivate")
	case runtime.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		if err := g.host.checkPropagation(f+".propagation", src, false); err != nil {
			return nil, err
		}
		opts = append(opts, "rslave")
		if g.spec.Linux.RootfsPropagation != "rshared" {
			g.spec.Linux.RootfsPropagation = "rslave"
		}
	case runtime.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		if err := g.host.checkPropagation(f+".propagation", src, true); err != nil {
			return nil, err
		}
		opts = append(opts, "rshared")
		g.spec.Linux.RootfsPropagation = "rshared"
	default:
		return nil, invalidf(f+".propagation", "unknown propagation %d", m.GetPropagation())
	}
	switch {
	case m.GetRecursiveReadOnly():
		if !m.GetReadonly() {
			return nil, invalidf(f+".recursive_read_only", "needs readonly to be set")
		}
		if m.GetPropagation() != runtime.MountPropagation_PROPAGATION_PRIVATE {
			return nil, invalidf(f+".recursive_read_only", "needs PROPAGATION_PRIVATE")
		}
		if !g.in.SupportsRRO {
			return nil, preconditionf(f+".recursive_read_only", "the OCI runtime does not support recursive read-only mounts")
		}
		opts = append(opts, "ro", "rro")
	case m.GetReadonly():
		opts = append(opts, "ro")
	default:
		opts = append(opts, "rw")
	}
	for j, o := range m.GetMountOptions() {
		if !allowedMountOptions[o] {
			return nil, invalidf(fmt.Sprintf("%s.mount_options[%d]", f, j), "option %q is not allowed", o)
		}
		opts = append(opts, o)
	}
	return opts, nil
}
