// Package stats reads what CRI stats and metrics report about containers
// and pods: CPU, memory and process counts from their cgroups (v1 and v2:
// the few files the CRI stats need directly, everything the metrics need
// through github.com/opencontainers/cgroups), network counters from a pod's
// network namespace, and the disk usage of writable layers. It also keeps
// what must survive between calls: each object's previous CPU sample, from
// which the usage rate is computed, and recent layer usages.
package stats

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"github.com/opencontainers/cgroups/fs2"

	"github.com/berth-dev/berth/errdefs"
)

// unifiedRoot is where the cgroup v2 hierarchy is mounted on a pure v2 host.
const unifiedRoot = "/sys/fs/cgroup"

// unlimited is where a memory limit stops meaning anything: cgroup v1 says
// "no limit" with 0x7FFFFFFFFFFFF000, v2 with "max" (read as MaxUint64).
const unlimited = 1 << 62

// ErrNoCgroup is returned when an object's cgroup does not exist (the
// container never started, or its runtime already removed it).
var ErrNoCgroup = fmt.Errorf("no cgroup: %w", errdefs.ErrNotFound)

// Sample is one reading of a cgroup, in the units the CRI uses.
type Sample struct {
	// Time is when the cgroup was read.
	Time   time.Time
	CPU    CPU
	Memory Memory
	// Processes is the number of tasks in the cgroup (pids.current, or
	// the lines of cgroup.procs without the pids controller).
	Processes uint64
	// ProcessLimit is pids.max; 0 means unlimited.
	ProcessLimit uint64
	Tasks        Tasks
	// OOMEvents counts OOM kills in the cgroup.
	OOMEvents uint64
}

// CPU is cumulative CPU time in nanoseconds.
type CPU struct {
	UsageNanos, UserNanos, SystemNanos uint64
	// CFS throttling: elapsed and throttled periods, throttled time.
	Periods, ThrottledPeriods, ThrottledNanos uint64
}

// Memory is a cgroup's memory use in bytes (page faults in counts).
type Memory struct {
	// Usage is all memory charged, page cache included.
	Usage uint64
	// WorkingSet is Usage less the inactive file cache: what the kubelet
	// evicts on and cAdvisor reports as working set.
	WorkingSet uint64
	// RSS is anonymous memory (v1 total_rss, v2 anon).
	RSS        uint64
	Cache      uint64
	MappedFile uint64
	Swap       uint64
	MaxUsage   uint64
	Failcnt    uint64
	// PageFaults and MajorPageFaults are cumulative counts.
	PageFaults, MajorPageFaults uint64
	// Limit is the memory limit; 0 when there is none.
	Limit uint64
	// Kernel is kernel memory charged to the cgroup.
	Kernel uint64
}

// Available is the memory the cgroup may still use before its limit (limit
// less working set), and whether it has a limit at all.
func (m Memory) Available() (uint64, bool) {
	if m.Limit == 0 {
		return 0, false
	}
	if m.WorkingSet >= m.Limit {
		return 0, true
	}
	return m.Limit - m.WorkingSet, true
}

// Add sums o into s, for a pod made of several cgroups. Limits are not
// summed: the sum of the parts has no limit of its own.
func (s *Sample) Add(o Sample) {
	if o.Time.After(s.Time) {
		s.Time = o.Time
	}
	s.CPU.UsageNanos += o.CPU.UsageNanos
	s.CPU.UserNanos += o.CPU.UserNanos
	s.CPU.SystemNanos += o.CPU.SystemNanos
	s.CPU.Periods += o.CPU.Periods
	s.CPU.ThrottledPeriods += o.CPU.ThrottledPeriods
	s.CPU.ThrottledNanos += o.CPU.ThrottledNanos
	m, om := &s.Memory, o.Memory
	m.Usage += om.Usage
	m.WorkingSet += om.WorkingSet
	m.RSS += om.RSS
	m.Cache += om.Cache
	m.MappedFile += om.MappedFile
	m.Swap += om.Swap
	m.MaxUsage += om.MaxUsage
	m.Failcnt += om.Failcnt
	m.PageFaults += om.PageFaults
	m.MajorPageFaults += om.MajorPageFaults
	m.Limit = 0
	m.Kernel += om.Kernel
	s.Tasks.Threads += o.Tasks.Threads
	s.Tasks.FileDescriptors += o.Tasks.FileDescriptors
	s.Tasks.Sockets += o.Tasks.Sockets
	s.OOMEvents += o.OOMEvents
	s.Processes += o.Processes
	s.ProcessLimit = 0
}

