package server

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/internal/lifecycle"
	"github.com/berth-dev/berth/internal/undo"
	"github.com/berth-dev/berth/nri"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/sandbox"
)

// The server tells node resource plugins (NRI) of each pod and container
// event through s.nri; with NRI off it is nil and none of this runs, so a
// node without plugins pays nothing for the conversions below.

// blockNRISync keeps a plugin's synchronization from finishing while a CRI
// call makes or starts an object, so that the plugin sees the object (and
// its state) in its sync or as an event. Taken once per CRI call, before
// any lock. Stops, removals and updates do not take it: they concern what
// the sync lists already, and a stop's grace period would hold every
// creation behind a connecting plugin's sync.
func (s *Server) blockNRISync() func() {
	if s.nri == nil {
		return func() {}
	}
	return s.nri.BlockPluginSync()
}

// nriPod is a pod as plugins see it.
func (s *Server) nriPod(sb *sandbox.Sandbox) *api.PodSandbox {
	md := sb.Config.GetMetadata()
	p := &api.PodSandbox{
		Id:             sb.ID,
		Name:           md.GetName(),
		Uid:            md.GetUid(),
		Namespace:      md.GetNamespace(),
		Labels:         sb.Config.GetLabels(),
		Annotations:    sb.Config.GetAnnotations(),
		RuntimeHandler: sb.RuntimeHandler,
		Ips:            sb.IPs(),
		Linux: &api.LinuxPodSandbox{
			CgroupParent: sb.CgroupParent,
			PodResources: nriResources(sb.Config.GetLinux().GetResources()),
			PodOverhead:  nriResources(sb.Config.GetLinux().GetOverhead()),
		},
	}
	if sb.InfraPid > 0 {
		p.Pid = uint32(sb.InfraPid)
	}
	for _, ns := range []struct{ kind, path string }{
		{"network", sb.NS.Net}, {"ipc", sb.NS.IPC}, {"uts", sb.NS.UTS},
	} {
		if ns.path != "" {
			p.Linux.Namespaces = append(p.Linux.Namespaces, &api.LinuxNamespace{Type: ns.kind, Path: ns.path})
		}
	}
	if p.Pid > 0 {
		p.Linux.Namespaces = append(p.Linux.Namespaces, &api.LinuxNamespace{Type: "pid", Path: fmt.Sprintf("/proc/%d/ns/pid", p.Pid)})
	}
	return p
}

