package stats

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/berth-dev/berth/errdefs"
)

// The fixtures under testdata are cgroup directories as the kernel lays
// them out (v1: one directory per controller; v2: one directory), read
// through the cgroups library's own v1 and v2 managers.
func TestCgroupStatMapping(t *testing.T) {
	cgroups.TestMode = true // the fixtures are not on a cgroup filesystem
	t.Cleanup(func() { cgroups.TestMode = false })
	v1 := func(dir string, controllers ...string) func() (Sample, error) {
		return func() (Sample, error) {
			paths := map[string]string{}
			for _, c := range controllers {
				paths[c] = filepath.Join("testdata", dir, c)
			}
			return readV1(paths)
		}
	}
	v2 := func(dir string) func() (Sample, error) {
		return func() (Sample, error) { return readV2(filepath.Join("testdata", dir)) }
	}
	for _, tc := range []struct {
		name          string
		read          func() (Sample, error)
		cpu           CPU
		mem           Memory
		available     uint64
		limited       bool
		procs, pidMax uint64
	}{
		{
			name: "v1 hierarchical with a limit",
			read: v1("cgroupv1", "cpu", "cpuacct", "memory", "pids"),
			cpu: CPU{UsageNanos: 2_500_000_000, UserNanos: 1_500_000_000, SystemNanos: 500_000_000,
				Periods: 120, ThrottledPeriods: 7, ThrottledNanos: 350_000_000},
			mem: Memory{Usage: 30 << 20, WorkingSet: 14 << 20, RSS: 10 << 20, Cache: 20 << 20, MappedFile: 1 << 20,
				MaxUsage: 40 << 20, Failcnt: 3, PageFaults: 5000, MajorPageFaults: 12, Limit: 64 << 20},
			available: 50 << 20, limited: true,
			procs: 4,
		},
		{
			name: "v1 flat, unlimited, inactive cache above usage",
			read: v1("cgroupv1-unlimited", "cpuacct", "memory"),
			cpu:  CPU{UsageNanos: 1000, UserNanos: 10_000_000, SystemNanos: 10_000_000},
			mem: Memory{Usage: 12288, WorkingSet: 0, RSS: 4096, Cache: 8192, MaxUsage: 12288,
				PageFaults: 9, MajorPageFaults: 2},
		},
		{
			name: "v2 with limits",
			read: v2("cgroupv2/limited"),
			cpu: CPU{UsageNanos: 3_000_000_000, UserNanos: 2_000_000_000, SystemNanos: 1_000_000_000,
				Periods: 40, ThrottledPeriods: 2, ThrottledNanos: 150_000_000},
			mem: Memory{Usage: 15 << 20, WorkingSet: 10 << 20, RSS: 6 << 20, Cache: 8 << 20, MappedFile: 2 << 20,
				Swap: 65536, MaxUsage: 16 << 20, PageFaults: 7000, MajorPageFaults: 30, Limit: 32 << 20, Kernel: 262144},
			available: 22 << 20, limited: true,
			procs: 3, pidMax: 100,
		},
		{
			name: "v2 unlimited",
			read: v2("cgroupv2/unlimited"),
			cpu: CPU{UsageNanos: 3_000_000_000, UserNanos: 2_000_000_000, SystemNanos: 1_000_000_000,
				Periods: 40, ThrottledPeriods: 2, ThrottledNanos: 150_000_000},
			mem: Memory{Usage: 15 << 20, WorkingSet: 10 << 20, RSS: 6 << 20, Cache: 8 << 20, MappedFile: 2 << 20,
				Swap: 65536, MaxUsage: 16 << 20, PageFaults: 7000, MajorPageFaults: 30, Kernel: 262144},
			procs: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := tc.read()
			if err != nil {
				t.Fatal(err)
			}
			if s.CPU != tc.cpu {
				t.Errorf("cpu = %+v\nwant  %+v", s.CPU, tc.cpu)
			}
			if s.Memory != tc.mem {
				t.Errorf("memory = %+v\nwant     %+v", s.Memory, tc.mem)
			}
			if avail, limited := s.Memory.Available(); avail != tc.available || limited != tc.limited {
				t.Errorf("available = %d, %v; want %d, %v", avail, limited, tc.available, tc.limited)
			}
			if s.Processes != tc.procs || s.ProcessLimit != tc.pidMax {
				t.Errorf("processes = %d of %d, want %d of %d", s.Processes, s.ProcessLimit, tc.procs, tc.pidMax)
			}
			if s.Time.IsZero() {
				t.Error("sample has no time")
			}
		})
	}
}

