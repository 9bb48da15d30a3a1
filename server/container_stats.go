package server

import (
	"context"
	"errors"
	goruntime "runtime"
	"sync"
	"sync/atomic"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/stats"
)

// statsState is what stats keep between calls: each container's and pod's
// previous CPU sample (for usage_nano_cores), containers' cgroup paths and
// their recent writable layer usages. Entries of removed objects expire on
// their own.
type statsState struct {
	cpuRates    *stats.Rates
	layerUsages *stats.LayerCache
	cgroupPaths *stats.CgroupPaths
	// cgroups keeps the cgroup files readCgroup reads open.
	cgroups *stats.CgroupReader

	// readCgroup reads the fields asked for of a cgroup by its path under
	// the cgroup root(s), and readNetNS the interface counters of the
	// network namespace pinned at a path, through one of the pids if one
	// is in it: cgroups.Read and stats.ReadNetNSOf, the stats' only reads
	// of the host. Unit tests stand
	// in for them: cgroup files exist only on a cgroup filesystem, and
	// joining a network namespace takes CAP_SYS_ADMIN.
	readCgroup func(path string, f stats.Fields) (stats.Sample, error)
	readNetNS  func(path string, pids []int) ([]stats.Interface, error)
}

func newStatsState() *statsState {
	cgroups := stats.NewCgroupReader()
	return &statsState{
		cpuRates:    stats.NewRates(),
		layerUsages: stats.NewLayerCache(stats.LayerTTL, stats.LayerMaxAge),
		cgroupPaths: stats.NewCgroupPaths(),
		cgroups:     cgroups,
		readCgroup:  cgroups.Read,
		readNetNS:   stats.ReadNetNSOf,
	}
}

// ContainerStats reports one container's CPU, memory and writable layer.
func (s *Server) ContainerStats(ctx context.Context, req *runtime.ContainerStatsRequest) (*runtime.ContainerStatsResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	return &runtime.ContainerStatsResponse{Stats: s.criContainerStats(c, s.sampleContainer(c, stats.CPUMemory))}, nil
}

// ListContainerStats reports the stats of the containers that match the
// filter: id (or prefix), pod id (or prefix) and label selector.
func (s *Server) ListContainerStats(ctx context.Context, req *runtime.ListContainerStatsRequest) (*runtime.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	var ctrs []*container.Container
	for _, c := range s.containers.List() {
		switch {
		case f.GetId() != "" && !hasIDPrefix(c.ID, f.GetId()):
			continue
		case f.GetPodSandboxId() != "" && !hasIDPrefix(c.PodID, f.GetPodSandboxId()):
			continue
		case !matchLabels(c.Config.GetLabels(), f.GetLabelSelector()):
			continue
		}
		ctrs = append(ctrs, c)
	}
	resp := &runtime.ListContainerStatsResponse{Stats: make([]*runtime.ContainerStats, len(ctrs))}
	if err := forEachParallel(ctx, len(ctrs), func(i int) {
		resp.Stats[i] = s.criContainerStats(ctrs[i], s.sampleContainer(ctrs[i], stats.CPUMemory))
	}); err != nil {
		return nil, err
	}
	return resp, nil
}

// forEachParallel calls fn for 0 to n-1, on as many goroutines as there
// are CPUs: a stats read is mostly system calls, which run in parallel.
// It stops at ctx's end and then returns its error.
func forEachParallel(ctx context.Context, n int, fn func(i int)) error {
	if n == 0 {
		return nil
	}
	var next atomic.Int64
	work := func() {
		for ctx.Err() == nil {
			i := int(next.Add(1)) - 1
			if i >= n {
				return
			}
			fn(i)
		}
	}
	var wg sync.WaitGroup
	for range min(goruntime.GOMAXPROCS(0), n) - 1 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
	return ctx.Err()
}

// ctrSample is one reading of a container; a part that could not be read
// is nil and left out of the answer.
type ctrSample struct {
	cgroup    *stats.Sample
	nanoCores *uint64
	layer     *stats.LayerUsage
}

