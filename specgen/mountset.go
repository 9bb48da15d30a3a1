package specgen

import (
	"path"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// plannedMount is a mount whose Destination is still the path kubelet or
// the image asked for.
type plannedMount struct {
	m         specs.Mount
	field     string // the CRI field (or other origin) to name in errors
	file      bool   // the target is a file: a bind mount of a file
	mkdirOnly bool   // no mount: just make sure the directory exists
}

// mountSet places mounts in a rootfs. Each destination is either under an
// earlier mount (then it lives in that mount and Berth touches nothing) or
// resolved inside the rootfs, created if missing, and written to the spec
// resolved, so that the runtime follows no symlink of the image.
type mountSet struct {
	root    string
	mounts  []specs.Mount
	logical []string // the requested destination of each of mounts
}

// under reports where p lands when an earlier mount covers it (p is the
// mount point itself or below it); ok is false when none does.
func (s *mountSet) under(p string) (string, bool) {
	best := -1
	for i, l := range s.logical {
		if (p == l || strings.HasPrefix(p, l+"/") || l == "/") && (best < 0 || len(l) >= len(s.logical[best])) {
			best = i
		}
	}
	if best < 0 {
		return "", false
	}
	rel := strings.TrimPrefix(p, s.logical[best])
	return path.Join(s.mounts[best].Destination, rel), true
}

// add places pm, creating its target in the rootfs when it needs one.
func (s *mountSet) add(pm plannedMount) error {
	dest := pm.m.Destination
	if resolved, ok := s.under(dest); ok {
		if pm.mkdirOnly {
			return nil
		}
		pm.m.Destination = resolved
	} else {
		var resolved string
		var err error
		if pm.file {
			resolved, err = ensureFile(s.root, dest)
		} else {
			resolved, err = ensureDir(s.root, dest, 0o755, nil)
		}
		if err != nil {
			return invalidf(pm.field, "create mount point %q in the rootfs: %v", dest, err)
		}
		if pm.mkdirOnly {
			return nil
		}
		pm.m.Destination = resolved
	}
	s.mounts = append(s.mounts, pm.m)
	s.logical = append(s.logical, dest)
	return nil
}

// sortByDepth orders mounts parents first, keeping the given order among
// mounts of the same depth.
func sortByDepth(ms []plannedMount) {
	sort.SliceStable(ms, func(i, j int) bool {
		return depth(ms[i].m.Destination) < depth(ms[j].m.Destination)
	})
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}

// defaultMounts are the kernel filesystems every container gets (CRI-O's
// and runtime-tools' defaults). Privileged containers get sysfs and the
// cgroup tree writable.
func defaultMounts(privileged bool) []plannedMount {
	ro := "ro"
	if privileged {
		ro = "rw"
	}
	mk := func(dest, typ string, opts ...string) plannedMount {
		return plannedMount{
			m:     specs.Mount{Destination: dest, Type: typ, Source: typ, Options: opts},
			field: "default mount " + dest,
		}
	}
	return []plannedMount{
		mk("/proc", "proc", "nosuid", "noexec", "nodev"),
		mk("/dev", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
		mk("/dev/pts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
		mk("/dev/mqueue", "mqueue", "nosuid", "noexec", "nodev"),
		mk("/sys", "sysfs", "nosuid", "noexec", "nodev", ro),
		mk("/sys/fs/cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", ro),
	}
}

// Default masked and read-only paths (CRI-O's), used unless the security
// context lists its own; privileged containers get none.
var (
	defaultMaskedPaths = []string{
		"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
		"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	defaultReadonlyPaths = []string{
		"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
		"/proc/sysrq-trigger",
	}
)