// The CRI stats' reader reads a few files itself: on every fixture, what
// it fills is what the cgroups library reads, field for field, and the
// fields it leaves out are zero.
func TestCgroupUsageMatchesLibrary(t *testing.T) {
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	for _, always := range []bool{false, true} {
		t.Run(fmt.Sprintf("use_hierarchy always 1: %v", always), func(t *testing.T) {
			saved := v1AlwaysHierarchical
			v1AlwaysHierarchical = func() bool { return always }
			t.Cleanup(func() { v1AlwaysHierarchical = saved })
			for _, tc := range []struct {
				name        string
				full, usage func(Fields) (Sample, error)
				flat        bool // memory.use_hierarchy is 0
			}{
				{
					name: "v1 hierarchical",
					full: func(Fields) (Sample, error) {
						return readV1(map[string]string{"cpu": "testdata/cgroupv1/cpu", "cpuacct": "testdata/cgroupv1/cpuacct", "memory": "testdata/cgroupv1/memory", "pids": "testdata/cgroupv1/pids"})
					},
					usage: func(f Fields) (Sample, error) {
						return readV1Usage(v1Dirs{cpuacct: "testdata/cgroupv1/cpuacct", memory: "testdata/cgroupv1/memory", pids: "testdata/cgroupv1/pids"}, f, oneShot())
					},
				},
				{
					name: "v1 flat without pids",
					full: func(Fields) (Sample, error) {
						return readV1(map[string]string{"cpuacct": "testdata/cgroupv1-unlimited/cpuacct", "memory": "testdata/cgroupv1-unlimited/memory"})
					},
					usage: func(f Fields) (Sample, error) {
						return readV1Usage(v1Dirs{cpuacct: "testdata/cgroupv1-unlimited/cpuacct", memory: "testdata/cgroupv1-unlimited/memory"}, f, oneShot())
					},
					flat: true,
				},
				{
					name:  "v2 limited",
					full:  func(Fields) (Sample, error) { return readV2("testdata/cgroupv2/limited") },
					usage: func(f Fields) (Sample, error) { return readV2Usage("testdata/cgroupv2/limited", f, oneShot()) },
				},
				{
					name:  "v2 unlimited",
					full:  func(Fields) (Sample, error) { return readV2("testdata/cgroupv2/unlimited") },
					usage: func(f Fields) (Sample, error) { return readV2Usage("testdata/cgroupv2/unlimited", f, oneShot()) },
				},
			} {
				t.Run(tc.name, func(t *testing.T) {
					full, err := tc.full(AllFields)
					if err != nil {
						t.Fatal(err)
					}
					want := Sample{CPU: CPU{UsageNanos: full.CPU.UsageNanos}, Processes: full.Processes}
					m, fm := &want.Memory, full.Memory
					m.Usage, m.WorkingSet, m.RSS, m.Cache, m.MappedFile, m.Swap = fm.Usage, fm.WorkingSet, fm.RSS, fm.Cache, fm.MappedFile, fm.Swap
					m.PageFaults, m.MajorPageFaults, m.Limit = fm.PageFaults, fm.MajorPageFaults, fm.Limit
					if strings.HasPrefix(tc.name, "v2") {
						m.Kernel = fm.Kernel
					}
					got, err := tc.usage(CPUMemory | ProcessCount)
					if err != nil {
						t.Fatal(err)
					}
					if got.Time.IsZero() {
						t.Error("sample has no time")
					}
					got.Time = time.Time{}
					if always && tc.flat {
						// A kernel that has only hierarchical
						// cgroups has no flat fixture: the
						// reader takes the total_* keys, which
						// this fixture lacks.
						return
					}
					if got != want {
						t.Errorf("usage read  %+v\nlibrary's   %+v", got, want)
					}
					noProcs, err := tc.usage(CPUMemory)
					if err != nil {
						t.Fatal(err)
					}
					if noProcs.Processes != 0 || noProcs.Memory != want.Memory {
						t.Errorf("without ProcessCount: %+v", noProcs)
					}
				})
			}
		})
	}
}

