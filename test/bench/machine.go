package bench

import (
	"os"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// DescribeMachine reads what the report says about the host: CPU model
// and count, memory, kernel, OS release, cgroup layout, Go, the versions of
// the OCI runtimes, conmon and the CNI plugins, and the load at the start.
func DescribeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Tools: map[string]string{}}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.Join(strings.Fields(v), " ")
				break
			}
		}
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		if kb, err := kbField(data, "MemTotal:"); err == nil {
			m.MemoryGiB = kb / 1024
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = "Linux " + unix.ByteSliceToString(u.Release[:])
	}
	if data, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	m.Cgroups = cgroupLayout()
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(data))
		if len(f) >= 3 {
			m.Load = strings.Join(f[:3], " ")
		}
	}
	for name, args := range map[string][]string{
		"crun":   {"/usr/bin/crun", "--version"},
		"runc":   {"/usr/bin/runc", "--version"},
		"conmon": {"/usr/bin/conmon", "--version"},
		"cni":    {"/usr/lib/cni/bridge", "--version"},
	} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err == nil {
			m.Tools[name] = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
		}
	}
	return m
}

func cgroupLayout() string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "cgroup v2"
	}
	if unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "cgroup v1 hybrid, cgroupfs driver"
	}
	return "cgroup v1, cgroupfs driver"
}
