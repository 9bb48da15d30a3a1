package specgen

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/errdefs"
)

// Host holds the properties of the machine a spec depends on. ProbeHost
// reads them; Input.Host, InfraInput.Host and Resources take them. Tests
// build their own Host to pretend to be another machine.
type Host struct {
	cgroup2  bool   // /sys/fs/cgroup is a pure cgroup v2 hierarchy
	lastCap  int    // /proc/sys/kernel/cap_last_cap
	bounding uint64 // the daemon's own bounding set (CapBnd)
	oomAdj   int    // the daemon's own oom_score_adj
	// sysResource: the daemon holds CAP_SYS_RESOURCE, so it may give a
	// container a lower oom_score_adj than its own.
	sysResource bool
	nofile      uint64          // the daemon's hard RLIMIT_NOFILE
	hugepages   map[string]bool // page sizes the kernel offers ("2MB", "1GB")
	swap        bool            // the memory controller accounts swap
	// mountinfo is the file listing the daemon's mounts, read on every
	// check of a mount's propagation (the mounts change while it runs).
	mountinfo string
}

// Hugetlb tells whether the kernel offers huge pages, whose limits a spec
// may then set.
func (h *Host) Hugetlb() bool { return len(h.hugepages) > 0 }

// ProbeHost reads the properties of this machine. Reading them once is
// enough: none of them changes while the daemon runs.
func ProbeHost() *Host {
	h := &Host{lastCap: len(capNames) - 1, bounding: ^uint64(0), nofile: defaultNofile, mountinfo: "/proc/self/mountinfo"}
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		h.cgroup2 = true
	}
	if b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			h.lastCap = n
		}
	}
	if b, err := readStatusField("CapBnd"); err == nil {
		if n, err := strconv.ParseUint(b, 16, 64); err == nil {
			h.bounding = n
		}
	}
	if b, err := readStatusField("CapEff"); err == nil {
		if n, err := strconv.ParseUint(b, 16, 64); err == nil {
			h.sysResource = n&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		h.oomAdj, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &rl) == nil && rl.Max < h.nofile {
		h.nofile = rl.Max
	}
	h.hugepages = map[string]bool{}
	dirs, _ := filepath.Glob("/sys/kernel/mm/hugepages/hugepages-*kB")
	for _, d := range dirs {
		kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(d), "hugepages-"), "kB"), 10, 64)
		if err == nil {
			h.hugepages[pageSizeName(kb*1024)] = true
		}
	}
	if h.cgroup2 {
		_, err := os.Stat("/sys/fs/cgroup/memory.swap.max")
		if err != nil {
			// The root cgroup has no memory.swap.max; look at a child.
			m, _ := filepath.Glob("/sys/fs/cgroup/*/memory.swap.max")
			h.swap = len(m) > 0
		} else {
			h.swap = true
		}
	} else {
		_, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
		h.swap = err == nil
	}
	return h
}

// appArmorSwitch is the kernel's AppArmor switch: "Y" while AppArmor is
// enforced. runc and CRI-O read the same file.
const appArmorSwitch = "/sys/module/apparmor/parameters/enabled"

// AppArmorEnabled tells whether this host enforces AppArmor, for
// Input.AppArmorEnabled. It reads the kernel's switch on every call: the
// daemon calls it once, at start-up.
func AppArmorEnabled() bool { return switchOn(appArmorSwitch) }

// switchOn tells whether the kernel parameter file at path says Y.
func switchOn(path string) bool {
	b, err := os.ReadFile(path)
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

func readStatusField(name string) (string, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if k, v, ok := strings.Cut(s.Text(), ":"); ok && k == name {
			return strings.TrimSpace(v), nil
		}
	}
	return "", fmt.Errorf("%s not in /proc/self/status", name)
}

// pageSizeName formats a huge page size the way the hugetlb controller names
// its files: 2097152 -> "2MB", 1073741824 -> "1GB".
func pageSizeName(b uint64) string {
	for _, u := range []string{"B", "KB", "MB", "GB", "TB"} {
		if b < 1024 || b%1024 != 0 {
			return strconv.FormatUint(b, 10) + u
		}
		b /= 1024
	}
	return strconv.FormatUint(b, 10) + "PB"
}

// invalidf builds the error for a CRI field the request got wrong:
// "config.mounts[2].host_path: empty: invalid argument".
func invalidf(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// preconditionf builds the error for a request this host cannot serve.
func preconditionf(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrFailedPrecondition)
}
