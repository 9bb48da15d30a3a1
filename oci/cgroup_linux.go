package oci

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// conmonCgroupName is the cgroup conmon gets under the pod's cgroup parent
// with the cgroupfs manager, like CRI-O's conmon_cgroup = "pod".
func conmonCgroupName(id string) string { return "berth-conmon-" + id }

// cgroupMounts lists the mount points of every cgroup hierarchy: each v1
// hierarchy (controllers and named ones such as name=systemd) and the v2
// one, whether it is the only one or the "unified" half of a hybrid setup.
// conmon joins a cgroup on all of them, as runc does for containers, so that
// none of its accounting stays in the daemon's cgroup.
//
// The list is read once: the hierarchies are mounted at boot (or by
// install-deps before the daemon starts) and never change while it runs,
// whereas the mount table they are read from grows with every container's
// mounts, and the kernel takes milliseconds to print a node's thousand
// mounts. A hierarchy mounted while the daemon runs is seen after a
// restart; creation and removal use the same list, so nothing is left.
func cgroupMounts() ([]string, error) {
	cgroupMountsMu.Lock()
	defer cgroupMountsMu.Unlock()
	if cgroupMountsCache != nil {
		return cgroupMountsCache, nil
	}
	mounts, err := readCgroupMounts()
	if err != nil {
		return nil, err // read again next time
	}
	if mounts == nil {
		mounts = []string{}
	}
	cgroupMountsCache = mounts
	return mounts, nil
}

var (
	cgroupMountsMu    sync.Mutex
	cgroupMountsCache []string
)

func readCgroupMounts() ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var mounts []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		// 36 35 98:0 /root /mnt rw,noatime shared:1 - cgroup cgroup rw,memory
		fields := strings.Fields(s.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 5 || sep+1 >= len(fields) {
			continue
		}
		if fs := fields[sep+1]; fs == "cgroup" || fs == "cgroup2" {
			mounts = append(mounts, fields[4])
		}
	}
	return mounts, s.Err()
}

// conmonCgroupPaths are the directories of container c's conmon cgroup, or
// nil when conmon stays in the daemon's cgroup: no cgroup parent was given,
// or the systemd manager is used (CRI-O asks systemd for a scope there; Berth
// does not yet).
func (r *Runtime) conmonCgroupPaths(c *Container) ([]string, error) {
	if c.CgroupParent == "" || r.cfg.CgroupManager != CgroupfsManager {
		return nil, nil
	}
	if strings.Contains(c.CgroupParent, "..") {
		return nil, fmt.Errorf("container %s: bad cgroup parent %q", c.ID, c.CgroupParent)
	}
	mounts, err := cgroupMounts()
	if err != nil {
		return nil, fmt.Errorf("container %s: list cgroup mounts: %w", c.ID, err)
	}
	rel := filepath.Join("/", c.CgroupParent, conmonCgroupName(c.ID))
	paths := make([]string, 0, len(mounts))
	for _, m := range mounts {
		paths = append(paths, filepath.Join(m, rel))
	}
	return paths, nil
}

// placeConmon moves pid (conmon, before it forks) into container c's conmon
// cgroup, creating it (and missing parents) on every hierarchy.
func (r *Runtime) placeConmon(c *Container, pid int) error {
	paths, err := r.conmonCgroupPaths(c)
	if err != nil || paths == nil {
		return err
	}
	for _, p := range paths {
		if err := mkdirCgroup(p); err != nil {
			return fmt.Errorf("create conmon cgroup of container %s: %w", c.ID, err)
		}
		procs := filepath.Join(p, "cgroup.procs")
		if err := os.WriteFile(procs, []byte(strconv.Itoa(pid)), 0); err != nil {
			return fmt.Errorf("move conmon of container %s into %s: %w", c.ID, p, err)
		}
	}
	return nil
}

// mkdirCgroup creates dir and its missing parents. On a v1 cpuset hierarchy
// a new cgroup starts with empty cpuset.cpus and cpuset.mems, which forbids
// adding tasks, so each level created inherits its parent's values.
func mkdirCgroup(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirCgroup(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	for _, name := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || strings.TrimSpace(string(cur)) != "" {
			continue // not a v1 cpuset hierarchy, or already set
		}
		val, err := os.ReadFile(filepath.Join(parent, name))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), val, 0); err != nil {
			return fmt.Errorf("inherit %s in %s: %w", name, dir, err)
		}
	}
	return nil
}

// removeConmonCgroup removes container c's conmon cgroup on every
// hierarchy. conmon must be gone; a cgroup still busy right after its last
// process exited is retried for a short while.
func (r *Runtime) removeConmonCgroup(c *Container) error {
	paths, err := r.conmonCgroupPaths(c)
	if err != nil {
		return err
	}
	for _, p := range paths {
		if err := rmdirCgroup(p); err != nil {
			return fmt.Errorf("remove conmon cgroup of container %s: %w", c.ID, err)
		}
	}
	return nil
}

func rmdirCgroup(dir string) error {
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := os.Remove(dir)
		if err == nil || errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}
