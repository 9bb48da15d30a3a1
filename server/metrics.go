package server

import (
	"context"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/stats"
)

// CountByState counts the server's containers and pods by lifecycle state
// (every state present, zeros included), for the Prometheus endpoint.
func (s *Server) CountByState() (containers, pods map[string]int) {
	containers = map[string]int{
		string(container.StateCreated): 0,
		string(container.StateRunning): 0,
		string(container.StateExited):  0,
	}
	for _, c := range s.containers.List() {
		containers[string(c.State())]++
	}
	pods = map[string]int{string(sandbox.StateReady): 0, string(sandbox.StateNotReady): 0}
	for _, sb := range s.sandboxes.List() {
		pods[string(sb.State())]++
	}
	return containers, pods
}

// ListMetricDescriptors lists the cAdvisor-named metrics that
// ListPodSandboxMetrics returns, with their help and label keys.
func (s *Server) ListMetricDescriptors(ctx context.Context, _ *runtime.ListMetricDescriptorsRequest) (*runtime.ListMetricDescriptorsResponse, error) {
	return &runtime.ListMetricDescriptorsResponse{Descriptors: stats.Descriptors()}, nil
}

// ListPodSandboxMetrics reports, for every ready pod, its own metrics (CPU,
// memory and processes of the pod as a whole, network per interface) and
// those of its containers that have not exited, gathered live.
func (s *Server) ListPodSandboxMetrics(ctx context.Context, _ *runtime.ListPodSandboxMetricsRequest) (*runtime.ListPodSandboxMetricsResponse, error) {
	resp := &runtime.ListPodSandboxMetricsResponse{PodMetrics: []*runtime.PodSandboxMetrics{}}
	var fs *stats.Filesystem
	if f, err := stats.FilesystemOf(s.rootfs.LayersDir()); err == nil {
		fs = &f
	} else {
		s.log.Debug("no container filesystem for metrics", "error", err)
	}
	idx := s.podIndex()
	for _, sb := range idx.pods {
		if sb.State() != sandbox.StateReady {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp.PodMetrics = append(resp.PodMetrics, s.podMetrics(sb, s.samplePod(sb, idx, stats.AllFields), fs))
	}
	return resp, nil
}

func (s *Server) podMetrics(sb *sandbox.Sandbox, ps podSample, fs *stats.Filesystem) *runtime.PodSandboxMetrics {
	md := sb.Config.GetMetadata()
	pod := stats.Labels{ID: sb.ID, Name: sb.Name, Namespace: md.GetNamespace(), Pod: md.GetName()}
	pm := &runtime.PodSandboxMetrics{
		PodSandboxId:     sb.ID,
		Metrics:          stats.PodMetrics(pod, ps.cgroup, ps.network),
		ContainerMetrics: []*runtime.ContainerMetrics{},
	}
	for i, c := range ps.containers {
		st := c.Status()
		if st.State == container.StateExited {
			continue
		}
		lb := pod
		lb.Container, lb.ID, lb.Image, lb.Name = c.Config.GetMetadata().GetName(), c.ID, c.Config.GetImage().GetImage(), c.Name
		pm.ContainerMetrics = append(pm.ContainerMetrics, &runtime.ContainerMetrics{
			ContainerId: c.ID,
			Metrics:     stats.ContainerMetrics(lb, ps.samples[i].cgroup, ps.samples[i].layer, fs, st.Resources, st.StartedAt),
		})
	}
	return pm
}