// sampleContainer reads the fields f of c's cgroup (unless it exited: its
// cgroup is gone or about to be, and its files held open are closed) and
// its writable layer.
func (s *Server) sampleContainer(c *container.Container, f stats.Fields) ctrSample {
	var out ctrSample
	if c.State() != container.StateExited {
		if out.cgroup = s.sampleCgroup(c.ID, c.Bundle, f); out.cgroup != nil {
			out.nanoCores = s.rateOf(c.ID, out.cgroup)
		}
	} else if path, ok := s.stats.cgroupPaths.Lookup(c.ID); ok {
		s.stats.cgroups.Forget(path)
	}
	u, err := s.stats.layerUsages.Get(c.ID, func() (stats.LayerUsage, error) {
		return stats.WritableLayerUsage(s.rootfs, c.ID)
	})
	if err != nil {
		s.log.Debug("no writable layer usage", "container", c.ID, "error", err)
	} else {
		out.layer = &u
	}
	return out
}

// sampleCgroup reads the fields f of the cgroup of the runtime container
// id whose bundle is bundle; nil when it has none (any more).
func (s *Server) sampleCgroup(id, bundle string, f stats.Fields) *stats.Sample {
	path, err := s.stats.cgroupPaths.Get(id, bundle)
	if err != nil {
		s.log.Debug("no cgroup path", "container", id, "error", err)
		return nil
	}
	smp, err := s.stats.readCgroup(path, f)
	if err != nil {
		if !errors.Is(err, errdefs.ErrNotFound) {
			s.log.Debug("read container cgroup", "container", id, "cgroup", path, "error", err)
		}
		return nil
	}
	return &smp
}

// rateOf updates key's CPU sample and returns its usage rate, nil for the
// first sample: the kubelet then computes one itself.
func (s *Server) rateOf(key string, smp *stats.Sample) *uint64 {
	r, ok := s.stats.cpuRates.Update(key, smp.CPU.UsageNanos, smp.Time)
	if !ok {
		return nil
	}
	return &r
}

func (s *Server) criContainerStats(c *container.Container, smp ctrSample) *runtime.ContainerStats {
	st := &runtime.ContainerStats{
		Attributes: &runtime.ContainerAttributes{
			Id:          c.ID,
			Metadata:    c.Config.GetMetadata(),
			Labels:      c.Config.GetLabels(),
			Annotations: c.Config.GetAnnotations(),
		},
	}
	if cg := smp.cgroup; cg != nil {
		st.Cpu = criCPU(cg, smp.nanoCores)
		st.Memory = criMemory(cg)
		st.Swap = &runtime.SwapUsage{
			Timestamp:      cg.Time.UnixNano(),
			SwapUsageBytes: &runtime.UInt64Value{Value: cg.Memory.Swap},
		}
	}
	if l := smp.layer; l != nil {
		st.WritableLayer = &runtime.FilesystemUsage{
			Timestamp:  l.Time.UnixNano(),
			FsId:       &runtime.FilesystemIdentifier{Mountpoint: s.rootfs.LayersDir()},
			UsedBytes:  &runtime.UInt64Value{Value: l.Bytes},
			InodesUsed: &runtime.UInt64Value{Value: l.Inodes},
		}
	}
	return st
}

func criCPU(cg *stats.Sample, nanoCores *uint64) *runtime.CpuUsage {
	cpu := &runtime.CpuUsage{
		Timestamp:            cg.Time.UnixNano(),
		UsageCoreNanoSeconds: &runtime.UInt64Value{Value: cg.CPU.UsageNanos},
	}
	if nanoCores != nil {
		cpu.UsageNanoCores = &runtime.UInt64Value{Value: *nanoCores}
	}
	return cpu
}

func criMemory(cg *stats.Sample) *runtime.MemoryUsage {
	m := cg.Memory
	mem := &runtime.MemoryUsage{
		Timestamp:       cg.Time.UnixNano(),
		WorkingSetBytes: &runtime.UInt64Value{Value: m.WorkingSet},
		UsageBytes:      &runtime.UInt64Value{Value: m.Usage},
		RssBytes:        &runtime.UInt64Value{Value: m.RSS},
		PageFaults:      &runtime.UInt64Value{Value: m.PageFaults},
		MajorPageFaults: &runtime.UInt64Value{Value: m.MajorPageFaults},
	}
	if avail, limited := m.Available(); limited {
		mem.AvailableBytes = &runtime.UInt64Value{Value: avail}
	}
	return mem
}