// memoryStatKeys name the memory.stat entries used, which differ between
// v1 (with or without hierarchical accounting) and v2.
type memoryStatKeys struct {
	rss, cache, mapped, swap, inactiveFile, pgfault, pgmajfault string
}

var (
	v1Keys = memoryStatKeys{"rss", "cache", "mapped_file", "swap", "inactive_file", "pgfault", "pgmajfault"}
	// v1 hierarchical: the cgroup and all its descendants.
	v1TotalKeys = memoryStatKeys{"total_rss", "total_cache", "total_mapped_file", "total_swap", "total_inactive_file", "total_pgfault", "total_pgmajfault"}
	v2Keys      = memoryStatKeys{"anon", "file", "file_mapped", "", "inactive_file", "pgfault", "pgmajfault"}
)

// FromCgroupStats maps the cgroups library's stats to a Sample; unified
// tells whether they were read from cgroup v2.
func FromCgroupStats(st *cgroups.Stats, unified bool, at time.Time) Sample {
	cpu := st.CpuStats
	s := Sample{
		Time: at,
		CPU: CPU{
			UsageNanos:       cpu.CpuUsage.TotalUsage,
			UserNanos:        cpu.CpuUsage.UsageInUsermode,
			SystemNanos:      cpu.CpuUsage.UsageInKernelmode,
			Periods:          cpu.ThrottlingData.Periods,
			ThrottledPeriods: cpu.ThrottlingData.ThrottledPeriods,
			ThrottledNanos:   cpu.ThrottlingData.ThrottledTime,
		},
		Processes:    st.PidsStats.Current,
		ProcessLimit: st.PidsStats.Limit,
	}
	mem := st.MemoryStats
	keys := v2Keys
	switch {
	case unified:
	case mem.UseHierarchy:
		keys = v1TotalKeys
	default:
		keys = v1Keys
	}
	m := &s.Memory
	m.Usage = mem.Usage.Usage
	m.MaxUsage = mem.Usage.MaxUsage
	m.Failcnt = mem.Usage.Failcnt
	m.RSS = mem.Stats[keys.rss]
	m.Cache = mem.Stats[keys.cache]
	m.MappedFile = mem.Stats[keys.mapped]
	m.PageFaults = mem.Stats[keys.pgfault]
	m.MajorPageFaults = mem.Stats[keys.pgmajfault]
	if unified {
		m.Swap = mem.SwapOnlyUsage.Usage
	} else {
		m.Swap = mem.Stats[keys.swap]
	}
	m.setDerived(mem.Stats[keys.inactiveFile], mem.Usage.Limit)
	if unified {
		m.Kernel = mem.Stats["kernel"]
	} else {
		m.Kernel = mem.KernelUsage.Usage
	}
	return s
}

// statsControllers are the controllers a Sample needs; reading the others
// (block I/O, hugetlb, ...) would only cost time.
var statsControllers = &cgroups.StatsOptions{Controllers: cgroups.CPU | cgroups.Memory | cgroups.Pids}

