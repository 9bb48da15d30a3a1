package specgen

import (
	"fmt"
	"regexp"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// minMemoryLimit is CRI-O's floor: below it a container cannot even start.
const minMemoryLimit = 12 * 1024 * 1024

var (
	cpusetRE   = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$`)
	pageSizeRE = regexp.MustCompile(`^[0-9]+[KMGTP]?B$`)
)

// setResources maps the CRI resources, oom_score_adj and the daemon's
// pids limit onto the spec.
func (g *gen) setResources() error {
	const f = "config.linux.resources."
	r := g.cfg.GetLinux().GetResources()
	lr, err := resources(f, r, g.in.PidsLimit, g.host)
	if err != nil {
		return err
	}
	lr.Devices = g.spec.Linux.Resources.Devices
	g.spec.Linux.Resources = lr
	if r == nil {
		return nil
	}
	if v := r.GetOomScoreAdj(); v < -1000 || v > 1000 {
		return invalidf(f+"oom_score_adj", "%d is outside [-1000, 1000]", v)
	}
	adj := int(r.GetOomScoreAdj())
	// Without CAP_SYS_RESOURCE the kernel refuses a score below the
	// daemon's own (a rootless daemon): clamp, as containerd's
	// restrict_oom_score_adj does. A root daemon gives kubelet's -997.
	if !g.host.sysResource && adj < g.host.oomAdj {
		adj = g.host.oomAdj
	}
	g.spec.Process.OOMScoreAdj = &adj
	return nil
}

// Resources converts the resources of an UpdateContainerResources request
// for `<runtime> update --resources` on host (ProbeHost). oom_score_adj is
// not among them: it belongs to the process, not the cgroup, and is left as
// it is.
func Resources(r *runtime.LinuxContainerResources, pidsLimit int64, host *Host) (*specs.LinuxResources, error) {
	if host == nil {
		return nil, invalidf("host", "missing")
	}
	return resources("", r, pidsLimit, host)
}

// resources maps CPU, memory, swap, hugepages and unified; f prefixes the
// field names in errors.
func resources(f string, r *runtime.LinuxContainerResources, pidsLimit int64, host *Host) (*specs.LinuxResources, error) {
	lr := &specs.LinuxResources{}
	if pidsLimit > 0 {
		lr.Pids = &specs.LinuxPids{Limit: &pidsLimit}
	}
	if r == nil {
		return lr, nil
	}
	cpu, err := cpuResources(f, r)
	if err != nil {
		return nil, err
	}
	lr.CPU = cpu
	if lr.Memory, err = memory(f, r.GetMemoryLimitInBytes(), r.GetMemorySwapLimitInBytes(), host.swap); err != nil {
		return nil, err
	}
	for i, h := range r.GetHugepageLimits() {
		field := fmt.Sprintf("%shugepage_limits[%d].page_size", f, i)
		if !pageSizeRE.MatchString(h.GetPageSize()) {
			return nil, invalidf(field, "%q is not a page size such as 2MB", h.GetPageSize())
		}
		if !host.hugepages[h.GetPageSize()] {
			return nil, preconditionf(field, "this host has no %s huge pages", h.GetPageSize())
		}
		lr.HugepageLimits = append(lr.HugepageLimits, specs.LinuxHugepageLimit{Pagesize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	if u := r.GetUnified(); len(u) > 0 {
		if !host.cgroup2 {
			return nil, preconditionf(f+"unified", "needs cgroup v2, this host runs cgroup v1")
		}
		lr.Unified = map[string]string{}
		for k, v := range u {
			if k == "" || strings.ContainsAny(k, "/\x00") || strings.HasPrefix(k, ".") {
				return nil, invalidf(f+"unified", "%q is not a cgroup file name", k)
			}
			lr.Unified[k] = v
		}
	}
	return lr, nil
}

// cpuResources maps shares, quota, period and cpusets; nil when none is set.
func cpuResources(f string, r *runtime.LinuxContainerResources) (*specs.LinuxCPU, error) {
	cpu := &specs.LinuxCPU{}
	set := false
	if v := r.GetCpuShares(); v != 0 {
		if v < 0 {
			return nil, invalidf(f+"cpu_shares", "negative")
		}
		u := uint64(v)
		cpu.Shares, set = &u, true
	}
	if v := r.GetCpuQuota(); v != 0 {
		if v < -1 {
			return nil, invalidf(f+"cpu_quota", "%d is below -1", v)
		}
		cpu.Quota, set = &v, true
	}
	if v := r.GetCpuPeriod(); v != 0 {
		if v < 0 {
			return nil, invalidf(f+"cpu_period", "negative")
		}
		u := uint64(v)
		cpu.Period, set = &u, true
	}
	for _, c := range []struct {
		name, v string
		dst     *string
	}{{"cpuset_cpus", r.GetCpusetCpus(), &cpu.Cpus}, {"cpuset_mems", r.GetCpusetMems(), &cpu.Mems}} {
		if c.v == "" {
			continue
		}
		if !cpusetRE.MatchString(c.v) {
			return nil, invalidf(f+c.name, "%q is not a cpu list", c.v)
		}
		*c.dst, set = c.v, true
	}
	if !set {
		return nil, nil
	}
	return cpu, nil
}

// memory maps the memory limit and, where the kernel accounts swap, the
// memory+swap limit (CRI-O likewise skips swap on hosts without it).
func memory(f string, limit, swap int64, hostSwap bool) (*specs.LinuxMemory, error) {
	if limit < 0 {
		return nil, invalidf(f+"memory_limit_in_bytes", "negative")
	}
	if limit == 0 {
		return nil, nil
	}
	if limit < minMemoryLimit {
		return nil, invalidf(f+"memory_limit_in_bytes", "%d is too low, the minimum is %d", limit, minMemoryLimit)
	}
	mem := &specs.LinuxMemory{Limit: &limit}
	switch {
	case swap == 0:
	case swap < -1:
		return nil, invalidf(f+"memory_swap_limit_in_bytes", "%d is below -1", swap)
	case swap > 0 && swap < limit:
		return nil, invalidf(f+"memory_swap_limit_in_bytes", "%d is below the memory limit %d", swap, limit)
	case hostSwap:
		mem.Swap = &swap
	}
	return mem, nil
}
