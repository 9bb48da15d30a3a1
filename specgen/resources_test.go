package specgen

import (
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

func TestResources(t *testing.T) {
	u64 := func(v uint64) *uint64 { return &v }
	i64 := func(v int64) *int64 { return &v }
	const mib = 1 << 20
	for _, tc := range []struct {
		name      string
		r         *runtime.LinuxContainerResources
		pids      int64
		host      func(*Host)
		check     func(t *testing.T, s *specs.Spec)
		errField  string
		errSentry error
	}{
		{name: "cpu", r: &runtime.LinuxContainerResources{CpuShares: 512, CpuQuota: 50000, CpuPeriod: 100000, CpusetCpus: "0-1,3", CpusetMems: "0"},
			check: func(t *testing.T, s *specs.Spec) {
				want := &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0-1,3", Mems: "0"}
				if !reflect.DeepEqual(s.Linux.Resources.CPU, want) {
					t.Fatalf("cpu %+v", s.Linux.Resources.CPU)
				}
			}},
		{name: "memory and swap", r: &runtime.LinuxContainerResources{MemoryLimitInBytes: 64 * mib, MemorySwapLimitInBytes: 128 * mib},
			check: func(t *testing.T, s *specs.Spec) {
				m := s.Linux.Resources.Memory
				if *m.Limit != 64*mib || m.Swap == nil || *m.Swap != 128*mib {
					t.Fatalf("memory %+v", m)
				}
			}},
		{name: "swap skipped without accounting", host: func(h *Host) { h.swap = false },
			r: &runtime.LinuxContainerResources{MemoryLimitInBytes: 64 * mib, MemorySwapLimitInBytes: 64 * mib},
			check: func(t *testing.T, s *specs.Spec) {
				if m := s.Linux.Resources.Memory; *m.Limit != 64*mib || m.Swap != nil {
					t.Fatalf("memory %+v", m)
				}
			}},
		{name: "memory too low", r: &runtime.LinuxContainerResources{MemoryLimitInBytes: mib},
			errField: "config.linux.resources.memory_limit_in_bytes", errSentry: errdefs.ErrInvalidArgument},
		{name: "swap below memory", r: &runtime.LinuxContainerResources{MemoryLimitInBytes: 64 * mib, MemorySwapLimitInBytes: 32 * mib},
			errField: "memory_swap_limit_in_bytes", errSentry: errdefs.ErrInvalidArgument},
		{name: "bad cpuset", r: &runtime.LinuxContainerResources{CpusetCpus: "0-a"}, errField: "cpuset_cpus", errSentry: errdefs.ErrInvalidArgument},
		{name: "hugepages", r: &runtime.LinuxContainerResources{HugepageLimits: []*runtime.HugepageLimit{{PageSize: "2MB", Limit: 4 * mib}}},
			check: func(t *testing.T, s *specs.Spec) {
				if want := []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 * mib}}; !reflect.DeepEqual(s.Linux.Resources.HugepageLimits, want) {
					t.Fatalf("hugepages %+v", s.Linux.Resources.HugepageLimits)
				}
			}},
		{name: "hugepages unknown size", r: &runtime.LinuxContainerResources{HugepageLimits: []*runtime.HugepageLimit{{PageSize: "16MB"}}},
			errField: "hugepage_limits[0].page_size", errSentry: errdefs.ErrFailedPrecondition},
		{name: "hugepages bad size", r: &runtime.LinuxContainerResources{HugepageLimits: []*runtime.HugepageLimit{{PageSize: "huge"}}},
			errField: "hugepage_limits[0].page_size", errSentry: errdefs.ErrInvalidArgument},
		{name: "pids", pids: 1024, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Resources.Pids == nil || *s.Linux.Resources.Pids.Limit != 1024 {
				t.Fatalf("pids %+v", s.Linux.Resources.Pids)
			}
		}},
		{name: "pids unlimited", pids: -1, check: func(t *testing.T, s *specs.Spec) {
			if s.Linux.Resources.Pids != nil {
				t.Fatalf("pids %+v", s.Linux.Resources.Pids)
			}
		}},
		{name: "oom score adj below a root daemon's", r: &runtime.LinuxContainerResources{OomScoreAdj: -997},
			host: func(h *Host) { h.sysResource, h.oomAdj = true, -500 }, check: oomIs(-997)},
		{name: "oom score adj clamped without CAP_SYS_RESOURCE", r: &runtime.LinuxContainerResources{OomScoreAdj: -997},
			host: func(h *Host) { h.oomAdj = -500 }, check: oomIs(-500)},
		{name: "oom score adj above daemon", r: &runtime.LinuxContainerResources{OomScoreAdj: 1000}, check: oomIs(1000)},
		{name: "oom score adj out of range", r: &runtime.LinuxContainerResources{OomScoreAdj: 1001}, errField: "oom_score_adj", errSentry: errdefs.ErrInvalidArgument},
		{name: "unified on v1", r: &runtime.LinuxContainerResources{Unified: map[string]string{"memory.high": "1G"}},
			errField: "config.linux.resources.unified", errSentry: errdefs.ErrFailedPrecondition},
		{name: "unified on v2", host: func(h *Host) { h.cgroup2 = true }, r: &runtime.LinuxContainerResources{Unified: map[string]string{"memory.high": "1G"}},
			check: func(t *testing.T, s *specs.Spec) {
				if s.Linux.Resources.Unified["memory.high"] != "1G" {
					t.Fatalf("unified %v", s.Linux.Resources.Unified)
				}
			}},
		{name: "unified escaping key", host: func(h *Host) { h.cgroup2 = true }, r: &runtime.LinuxContainerResources{Unified: map[string]string{"../x": "1"}},
			errField: "unified", errSentry: errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			in.Host = fakeHost(tc.host)
			in.Config.Linux.Resources = tc.r
			in.PidsLimit = tc.pids
			res, err := Generate(in)
			if tc.errField != "" {
				wantErr(t, err, tc.errSentry, tc.errField)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, res.Spec)
		})
	}
}

func oomIs(v int) func(*testing.T, *specs.Spec) {
	return func(t *testing.T, s *specs.Spec) {
		t.Helper()
		if s.Process.OOMScoreAdj == nil || *s.Process.OOMScoreAdj != v {
			t.Fatalf("oomScoreAdj %v, want %d", s.Process.OOMScoreAdj, v)
		}
	}
}

// Resources serves UpdateContainerResources: the same mapping, without
// oom_score_adj (a process property) or device rules.
func TestUpdateResources(t *testing.T) {
	lr, err := Resources(&runtime.LinuxContainerResources{CpuQuota: 20000, MemoryLimitInBytes: 32 << 20, OomScoreAdj: 5}, 512, fakeHost(nil))
	if err != nil {
		t.Fatal(err)
	}
	if *lr.CPU.Quota != 20000 || *lr.Memory.Limit != 32<<20 || *lr.Pids.Limit != 512 || lr.Devices != nil {
		t.Fatalf("resources %+v", lr)
	}
	_, err = Resources(&runtime.LinuxContainerResources{CpuShares: -1}, 0, fakeHost(nil))
	wantErr(t, err, errdefs.ErrInvalidArgument, "cpu_shares")
	noHugepages := fakeHost(func(h *Host) { h.hugepages = nil })
	_, err = Resources(&runtime.LinuxContainerResources{HugepageLimits: []*runtime.HugepageLimit{{PageSize: "2MB", Limit: 1 << 21}}}, 0, noHugepages)
	wantErr(t, err, errdefs.ErrFailedPrecondition, "hugepage_limits[0].page_size")
}
