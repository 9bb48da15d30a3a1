package server

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/stats"
)

// PodSandboxStats reports a pod's CPU, memory, network and process count,
// and the stats of its containers.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtime.PodSandboxStatsRequest) (*runtime.PodSandboxStatsResponse, error) {
	if req.GetPodSandboxId() == "" {
		return nil, invalidf("pod_sandbox_id", "required")
	}
	sb, err := s.sandboxes.Get(req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("pod_sandbox_id: %w", err)
	}
	return &runtime.PodSandboxStatsResponse{Stats: s.criPodStats(sb, s.samplePod(sb, s.podIndex(), criFields))}, nil
}

// ListPodSandboxStats reports the stats of the pods that match the filter:
// id (or prefix) and label selector.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtime.ListPodSandboxStatsRequest) (*runtime.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	idx := s.podIndex()
	var pods []*sandbox.Sandbox
	for _, sb := range idx.pods {
		if f.GetId() != "" && !hasIDPrefix(sb.ID, f.GetId()) {
			continue
		}
		if !matchLabels(sb.Config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		pods = append(pods, sb)
	}
	resp := &runtime.ListPodSandboxStatsResponse{Stats: make([]*runtime.PodSandboxStats, len(pods))}
	if err := forEachParallel(ctx, len(pods), func(i int) {
		resp.Stats[i] = s.criPodStats(pods[i], s.samplePod(pods[i], idx, criFields))
	}); err != nil {
		return nil, err
	}
	return resp, nil
}

// criFields are the fields of a cgroup the CRI stats report.
const criFields = stats.CPUMemory | stats.ProcessCount

// podIndex is what sampling a pod needs to know of the others, gathered
// once per call rather than once per pod: every pod, each pod's
// containers and how many pods have each cgroup parent.
type podIndex struct {
	pods       []*sandbox.Sandbox
	containers map[string][]*container.Container
	parents    map[string]int
}

func (s *Server) podIndex() podIndex {
	idx := podIndex{
		pods:       s.sandboxes.List(),
		containers: map[string][]*container.Container{},
		parents:    map[string]int{},
	}
	for _, sb := range idx.pods {
		idx.parents[sb.CgroupParent]++
	}
	for _, c := range s.containers.List() {
		idx.containers[c.PodID] = append(idx.containers[c.PodID], c)
	}
	return idx
}

// podSample is one reading of a pod: its own totals, its network and its
// containers. A part that could not be read is nil.
type podSample struct {
	cgroup     *stats.Sample
	nanoCores  *uint64
	network    []stats.Interface
	netAt      time.Time
	containers []*container.Container
	samples    []ctrSample
}

// samplePod reads the fields f of a pod. Its totals come from its cgroup
// parent when that is the pod's own (the kubelet gives every pod one);
// under a parent that pods share (Berth's default) they are the sum of the
// pod's containers' cgroups and its infra container's. Its containers'
// fields are f, less the process count when the pod's own cgroup has it.
func (s *Server) samplePod(sb *sandbox.Sandbox, idx podIndex, f stats.Fields) podSample {
	var ps podSample
	if path := s.podCgroupPath(sb, idx); path != "" {
		if smp, err := s.stats.readCgroup(path, f); err == nil {
			ps.cgroup = &smp
		} else {
			s.log.Debug("read pod cgroup", "pod", sb.ID, "cgroup", path, "error", err)
		}
	}
	ctrFields := f
	if ps.cgroup != nil && f != stats.AllFields {
		ctrFields &^= stats.ProcessCount
	}
	var sum stats.Sample
	summed := false
	ps.containers = idx.containers[sb.ID]
	ps.samples = make([]ctrSample, len(ps.containers))
	for i, c := range ps.containers {
		cs := s.sampleContainer(c, ctrFields)
		ps.samples[i] = cs
		if cs.cgroup != nil {
			sum.Add(*cs.cgroup)
			summed = true
		}
	}
	if ps.cgroup == nil && sb.InfraID != "" && sb.State() == sandbox.StateReady {
		if infra := s.sampleCgroup(sb.InfraID, sb.InfraBundle, f); infra != nil {
			sum.Add(*infra)
			summed = true
		}
	}
	if ps.cgroup == nil && summed {
		ps.cgroup = &sum
	}
	if ps.cgroup != nil {
		ps.nanoCores = s.rateOf("pod/"+sb.ID, ps.cgroup)
	}
	if sb.NS != nil && sb.NS.Net != "" && sb.State() == sandbox.StateReady {
		ifs, err := s.stats.readNetNS(sb.NS.Net, s.runningPids(ps.containers))
		if err != nil {
			s.log.Debug("read pod network counters", "pod", sb.ID, "error", err)
		} else {
			ps.network, ps.netAt = ifs, time.Now()
		}
	}
	return ps
}

