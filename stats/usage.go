package stats

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"golang.org/x/sys/unix"
)

// The CRI stats (ListContainerStats, ListPodSandboxStats) report a few of a
// cgroup's counters, so ReadCgroup reads them from the few files that hold
// them, as CRI-O and containerd do: on cgroup v1 cpuacct.usage,
// memory.usage_in_bytes, memory.limit_in_bytes, memory.stat (and
// pids.current for a process count); on v2 cpu.stat, memory.current,
// memory.max, memory.swap.current, memory.stat (and pids.current). The
// cgroups library's Stat reads some twenty files for memory alone, and
// opening a cgroup file costs several microseconds; with 500 containers
// that is the difference between tens and hundreds of milliseconds.

// Fields chooses what ReadCgroup reads of a cgroup.
type Fields uint8

const (
	// CPUMemory is what the CRI stats report of CPU and memory: the CPU
	// time used and Memory's Usage, WorkingSet, RSS, Cache, MappedFile,
	// Swap, page faults and Limit (v2 adds Kernel, from memory.stat).
	CPUMemory Fields = 1 << iota
	// ProcessCount is Processes (pids.current).
	ProcessCount
	// AllFields is every field of a Sample, as the metrics report them:
	// read through the cgroups library, with the cgroup's processes'
	// threads, file descriptors and sockets counted.
	AllFields Fields = math.MaxUint8
)

// ReadCgroup reads what f asks of the cgroup at path, relative to the
// cgroup root(s) as in "/berth/berth-<id>" or
// "/system.slice/berth-<id>.scope": from the v2 hierarchy on a unified host
// and from the v1 controllers otherwise (a hybrid host keeps its
// controllers on v1). A cgroup that does not exist (or is removed while it
// is read) is ErrNoCgroup. It opens and closes every file it reads; a
// CgroupReader keeps them open.
func ReadCgroup(path string, f Fields) (Sample, error) {
	return (&CgroupReader{}).Read(path, f)
}

// readAllFields reads every field of the cgroup at path through the
// cgroups library.
func readAllFields(path string) (Sample, error) {
	path = filepath.Clean("/" + path)
	if cgroups.IsCgroup2UnifiedMode() {
		return readV2(filepath.Join(unifiedRoot, path))
	}
	roots, err := v1Roots()
	if err != nil {
		return Sample{}, fmt.Errorf("cgroup %s: %w", path, err)
	}
	paths := make(map[string]string, len(roots))
	for ctl, root := range roots {
		paths[ctl] = filepath.Join(root, path)
	}
	return readV1(paths)
}

// v1Roots are the root directories of the v1 controllers, by name, as the
// cgroups library finds them; read once, as mounts of cgroup hierarchies do
// not move under a running daemon.
var v1Roots = sync.OnceValues(func() (map[string]string, error) {
	m, err := fs.NewManager(&cgroups.Cgroup{
		Path: "/",
		// SkipDevices: a host without the v1 devices controller is no
		// reason to refuse reading the others.
		Resources: &cgroups.Resources{SkipDevices: true},
	}, nil)
	if err != nil {
		return nil, err
	}
	return m.GetPaths(), nil
})

// v1Dirs are one cgroup's directories in the v1 controllers it is read
// from; "" for a controller the host does not have.
type v1Dirs struct {
	cpuacct, memory, pids string
}

// readV1Usage reads what f asks of the v1 cgroup in dirs, through fs.
func readV1Usage(d v1Dirs, f Fields, fs *fileSet) (Sample, error) {
	if d.memory == "" && d.cpuacct == "" {
		return Sample{}, fmt.Errorf("cgroup: no memory or cpuacct controller: %w", ErrNoCgroup)
	}
	s := Sample{Time: time.Now()}
	var err error
	if d.memory != "" {
		keys := v1TotalKeys
		if !v1AlwaysHierarchical() {
			h, err := fs.readUint(fileUseHierarchy, d.memory, "memory.use_hierarchy")
			if err != nil {
				return Sample{}, err
			}
			if h != 1 {
				keys = v1Keys
			}
		}
		b, err := fs.read(fileMemoryStat, d.memory, "memory.stat")
		if err != nil {
			return Sample{}, err
		}
		var stat memoryStat
		if err = stat.parse(b, keys, false); err != nil {
			return Sample{}, fmt.Errorf("parse %s/memory.stat: %w", d.memory, err)
		}
		m := &s.Memory
		m.RSS, m.Cache, m.MappedFile, m.Swap = stat.rss, stat.cache, stat.mapped, stat.swap
		m.PageFaults, m.MajorPageFaults = stat.pgfault, stat.pgmajfault
		if m.Usage, err = fs.readUint(fileMemoryUsage, d.memory, "memory.usage_in_bytes"); err != nil {
			return Sample{}, err
		}
		limit, err := fs.readUint(fileMemoryLimit, d.memory, "memory.limit_in_bytes")
		if err != nil {
			return Sample{}, err
		}
		m.setDerived(stat.inactiveFile, limit)
	}
	if d.cpuacct != "" {
		if s.CPU.UsageNanos, err = fs.readUint(fileCPUUsage, d.cpuacct, "cpuacct.usage"); err != nil {
			return Sample{}, err
		}
	}
	if f&ProcessCount != 0 && d.pids != "" {
		// No pids controller means no count, as the cgroups library
		// reads v1.
		if s.Processes, err = fs.readUint(filePids, d.pids, "pids.current"); err != nil {
			return Sample{}, err
		}
	}
	return s, nil
}

