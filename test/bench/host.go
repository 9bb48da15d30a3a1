package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RSSMiB is a process's resident set (VmRSS from /proc/<pid>/status).
func RSSMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return kbField(data, "VmRSS:")
}

// PSSMiB is a process's proportional set (Pss from smaps_rollup): its
// private pages plus its share of those it shares, so that summing it over
// many conmons or shims does not count their common binary many times.
func PSSMiB(pid int) (float64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	return kbField(data, "Pss:")
}

// kbField finds "<name> <n> kB" in a /proc file and returns n in MiB.
func kbField(data []byte, name string) (float64, error) {
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, name); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			kb, err := strconv.ParseFloat(f[0], 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s %q: %w", name, f[0], err)
			}
			return kb / 1024, nil
		}
	}
	return 0, fmt.Errorf("no %s line", name)
}

// Helpers lists the processes whose command name starts with comm and whose
// command line contains marker (a path only this runtime instance uses):
// conmon for Berth, containerd-shim for containerd.
func Helpers(comm, marker string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		c, err := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
		if err != nil || !strings.HasPrefix(strings.TrimSpace(string(c)), comm) {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
			continue
		}
		pids = append(pids, pid)
	}
	sort.Ints(pids)
	return pids
}

// SumPSS is the summed PSS of pids (those that have gone are skipped).
func SumPSS(pids []int) (total float64, counted int) {
	for _, pid := range pids {
		if v, err := PSSMiB(pid); err == nil {
			total += v
			counted++
		}
	}
	return total, counted
}

// KillPids sends SIGKILL to each pid and waits up to 10s for them to go.
func KillPids(pids []int) {
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) && syscall.Kill(pid, 0) == nil {
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// RemoveTree unmounts whatever is mounted under dir (deepest first,
// lazily) and removes it: a runtime's storage leaves overlay, shm and
// namespace mounts behind when something outlives it.
func RemoveTree(dir string) error {
	for _, m := range MountsUnder(dir) {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
			return fmt.Errorf("unmount %s: %w", m, err)
		}
	}
	return os.RemoveAll(dir)
}

// MountsUnder lists the mount points at or below dir, deepest first.
func MountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mounts []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 {
			p := unescapeMount(fields[4])
			if p == dir || strings.HasPrefix(p, dir+"/") {
				mounts = append(mounts, p)
			}
		}
	}
	sort.SliceStable(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	return mounts
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// CgroupRoots are the hierarchies under /sys/fs/cgroup: each v1
// controller's mount (co-mounted ones once, their symlinks skipped), the
// cgroup2 mount of a hybrid host, or /sys/fs/cgroup itself on pure v2.
func CgroupRoots() []string {
	var st unix.Statfs_t
	if unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return []string{"/sys/fs/cgroup"}
	}
	entries, err := os.ReadDir("/sys/fs/cgroup")
	if err != nil {
		return nil
	}
	var roots []string
	for _, e := range entries {
		if e.IsDir() && e.Type()&os.ModeSymlink == 0 {
			roots = append(roots, filepath.Join("/sys/fs/cgroup", e.Name()))
		}
	}
	return roots
}

// RemoveCgroup removes rel (e.g. "kubepods/besteffort/pod<uid>") and every
// cgroup below it in every hierarchy, children first. A cgroup whose last
// process is still exiting is busy for a moment; it is retried for a few
// seconds.
func RemoveCgroup(rel string) error {
	var errs []error
	for _, root := range CgroupRoots() {
		if err := rmdirTree(filepath.Join(root, rel)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func rmdirTree(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := rmdirTree(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	var rerr error
	for range 50 {
		rerr = unix.Rmdir(dir)
		if rerr == nil || errors.Is(rerr, unix.ENOENT) {
			return nil
		}
		if !errors.Is(rerr, unix.EBUSY) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("remove cgroup %s: %w", dir, rerr)
}

// RemoveEmptyCgroup removes rel in every hierarchy where it exists and is
// empty (no child cgroups), leaving it where something else uses it.
func RemoveEmptyCgroup(rel string) {
	for _, root := range CgroupRoots() {
		_ = unix.Rmdir(filepath.Join(root, rel)) // ENOTEMPTY/EBUSY: in use
	}
}

// CgroupExists reports whether rel exists in any hierarchy.
func CgroupExists(rel string) bool {
	for _, root := range CgroupRoots() {
		if _, err := os.Stat(filepath.Join(root, rel)); err == nil {
			return true
		}
	}
	return false
}

// NetnsDir is where containerd (and `ip netns`) pin network namespaces.
const NetnsDir = "/run/netns"

// EnsureNetnsMount makes NetnsDir a shared bind mount of itself unless it
// is a mount point already, as `ip netns add` does the first time it runs.
// Without it, an `ip netns add` by anyone while containerd's pods run
// mounts NetnsDir over the pods' namespace mounts: containerd can then
// neither unmount nor unlink them, and every StopPodSandbox fails with
// "unlinkat /run/netns/cni-…: device or resource busy" (seen here while
// another suite ran).
func EnsureNetnsMount() error {
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return err
	}
	for _, m := range MountsUnder(NetnsDir) {
		if m == NetnsDir {
			return nil
		}
	}
	if err := unix.Mount(NetnsDir, NetnsDir, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind-mount %s on itself: %w", NetnsDir, err)
	}
	if err := unix.Mount("", NetnsDir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make %s shared: %w", NetnsDir, err)
	}
	return nil
}

// NetnsNames lists the namespaces pinned in NetnsDir.
func NetnsNames() map[string]bool {
	names := map[string]bool{}
	entries, _ := os.ReadDir(NetnsDir)
	for _, e := range entries {
		names[e.Name()] = true
	}
	return names
}