// runningPids are the init pids of those of cs that run: processes in
// their pod's network namespace, unless they share the host's.
func (s *Server) runningPids(cs []*container.Container) []int {
	var pids []int
	for _, c := range cs {
		if c.State() != container.StateRunning {
			continue
		}
		if pid, err := s.runtimeFor(c.Handler).InitPid(s.ociContainer(c)); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// podCgroupPath is the cgroup of sb's own cgroup parent, or "" when the
// pod has none of its own: no parent was asked for, the daemon's default
// was, or another pod shares it.
func (s *Server) podCgroupPath(sb *sandbox.Sandbox, idx podIndex) string {
	parent := sb.Config.GetLinux().GetCgroupParent()
	if parent == "" || sb.CgroupParent != parent || parent == s.cgroupParent(&runtime.PodSandboxConfig{}) {
		return ""
	}
	if idx.parents[parent] > 1 {
		return ""
	}
	if s.config.Runtime.CgroupManager == "systemd" {
		path, err := stats.ExpandSlice(parent)
		if err != nil {
			return ""
		}
		return path
	}
	return filepath.Clean("/" + parent)
}

func (s *Server) criPodStats(sb *sandbox.Sandbox, ps podSample) *runtime.PodSandboxStats {
	linux := &runtime.LinuxPodSandboxStats{Containers: []*runtime.ContainerStats{}}
	if cg := ps.cgroup; cg != nil {
		linux.Cpu = criCPU(cg, ps.nanoCores)
		linux.Memory = criMemory(cg)
		linux.Process = &runtime.ProcessUsage{
			Timestamp:    cg.Time.UnixNano(),
			ProcessCount: &runtime.UInt64Value{Value: cg.Processes},
		}
	}
	if ps.network != nil {
		linux.Network = criNetwork(ps.network, ps.netAt)
	}
	for i, c := range ps.containers {
		linux.Containers = append(linux.Containers, s.criContainerStats(c, ps.samples[i]))
	}
	return &runtime.PodSandboxStats{
		Attributes: &runtime.PodSandboxAttributes{
			Id:          sb.ID,
			Metadata:    sb.Config.GetMetadata(),
			Labels:      sb.Config.GetLabels(),
			Annotations: sb.Config.GetAnnotations(),
		},
		Linux: linux,
	}
}

// defaultInterface is the pod's interface CNI plugins name by convention.
const defaultInterface = "eth0"

// criNetwork reports every interface of the pod's namespace, and eth0 as
// the default one.
func criNetwork(ifs []stats.Interface, at time.Time) *runtime.NetworkUsage {
	n := &runtime.NetworkUsage{Timestamp: at.UnixNano()}
	for _, i := range ifs {
		u := &runtime.NetworkInterfaceUsage{
			Name:     i.Name,
			RxBytes:  &runtime.UInt64Value{Value: i.RxBytes},
			RxErrors: &runtime.UInt64Value{Value: i.RxErrors},
			TxBytes:  &runtime.UInt64Value{Value: i.TxBytes},
			TxErrors: &runtime.UInt64Value{Value: i.TxErrors},
		}
		n.Interfaces = append(n.Interfaces, u)
		if i.Name == defaultInterface {
			n.DefaultInterface = u
		}
	}
	return n
}
