package check

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/config"
)

// Controllers that pods' resource limits use; without them limits are
// silently not enforced, or the runtime refuses the container.
var (
	v1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer"}
	v2Controllers = []string{"cpu", "cpuset", "memory", "pids"}
)

// cgroupDriver checks runtime.cgroup_manager against the host: cgroupfs
// works everywhere; systemd needs systemd as init.
func cgroupDriver(cfg *config.Config, host Host) Result {
	const name = "cgroup driver"
	_, err := os.Stat(host.SystemdRunDir)
	systemdInit := err == nil
	if cfg.Runtime.CgroupManager == "systemd" {
		if !systemdInit {
			return fail(name, `set runtime.cgroup_manager = "cgroupfs" in /etc/berth/berth.toml (and kubelet's cgroupDriver: cgroupfs)`,
				"runtime.cgroup_manager is systemd, but systemd is not the init system here (no %s)", host.SystemdRunDir)
		}
		return ok(name, "systemd, and systemd is the init system; kubelet needs cgroupDriver: systemd")
	}
	if systemdInit {
		return warn(name, `set runtime.cgroup_manager = "systemd" in /etc/berth/berth.toml and kubelet's cgroupDriver: systemd`,
			"cgroupfs on a host whose cgroups systemd manages: two managers of one tree")
	}
	return ok(name, "cgroupfs, and systemd is not the init system; kubelet needs cgroupDriver: cgroupfs")
}

// cgroups reports the cgroup layout (v1, v1 hybrid, v2) with its missing
// controllers and, on a hybrid host, whether crun can run there.
func cgroups(cfg *config.Config, host Host) []Result {
	const name = "cgroups"
	root := host.CgroupRoot
	t, err := host.FsType(root)
	if err != nil {
		return []Result{fail(name, fmt.Sprintf("mount cgroups at %s (`mount -t cgroup2 none %s`)", root, root), "%v", err)}
	}
	switch t {
	case unix.CGROUP2_SUPER_MAGIC:
		return []Result{cgroupV2(root)}
	case unix.TMPFS_MAGIC:
		unified := filepath.Join(root, "unified")
		if ut, err := host.FsType(unified); err == nil && ut == unix.CGROUP2_SUPER_MAGIC {
			return []Result{cgroupV1(host, root, "cgroup v1 hybrid"), cgroupHybrid(cfg, host, root, unified)}
		}
		return []Result{cgroupV1(host, root, "cgroup v1")}
	default:
		return []Result{fail(name, fmt.Sprintf("mount cgroup v2 (`mount -t cgroup2 none %s`) or the v1 controllers under a tmpfs there", root),
			"%s is neither cgroup2 nor a tmpfs of cgroup v1 controllers (filesystem magic %#x)", root, t)}
	}
}

func cgroupV2(root string) Result {
	const name = "cgroups"
	data, err := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return fail(name, fmt.Sprintf("remount cgroup2 at %s", root), "cgroup v2, but %v", err)
	}
	have := strings.Fields(string(data))
	var missing []string
	for _, c := range v2Controllers {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return warn(name, "enable them in the kernel (or free them from a v1 mount, which keeps them off cgroup2)",
			"cgroup v2 (unified) without controllers %s: pod limits of those kinds are not enforced", strings.Join(missing, ", "))
	}
	return ok(name, "cgroup v2 (unified), controllers %s", strings.Join(have, " "))
}

// cgroupV1 checks that the controllers pods need are mounted.
func cgroupV1(host Host, root, layout string) Result {
	const name = "cgroups"
	var missing []string
	for _, c := range v1Controllers {
		if t, err := host.FsType(filepath.Join(root, c)); err != nil || t != unix.CGROUP_SUPER_MAGIC {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return warn(name, mountV1Fix(root, missing),
			"%s without the %s controllers mounted: pod limits of those kinds are not enforced", layout, strings.Join(missing, ", "))
	}
	return ok(name, "%s, controllers %s mounted", layout, strings.Join(v1Controllers, ", "))
}

// cgroupHybrid is cgroup v1 with a cgroup2 mount at <root>/unified. crun
// refuses this layout ("cgroups in hybrid mode not supported, drop all
// controllers from cgroupv2") while any controller is on the cgroup2 mount,
// typically hugetlb when no v1 hierarchy mounts it; mounting the controller
// on v1 moves it off cgroup2. runc works either way.
func cgroupHybrid(cfg *config.Config, host Host, root, unified string) Result {
	const name = "cgroups for crun"
	data, err := os.ReadFile(filepath.Join(unified, "cgroup.controllers"))
	if err != nil {
		return warn(name, fmt.Sprintf("check the cgroup2 mount at %s", unified), "%v", err)
	}
	onV2 := strings.Fields(string(data))
	hugetlb := "no hugetlb controller"
	if t, err := host.FsType(filepath.Join(root, "hugetlb")); err == nil && t == unix.CGROUP_SUPER_MAGIC {
		hugetlb = "hugetlb on v1"
	}
	if slices.Contains(onV2, "hugetlb") {
		hugetlb = "hugetlb on cgroup2, not v1"
	}
	if len(onV2) == 0 {
		return ok(name, "%s: no controller is on cgroup2 (%s), so crun runs on this hybrid host", hugetlb, unified)
	}
	var crun []string
	for n, h := range cfg.Runtime.Handlers {
		if filepath.Base(h.Path) == "crun" {
			crun = append(crun, n)
		}
	}
	slices.Sort(crun)
	if len(crun) == 0 {
		return ok(name, "no crun handler configured; %s (controllers %s on cgroup2 %s) would stop crun, runc runs",
			hugetlb, strings.Join(onV2, ", "), unified)
	}
	status := Warn
	if slices.Contains(crun, cfg.Runtime.DefaultHandler) {
		status = Fail
	}
	return Result{
		Name:   name,
		Status: status,
		Detail: fmt.Sprintf("%s: crun (handler %s) refuses to run containers while cgroup2 (%s) holds controllers (%s): \"cgroups in hybrid mode not supported\"",
			hugetlb, strings.Join(crun, ", "), unified, strings.Join(onV2, ", ")),
		Fix: mountV1Fix(root, onV2) + " (lost at reboot; contrib/install-deps.sh redoes it), or use runc: set runtime.default_handler = \"runc\"",
	}
}

// mountV1Fix is the command that mounts controllers on cgroup v1.
func mountV1Fix(root string, controllers []string) string {
	cmds := make([]string, 0, len(controllers))
	for _, c := range controllers {
		dir := filepath.Join(root, c)
		cmds = append(cmds, fmt.Sprintf("mkdir -p %s && mount -t cgroup -o %s cgroup %s", dir, c, dir))
	}
	return "`" + strings.Join(cmds, " && ") + "`"
}