// readV2Usage reads what f asks of the v2 cgroup directory dir, through fs.
func readV2Usage(dir string, f Fields, fs *fileSet) (Sample, error) {
	s := Sample{Time: time.Now()}
	b, err := fs.read(fileMemoryStat, dir, "memory.stat")
	if err != nil {
		return Sample{}, err
	}
	var stat memoryStat
	if err := stat.parse(b, v2Keys, true); err != nil {
		return Sample{}, fmt.Errorf("parse %s/memory.stat: %w", dir, err)
	}
	m := &s.Memory
	m.RSS, m.Cache, m.MappedFile, m.Kernel = stat.rss, stat.cache, stat.mapped, stat.kernel
	m.PageFaults, m.MajorPageFaults = stat.pgfault, stat.pgmajfault
	if m.Usage, err = fs.readUint(fileMemoryUsage, dir, "memory.current"); err != nil {
		return Sample{}, err
	}
	limit, err := fs.readUint(fileMemoryLimit, dir, "memory.max")
	if err != nil {
		return Sample{}, err
	}
	m.setDerived(stat.inactiveFile, limit)
	// No memory.swap.current: the kernel accounts no swap.
	if m.Swap, err = fs.readUint(fileMemorySwap, dir, "memory.swap.current"); err != nil && !errors.Is(err, errNoFile) {
		return Sample{}, err
	}
	if b, err = fs.read(fileCPUUsage, dir, "cpu.stat"); err != nil {
		return Sample{}, err
	}
	usec, ok := keyedValue(b, "usage_usec")
	if !ok {
		return Sample{}, fmt.Errorf("%s/cpu.stat has no usage_usec", dir)
	}
	s.CPU.UsageNanos = usec * 1000
	if f&ProcessCount != 0 {
		s.Processes, err = fs.readUint(filePids, dir, "pids.current")
		if errors.Is(err, errNoFile) {
			// The pids controller is not enabled here: count the
			// processes, as the cgroups library does.
			if b, err = fs.read(fileProcs, dir, "cgroup.procs"); err == nil {
				s.Processes = uint64(bytes.Count(b, []byte{'\n'}))
			}
		}
		if err != nil {
			return Sample{}, err
		}
	}
	return s, nil
}

// setDerived sets the working set (usage less the inactive file cache)
// and the limit (none when it is v1's or v2's "no limit").
func (m *Memory) setDerived(inactiveFile, limit uint64) {
	m.WorkingSet = 0
	if inactiveFile < m.Usage {
		m.WorkingSet = m.Usage - inactiveFile
	}
	m.Limit = 0
	if limit > 0 && limit < unlimited {
		m.Limit = limit
	}
}

// v1AlwaysHierarchical tells that the kernel keeps every v1 memory cgroup
// hierarchical: since Linux 5.11 memory.use_hierarchy always reads 1 (and
// refuses 0), so reading it for every cgroup would only cost time.
var v1AlwaysHierarchical = sync.OnceValue(func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 11)
})

// kernelAtLeast tells whether a release such as "6.1.0-18-amd64" is
// major.minor or later.
func kernelAtLeast(release string, major, minor int) bool {
	var maj, min int
	if n, _ := fmt.Sscanf(release, "%d.%d", &maj, &min); n != 2 {
		return false
	}
	return maj > major || maj == major && min >= minor
}

// memoryStat holds the memory.stat entries a Sample uses.
type memoryStat struct {
	rss, cache, mapped, swap, inactiveFile, pgfault, pgmajfault, kernel uint64
}

// parse reads b, a memory.stat, with keys; v2 also takes "kernel".
func (st *memoryStat) parse(b []byte, keys memoryStatKeys, v2 bool) error {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		k, v, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			return fmt.Errorf("line %q is not \"key value\"", line)
		}
		var dst *uint64
		switch string(k) {
		case keys.rss:
			dst = &st.rss
		case keys.cache:
			dst = &st.cache
		case keys.mapped:
			dst = &st.mapped
		case keys.swap:
			dst = &st.swap
		case keys.inactiveFile:
			dst = &st.inactiveFile
		case keys.pgfault:
			dst = &st.pgfault
		case keys.pgmajfault:
			dst = &st.pgmajfault
		case "kernel":
			if v2 {
				dst = &st.kernel
			}
		}
		if dst == nil {
			continue
		}
		n, err := parseUint(v)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		*dst = n
	}
	return nil
}

// keyedValue finds key's value in a "key value" per line file.
func keyedValue(b []byte, key string) (uint64, bool) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if k, v, ok := bytes.Cut(line, []byte{' '}); ok && string(k) == key {
			n, err := parseUint(v)
			return n, err == nil
		}
	}
	return 0, false
}

// parseUint reads a cgroup file's number as the cgroups library does:
// "max" is MaxUint64 and a negative number 0.
func parseUint(b []byte) (uint64, error) {
	b = bytes.TrimSpace(b)
	if string(b) == "max" {
		return math.MaxUint64, nil
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		if i, ierr := strconv.ParseInt(string(b), 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, err
	}
	return n, nil
}

// errNoFile is a cgroup file that does not exist.
var errNoFile = errors.New("no such file")

func readError(path string, err error) error {
	if err == unix.ENOENT || err == unix.ENODEV {
		return fmt.Errorf("cgroup file %s: %w: %w", path, errNoFile, ErrNoCgroup)
	}
	return fmt.Errorf("read %s: %w", path, err)
}