// nriResources converts CRI resources to NRI's, nil for nil.
func nriResources(r *runtime.LinuxContainerResources) *api.LinuxResources {
	if r == nil {
		return nil
	}
	out := &api.LinuxResources{
		Cpu: &api.LinuxCPU{
			Shares: api.UInt64(uint64(r.GetCpuShares())),
			Quota:  api.Int64(r.GetCpuQuota()),
			Period: api.UInt64(uint64(r.GetCpuPeriod())),
			Cpus:   r.GetCpusetCpus(),
			Mems:   r.GetCpusetMems(),
		},
		Memory: &api.LinuxMemory{
			Limit: api.Int64(r.GetMemoryLimitInBytes()),
		},
		Unified: r.GetUnified(),
	}
	if v := r.GetMemorySwapLimitInBytes(); v != 0 {
		out.Memory.Swap = api.Int64(v)
	}
	for _, h := range r.GetHugepageLimits() {
		out.HugepageLimits = append(out.HugepageLimits, &api.HugepageLimit{PageSize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	return out
}

// criResources converts NRI resources back to CRI's, taking what NRI has
// no word for (the OOM score) from orig.
func criResources(r *api.LinuxResources, orig *runtime.LinuxContainerResources) *runtime.LinuxContainerResources {
	out := &runtime.LinuxContainerResources{
		CpuShares:              int64(r.GetCpu().GetShares().GetValue()),
		CpuQuota:               r.GetCpu().GetQuota().GetValue(),
		CpuPeriod:              int64(r.GetCpu().GetPeriod().GetValue()),
		CpusetCpus:             r.GetCpu().GetCpus(),
		CpusetMems:             r.GetCpu().GetMems(),
		MemoryLimitInBytes:     r.GetMemory().GetLimit().GetValue(),
		MemorySwapLimitInBytes: r.GetMemory().GetSwap().GetValue(),
		Unified:                r.GetUnified(),
		OomScoreAdj:            orig.GetOomScoreAdj(),
	}
	for _, h := range r.GetHugepageLimits() {
		out.HugepageLimits = append(out.HugepageLimits, &runtime.HugepageLimit{PageSize: h.GetPageSize(), Limit: h.GetLimit()})
	}
	return out
}

// nriContainer is a container as plugins see it, with what its OCI spec
// says (spec nil: read from the bundle).
func (s *Server) nriContainer(c *container.Container, spec *specs.Spec) *api.Container {
	st := c.Status()
	out := &api.Container{
		Id:           c.ID,
		PodSandboxId: c.PodID,
		// The name the pod spec gave, which is what plugins match on.
		Name:        c.Config.GetMetadata().GetName(),
		Labels:      c.Config.GetLabels(),
		Annotations: c.Config.GetAnnotations(),
		CreatedAt:   c.CreatedAt.UnixNano(),
		State:       nriState(st),
	}
	if !st.StartedAt.IsZero() {
		out.StartedAt = st.StartedAt.UnixNano()
	}
	if st.State == container.StateExited {
		out.FinishedAt = st.Exit.FinishedAt.UnixNano()
		out.ExitCode = st.Exit.Code
		out.StatusReason, out.StatusMessage = st.Exit.Reason, st.Exit.Message
	}
	if spec == nil {
		spec = readBundleSpec(c.Bundle)
	}
	if spec == nil {
		return out
	}
	if a := spec.Annotations; len(a) > 0 {
		out.Annotations = a // the spec's carry the config's and Berth's own
	}
	if p := spec.Process; p != nil {
		out.Args = p.Args
		out.Env = p.Env
		for _, r := range p.Rlimits {
			out.Rlimits = append(out.Rlimits, &api.POSIXRlimit{Type: r.Type, Hard: r.Hard, Soft: r.Soft})
		}
	}
	out.Mounts = api.FromOCIMounts(spec.Mounts)
	out.Hooks = api.FromOCIHooks(spec.Hooks)
	if l := spec.Linux; l != nil {
		out.Linux = &api.LinuxContainer{
			Namespaces:  api.FromOCILinuxNamespaces(l.Namespaces),
			Devices:     api.FromOCILinuxDevices(l.Devices),
			Resources:   api.FromOCILinuxResources(l.Resources, nil),
			CgroupsPath: l.CgroupsPath,
			Sysctl:      l.Sysctl,
		}
		if p := spec.Process; p != nil && p.OOMScoreAdj != nil {
			out.Linux.OomScoreAdj = api.Int(*p.OOMScoreAdj)
		}
	}
	return out
}

func nriState(st container.Status) api.ContainerState {
	switch {
	case st.Phase != lifecycle.Created:
		return api.ContainerState_CONTAINER_UNKNOWN
	case st.State == container.StateRunning:
		return api.ContainerState_CONTAINER_RUNNING
	case st.State == container.StateExited:
		return api.ContainerState_CONTAINER_STOPPED
	default:
		return api.ContainerState_CONTAINER_CREATED
	}
}

// readBundleSpec is the spec a container was created with, nil when the
// bundle is gone (a removal under way).
func readBundleSpec(bundle string) *specs.Spec {
	spec, err := oci.ReadSpec(bundle)
	if err != nil {
		return nil
	}
	return spec
}

// nriPodOf is c's pod as plugins see it, or one with only its id when the
// pod is gone already.
func (s *Server) nriPodOf(c *container.Container) *api.PodSandbox {
	if sb, err := s.sandboxes.Get(c.PodID); err == nil {
		return s.nriPod(sb)
	}
	return &api.PodSandbox{Id: c.PodID}
}

// nriCreateContainer asks plugins about container c before it is created
// and applies their adjustment to its spec; the updates they ask for other
// containers are applied later. A failure is the creation's: plugins that
// heard of c are told it is gone by the undo.
func (s *Server) nriCreateContainer(ctx context.Context, sb *sandbox.Sandbox, c *container.Container, spec *specs.Spec, undos *undo.Stack) error {
	pod := s.nriPod(sb)
	undos.Add("tell NRI plugins the container is gone", func() error {
		return s.nri.RemoveContainer(context.WithoutCancel(ctx), pod, s.nriContainer(c, spec))
	})
	adj, updates, err := s.nri.CreateContainer(ctx, pod, s.nriContainer(c, spec))
	if err != nil {
		return err
	}
	if err := nri.Adjust(spec, adj, nri.AdjustOptions{Hugetlb: s.host.Hugetlb()}); err != nil {
		return fmt.Errorf("apply NRI plugins' adjustment to container %s: %w", c.ID, err)
	}
	if adj.GetLinux().GetResources() != nil {
		// ContainerStatus reports what the container runs with.
		if err := c.SetResources(resourcesOfSpec(spec, c.Status().Resources)); err != nil {
			return err
		}
	}
	s.nri.ApplyLater(updates)
	return nil
}

// resourcesOfSpec is orig with what spec's cgroup settings say instead.
func resourcesOfSpec(spec *specs.Spec, orig *runtime.LinuxContainerResources) *runtime.LinuxContainerResources {
	out := &runtime.LinuxContainerResources{}
	if orig != nil {
		out = proto.Clone(orig).(*runtime.LinuxContainerResources)
	}
	r := spec.Linux.Resources
	if r == nil {
		return out
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil {
			out.CpuShares = int64(*cpu.Shares)
		}
		if cpu.Quota != nil {
			out.CpuQuota = *cpu.Quota
		}
		if cpu.Period != nil {
			out.CpuPeriod = int64(*cpu.Period)
		}
		out.CpusetCpus, out.CpusetMems = cpu.Cpus, cpu.Mems
	}
	if m := r.Memory; m != nil && m.Limit != nil {
		out.MemoryLimitInBytes = *m.Limit
	}
	if len(r.Unified) > 0 {
		out.Unified = r.Unified
	}
	return out
}

// nriStopContainer tells plugins c stopped (once, whoever asks first) and
// applies the updates they ask for in return.
func (s *Server) nriStopContainer(ctx context.Context, c *container.Container) {
	if s.nri == nil {
		return
	}
	updates, err := s.nri.StopContainer(ctx, s.nriPodOf(c), s.nriContainer(c, nil))
	if err != nil {
		s.log.Warn("NRI plugins failed on a container's stop", "container", c.ID, "error", err)
	}
	s.nri.ApplyLater(updates)
}

// nriRemoveContainer tells plugins c is gone.
func (s *Server) nriRemoveContainer(ctx context.Context, c *container.Container) {
	if s.nri == nil {
		return
	}
	if err := s.nri.RemoveContainer(ctx, s.nriPodOf(c), s.nriContainer(c, nil)); err != nil {
		s.log.Warn("NRI plugins failed on a container's removal", "container", c.ID, "error", err)
	}
}

// nriLockWait bounds how long a plugin's update waits for a container.
var nriLockWait = 10 * time.Second

// NRIDomain is the server as NRI plugins see it (nri.Domain).
func (s *Server) NRIDomain() NRIDomain { return NRIDomain{s} }

// NRIDomain lists what a connecting plugin is synchronized with and applies
// the container updates plugins ask for.
type NRIDomain struct{ s *Server }

// ListPodSandboxes is the pods that are fully made.
func (d NRIDomain) ListPodSandboxes() []*api.PodSandbox {
	s := d.s
	var out []*api.PodSandbox
	for _, sb := range s.sandboxes.List() {
		if sb.Phase() == lifecycle.Created {
			out = append(out, s.nriPod(sb))
		}
	}
	return out
}

// ListContainers is the containers that are fully made.
func (d NRIDomain) ListContainers() []*api.Container {
	s := d.s
	var out []*api.Container
	for _, c := range s.containers.List() {
		if c.Status().Phase == lifecycle.Created {
			out = append(out, s.nriContainer(c, nil))
		}
	}
	return out
}

// UpdateContainer applies a plugin's update of a container's resources,
// as UpdateContainerResources does but without asking plugins again.
func (d NRIDomain) UpdateContainer(ctx context.Context, u *api.ContainerUpdate) error {
	s := d.s
	c, err := s.containers.Get(u.GetContainerId())
	if err != nil || c.ID != u.GetContainerId() {
		return fmt.Errorf("container %s: not found", u.GetContainerId())
	}
	// Bounded: the caller may hold another container's lock (an update
	// that moves its neighbours), and two such updates must not wait on
	// each other for as long as the kubelet's deadline.
	lockCtx, cancel := context.WithTimeout(ctx, nriLockWait)
	defer cancel()
	unlock, err := s.ctrLocks.LockContext(lockCtx, c.ID)
	if err != nil {
		return fmt.Errorf("container %s is busy: %w", c.ID, err)
	}
	defer unlock()
	return s.updateResourcesLocked(ctx, c, criResources(u.GetLinux().GetResources(), c.Status().Resources))
}