// oneShot reads files without holding them.
func oneShot() *fileSet { return newFileSet(&CgroupReader{}, nil) }

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"6.18.0-1-amd64", true}, {"5.11.0", true}, {"5.10.209-1", false}, {"4.19.0", false}, {"10.0", true}, {"weird", false},
	} {
		if got := kernelAtLeast(tc.release, 5, 11); got != tc.want {
			t.Errorf("kernelAtLeast(%q, 5.11) = %v, want %v", tc.release, got, tc.want)
		}
	}
}

func TestReadMissingCgroup(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		read func() (Sample, error)
	}{
		{"v1", func() (Sample, error) { return readV1(map[string]string{"memory": filepath.Join(dir, "gone")}) }},
		{"v2", func() (Sample, error) { return readV2(filepath.Join(dir, "gone")) }},
		{"v1 usage", func() (Sample, error) {
			return readV1Usage(v1Dirs{cpuacct: filepath.Join(dir, "gone"), memory: filepath.Join(dir, "gone")}, CPUMemory, oneShot())
		}},
		{"v1 usage without controllers", func() (Sample, error) { return readV1Usage(v1Dirs{}, CPUMemory, oneShot()) }},
		{"v2 usage", func() (Sample, error) {
			return readV2Usage(filepath.Join(dir, "gone"), CPUMemory|ProcessCount, oneShot())
		}},
		{"host held", func() (Sample, error) { return NewCgroupReader().Read("/berth-test-no-such-cgroup/berth-0", CPUMemory) }},
		{"host everything", func() (Sample, error) { return ReadCgroup("/berth-test-no-such-cgroup/berth-0", AllFields) }},
		{"host", func() (Sample, error) { return ReadCgroup("/berth-test-no-such-cgroup/berth-0", CPUMemory) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat("/sys/fs/cgroup"); strings.HasPrefix(tc.name, "host") && err != nil {
				t.Skip("no cgroup filesystem")
			}
			_, err := tc.read()
			if !errors.Is(err, ErrNoCgroup) || !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("err = %v, want ErrNoCgroup", err)
			}
		})
	}
}

func TestSampleAdd(t *testing.T) {
	a := Sample{CPU: CPU{UsageNanos: 10}, Memory: Memory{Usage: 100, WorkingSet: 50, RSS: 5, Limit: 1000}, Processes: 1, ProcessLimit: 9}
	b := Sample{CPU: CPU{UsageNanos: 5}, Memory: Memory{Usage: 10, WorkingSet: 5, RSS: 1, Limit: 2000}, Processes: 2}
	a.Add(b)
	if a.CPU.UsageNanos != 15 || a.Memory.Usage != 110 || a.Memory.WorkingSet != 55 || a.Memory.RSS != 6 || a.Processes != 3 {
		t.Errorf("sum = %+v", a)
	}
	if _, limited := a.Memory.Available(); limited || a.ProcessLimit != 0 {
		t.Errorf("a sum has limits: %+v", a)
	}
}

func TestCgroupPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		bad      bool
	}{
		{in: "/berth/berth-abc", want: "/berth/berth-abc"},
		{in: "/kubepods/burstable/pod1/berth-abc", want: "/kubepods/burstable/pod1/berth-abc"},
		{in: "berth/x", want: "/berth/x"},
		{in: "system.slice:berth:abc", want: "/system.slice/berth-abc.scope"},
		{in: "kubepods-burstable-pod1.slice:berth:abc", want: "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/berth-abc.scope"},
		{in: ":berth:abc", want: "/system.slice/berth-abc.scope"},
		{in: "a:b", bad: true},
		{in: "notaslice:berth:abc", bad: true},
		{in: "a--b.slice:berth:abc", bad: true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := CgroupPath(tc.in)
			if tc.bad {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Errorf("CgroupPath(%q) = %q, %v; want InvalidArgument", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("CgroupPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestSpecCgroupPath(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"linux":{"cgroupsPath":"/berth/berth-1"}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c := NewCgroupPaths()
	if got, err := c.Get("1", dir); err != nil || got != "/berth/berth-1" {
		t.Errorf("Get = %q, %v", got, err)
	}
	os.Remove(filepath.Join(dir, "config.json"))
	if got, err := c.Get("1", dir); err != nil || got != "/berth/berth-1" {
		t.Errorf("cached Get = %q, %v", got, err)
	}
	c.Forget("1")
	if _, err := c.Get("1", dir); err == nil {
		t.Error("Get after Forget with no spec succeeded")
	}
}