// readV1 reads every field of the v1 cgroup whose directories are paths,
// keyed by controller name, through the cgroups library.
func readV1(paths map[string]string) (Sample, error) {
	dir := paths["memory"]
	if dir == "" {
		dir = paths["cpuacct"]
	}
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) || dir == "" {
			return Sample{}, fmt.Errorf("cgroup %s: %w", dir, ErrNoCgroup)
		}
		return Sample{}, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	m, err := fs.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, paths)
	if err != nil {
		return Sample{}, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	st, err := m.Stats(statsControllers)
	if err != nil {
		return Sample{}, fmt.Errorf("read cgroup %s: %w", dir, noCgroupIfGone(err))
	}
	s := FromCgroupStats(st, false, time.Now())
	s.Tasks = readTasks(dir)
	s.OOMEvents = readKeyed(filepath.Join(paths["memory"], "memory.oom_control"), "oom_kill")
	return s, nil
}

// readV2 reads every field of the v2 cgroup directory dir, through the
// cgroups library.
func readV2(dir string) (Sample, error) {
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Sample{}, fmt.Errorf("cgroup %s: %w", dir, ErrNoCgroup)
		}
		return Sample{}, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	m, err := fs2.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, dir)
	if err != nil {
		return Sample{}, fmt.Errorf("cgroup %s: %w", dir, err)
	}
	st, err := m.Stats(statsControllers)
	if err != nil {
		return Sample{}, fmt.Errorf("read cgroup %s: %w", dir, noCgroupIfGone(err))
	}
	s := FromCgroupStats(st, true, time.Now())
	s.Tasks = readTasks(dir)
	s.OOMEvents = readKeyed(filepath.Join(dir, "memory.events"), "oom_kill")
	return s, nil
}

// noCgroupIfGone turns the error of a cgroup removed while it was being
// read into ErrNoCgroup: its container just exited.
func noCgroupIfGone(err error) error {
	if errors.Is(err, os.ErrNotExist) || strings.Contains(err.Error(), "no such file or directory") {
		return fmt.Errorf("%w: %v", ErrNoCgroup, err)
	}
	return err
}

// CgroupPath turns an OCI spec's linux.cgroupsPath into a path relative to
// the cgroup root(s): a cgroupfs path is used as is; a systemd
// "slice:prefix:name" names the scope <prefix>-<name>.scope in the slice's
// directory, as runc and crun create it.
func CgroupPath(cgroupsPath string) (string, error) {
	if strings.HasPrefix(cgroupsPath, "/") || !strings.Contains(cgroupsPath, ":") {
		return filepath.Clean("/" + cgroupsPath), nil
	}
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("cgroups path %q is neither a path nor slice:prefix:name: %w", cgroupsPath, errdefs.ErrInvalidArgument)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	dir, err := ExpandSlice(slice)
	if err != nil {
		return "", err
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		unit = prefix + "-" + name + ".scope"
	}
	return filepath.Join(dir, unit), nil
}

// ExpandSlice turns a systemd slice name into its cgroup directory:
// "kubepods-burstable-pod1.slice" is
// "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice".
func ExpandSlice(slice string) (string, error) {
	name, ok := strings.CutSuffix(slice, ".slice")
	if !ok || name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("%q is not a systemd slice: %w", slice, errdefs.ErrInvalidArgument)
	}
	if name == "-" {
		return "/", nil
	}
	var path, prefix string
	for _, part := range strings.Split(name, "-") {
		if part == "" {
			return "", fmt.Errorf("%q is not a systemd slice: %w", slice, errdefs.ErrInvalidArgument)
		}
		prefix += part
		path += "/" + prefix + ".slice"
		prefix += "-"
	}
	return path, nil
}

// SpecCgroupPath reads linux.cgroupsPath from the OCI bundle's config.json
// and resolves it with CgroupPath.
func SpecCgroupPath(bundle string) (string, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return "", fmt.Errorf("read runtime spec in %s: %w", bundle, err)
	}
	var spec struct {
		Linux struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(b, &spec); err != nil {
		return "", fmt.Errorf("parse runtime spec in %s: %w", bundle, err)
	}
	if spec.Linux.CgroupsPath == "" {
		return "", fmt.Errorf("runtime spec in %s names no cgroup: %w", bundle, errdefs.ErrNotFound)
	}
	return CgroupPath(spec.Linux.CgroupsPath)
}
