package stats

import (
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestDescriptorsAreUniqueAndCAdvisorNamed(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Descriptors() {
		if seen[d.Name] {
			t.Errorf("descriptor %s twice", d.Name)
		}
		seen[d.Name] = true
		if len(d.LabelKeys) < len(LabelKeys) || d.Help == "" {
			t.Errorf("descriptor %s: keys %v help %q", d.Name, d.LabelKeys, d.Help)
		}
	}
	// What the kubelet's /metrics/cadvisor users rely on most.
	for _, name := range []string{
		"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "container_memory_usage_bytes",
		"container_memory_rss", "container_network_receive_bytes_total", "container_network_transmit_bytes_total",
		"container_processes", "container_fs_usage_bytes",
	} {
		if !seen[name] {
			t.Errorf("no descriptor for %s", name)
		}
	}
}

func TestMetricsMatchTheirDescriptors(t *testing.T) {
	keys := map[string]int{}
	types := map[string]runtime.MetricType{}
	for _, d := range Descriptors() {
		keys[d.Name] = len(d.LabelKeys)
	}
	for _, d := range descriptors {
		types[d.name] = d.typ
	}
	cg := &Sample{CPU: CPU{UsageNanos: 3_500_000_000}, Memory: Memory{WorkingSet: 42}, Processes: 2,
		Tasks: Tasks{Threads: 5, FileDescriptors: 9, Sockets: 1}, OOMEvents: 1, Time: time.Unix(1000, 0)}
	lb := Labels{Container: "app", ID: "c1", Image: "busybox", Name: "k8s_app_p", Namespace: "default", Pod: "p"}
	for _, tc := range []struct {
		name    string
		metrics []*runtime.Metric
		want    map[string]uint64 // name -> value of its first series
		count   int
	}{
		{
			name:    "container with everything",
			metrics: ContainerMetrics(lb, cg, &LayerUsage{Bytes: 4096, Inodes: 3}, &Filesystem{Device: "/dev/vda1", CapacityBytes: 1 << 30}, &runtime.LinuxContainerResources{CpuShares: 512, MemoryLimitInBytes: 1 << 20}, time.Unix(900, 0)),
			want: map[string]uint64{
				"container_cpu_usage_seconds_total": 3, "container_memory_working_set_bytes": 42,
				"container_processes": 2, "container_fs_usage_bytes": 4096, "container_fs_limit_bytes": 1 << 30,
				"container_spec_cpu_shares": 512, "container_spec_memory_limit_bytes": 1 << 20,
				"container_threads": 5, "container_file_descriptors": 9, "container_sockets": 1,
				"container_oom_events_total": 1, "container_last_seen": 1000, "container_start_time_seconds": 900,
			},
			count: 26 + 1 + 4 + 5, // cgroup (failures_total has 4 series), start time, fs, spec
		},
		{name: "exited container: spec only", metrics: ContainerMetrics(lb, nil, nil, nil, &runtime.LinuxContainerResources{}, time.Time{}), count: 5},
		{
			name: "pod with network, loopback left out",
			metrics: PodMetrics(Labels{ID: "p1", Name: "k8s_POD_p", Namespace: "default", Pod: "p"}, nil,
				[]Interface{{Name: "lo", RxBytes: 1}, {Name: "eth0", RxBytes: 1000, TxBytes: 500}}),
			want:  map[string]uint64{"container_network_receive_bytes_total": 1000, "container_network_transmit_bytes_total": 500},
			count: 8,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.metrics) != tc.count {
				t.Errorf("%d metrics, want %d", len(tc.metrics), tc.count)
			}
			first := map[string]uint64{}
			series := map[string]bool{}
			for _, m := range tc.metrics {
				n, ok := keys[m.Name]
				if !ok {
					t.Errorf("metric %s has no descriptor", m.Name)
					continue
				}
				if len(m.LabelValues) != n {
					t.Errorf("metric %s has %d label values for %d keys", m.Name, len(m.LabelValues), n)
				}
				if m.MetricType != types[m.Name] || m.Timestamp != 0 {
					t.Errorf("metric %s: type %v timestamp %d", m.Name, m.MetricType, m.Timestamp)
				}
				key := m.Name + "|" + joinLabels(m.LabelValues)
				if series[key] {
					t.Errorf("series %s twice: the kubelet's registry would refuse it", key)
				}
				series[key] = true
				if _, ok := first[m.Name]; !ok {
					first[m.Name] = m.GetValue().GetValue()
				}
			}
			for name, v := range tc.want {
				if first[name] != v {
					t.Errorf("%s = %d, want %d", name, first[name], v)
				}
			}
		})
	}
}

func joinLabels(v []string) string {
	out := ""
	for _, s := range v {
		out += s + ","
	}
	return out
}
