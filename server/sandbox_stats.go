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
	return &runtime.PodSandboxStatsResponse{Stats: s.criPodStats(sb, s.samplePod(sb))}, nil
}

// ListPodSandboxStats reports the stats of the pods that match the filter:
// id (or prefix) and label selector.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtime.ListPodSandboxStatsRequest) (*runtime.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	resp := &runtime.ListPodSandboxStatsResponse{Stats: []*runtime.PodSandboxStats{}}
	for _, sb := range s.sandboxes.List() {
		if f.GetId() != "" && !hasIDPrefix(sb.ID, f.GetId()) {
			continue
		}
		if !matchLabels(sb.Config.GetLabels(), f.GetLabelSelector()) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp.Stats = append(resp.Stats, s.criPodStats(sb, s.samplePod(sb)))
	}
	return resp, nil
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

// samplePod reads a pod. Its totals come from its cgroup parent when that
// is the pod's own (the kubelet gives every pod one); under a parent that
// pods share (Berth's default) they are the sum of the pod's containers'
// cgroups and its infra container's.
func (s *Server) samplePod(sb *sandbox.Sandbox) podSample {
	var ps podSample
	var sum stats.Sample
	summed := false
	for _, c := range s.podContainers(sb) {
		cs := s.sampleContainer(c)
		ps.containers = append(ps.containers, c)
		ps.samples = append(ps.samples, cs)
		if cs.cgroup != nil {
			sum.Add(*cs.cgroup)
			summed = true
		}
	}
	if path := s.podCgroupPath(sb); path != "" {
		if smp, err := s.stats.readCgroup(path); err == nil {
			ps.cgroup = &smp
		} else {
			s.log.Debug("read pod cgroup", "pod", sb.ID, "cgroup", path, "error", err)
		}
	}
	if ps.cgroup == nil && sb.InfraID != "" && sb.State() == sandbox.StateReady {
		if infra := s.sampleCgroup(sb.InfraID, sb.InfraBundle); infra != nil {
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
		ifs, err := s.stats.readNetNS(sb.NS.Net)
		if err != nil {
			s.log.Debug("read pod network counters", "pod", sb.ID, "error", err)
		} else {
			ps.network, ps.netAt = ifs, time.Now()
		}
	}
	return ps
}

// podCgroupPath is the cgroup of sb's own cgroup parent, or "" when the
// pod has none of its own: no parent was asked for, the daemon's default
// was, or another pod shares it.
func (s *Server) podCgroupPath(sb *sandbox.Sandbox) string {
	parent := sb.Config.GetLinux().GetCgroupParent()
	if parent == "" || sb.CgroupParent != parent || parent == s.cgroupParent(&runtime.PodSandboxConfig{}) {
		return ""
	}
	for _, other := range s.sandboxes.List() {
		if other.ID != sb.ID && other.CgroupParent == parent {
			return ""
		}
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
