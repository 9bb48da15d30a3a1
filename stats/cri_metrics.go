package stats

import (
	"slices"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The CRI metrics (ListMetricDescriptors, ListPodSandboxMetrics) are the
// cAdvisor metrics the kubelet serves on /metrics/cadvisor when it takes pod
// and container stats from the runtime: the same names, types and labels
// (container, id, image, name, namespace, pod, plus cpu, interface, device,
// failure_type and scope where cAdvisor has them). The CRI carries values
// as integers, so seconds are whole seconds, as with CRI-O and containerd.

// LabelKeys are the labels every metric has, in cAdvisor's order.
var LabelKeys = []string{"container", "id", "image", "name", "namespace", "pod"}

// Labels are the values of LabelKeys for one container (or, with an empty
// Container, for a pod as a whole, as cAdvisor labels a pod's cgroup).
type Labels struct {
	Container, ID, Image, Name, Namespace, Pod string
}

func (l Labels) values() []string {
	return []string{l.Container, l.ID, l.Image, l.Name, l.Namespace, l.Pod}
}

type descriptor struct {
	name, help string
	extra      []string // label keys after LabelKeys
	typ        runtime.MetricType
}

const (
	counter = runtime.MetricType_COUNTER
	gauge   = runtime.MetricType_GAUGE
)

var descriptors = []descriptor{
	{"container_cpu_usage_seconds_total", "Cumulative cpu time consumed in seconds.", []string{"cpu"}, counter},
	{"container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", nil, counter},
	{"container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", nil, counter},
	{"container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", nil, counter},
	{"container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", nil, counter},
	{"container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", nil, counter},
	{"container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed.", nil, gauge},
	{"container_memory_working_set_bytes", "Current working set in bytes.", nil, gauge},
	{"container_memory_rss", "Size of RSS in bytes.", nil, gauge},
	{"container_memory_cache", "Number of bytes of page cache memory.", nil, gauge},
	{"container_memory_mapped_file", "Size of memory mapped files in bytes.", nil, gauge},
	{"container_memory_swap", "Container swap usage in bytes.", nil, gauge},
	{"container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes.", nil, gauge},
	{"container_memory_failcnt", "Number of memory usage hits limits.", nil, counter},
	{"container_memory_failures_total", "Cumulative count of memory allocation failures.", []string{"failure_type", "scope"}, counter},
	{"container_processes", "Number of processes running inside the container.", nil, gauge},
	{"container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero.", nil, gauge},
	{"container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", []string{"device"}, gauge},
	{"container_fs_inodes_total", "Number of Inodes.", []string{"device"}, gauge},
	{"container_fs_inodes_free", "Number of available Inodes.", []string{"device"}, gauge},
	{"container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", []string{"device"}, gauge},
	{"container_network_receive_bytes_total", "Cumulative count of bytes received.", []string{"interface"}, counter},
	{"container_network_receive_packets_total", "Cumulative count of packets received.", []string{"interface"}, counter},
	{"container_network_receive_errors_total", "Cumulative count of errors encountered while receiving.", []string{"interface"}, counter},
	{"container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving.", []string{"interface"}, counter},
	{"container_network_transmit_bytes_total", "Cumulative count of bytes transmitted.", []string{"interface"}, counter},
	{"container_network_transmit_packets_total", "Cumulative count of packets transmitted.", []string{"interface"}, counter},
	{"container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting.", []string{"interface"}, counter},
	{"container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting.", []string{"interface"}, counter},
	{"container_spec_cpu_period", "CPU period of the container.", nil, gauge},
	{"container_spec_cpu_quota", "CPU quota of the container.", nil, gauge},
	{"container_spec_cpu_shares", "CPU share of the container.", nil, gauge},
	{"container_spec_memory_limit_bytes", "Memory limit for the container.", nil, gauge},
	{"container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", nil, gauge},
	{"container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", nil, gauge},
	{"container_oom_events_total", "Count of out of memory events observed for the container.", nil, counter},
	{"container_threads", "Number of threads running inside the container.", nil, gauge},
	{"container_file_descriptors", "Number of open file descriptors for the container.", nil, gauge},
	{"container_sockets", "Number of open sockets for the container.", nil, gauge},
	{"container_last_seen", "Last time a container was seen by the exporter.", nil, gauge},
	{"container_start_time_seconds", "Start time of the container since unix epoch in seconds.", nil, gauge},
	// Block I/O accounting: described so clients know the names; values
	// appear only where the host accounts I/O per device.
	{"container_blkio_device_usage_total", "Blkio device bytes usage.", []string{"device", "major", "minor", "operation"}, counter},
	{"container_fs_reads_bytes_total", "Cumulative count of bytes read.", []string{"device"}, counter},
	{"container_fs_reads_total", "Cumulative count of reads completed.", []string{"device"}, counter},
	{"container_fs_writes_bytes_total", "Cumulative count of bytes written.", []string{"device"}, counter},
	{"container_fs_writes_total", "Cumulative count of writes completed.", []string{"device"}, counter},
}

var descriptorByName = func() map[string]descriptor {
	m := make(map[string]descriptor, len(descriptors))
	for _, d := range descriptors {
		m[d.name] = d
	}
	return m
}()

// Descriptors lists every metric ListPodSandboxMetrics may return.
func Descriptors() []*runtime.MetricDescriptor {
	out := make([]*runtime.MetricDescriptor, 0, len(descriptors))
	for _, d := range descriptors {
		out = append(out, &runtime.MetricDescriptor{
			Name:      d.name,
			Help:      d.help,
			LabelKeys: append(slices.Clone(LabelKeys), d.extra...),
		})
	}
	return out
}

// metricList builds metrics that share their base labels.
type metricList struct {
	base []string
	out  []*runtime.Metric
}

func (l *metricList) add(name string, v uint64, extra ...string) {
	d, ok := descriptorByName[name]
	if !ok || len(extra) != len(d.extra) {
		panic("stats: metric " + name + " does not match its descriptor") // a bug in this file
	}
	l.out = append(l.out, &runtime.Metric{
		Name: name,
		// Gathered live: a zero timestamp, as the CRI asks.
		MetricType:  d.typ,
		LabelValues: append(slices.Clone(l.base), extra...),
		Value:       &runtime.UInt64Value{Value: v},
	})
}

func seconds(ns uint64) uint64 { return ns / uint64(time.Second) }

func (l *metricList) addCgroup(s *Sample) {
	l.add("container_cpu_usage_seconds_total", seconds(s.CPU.UsageNanos), "total")
	l.add("container_cpu_user_seconds_total", seconds(s.CPU.UserNanos))
	l.add("container_cpu_system_seconds_total", seconds(s.CPU.SystemNanos))
	l.add("container_cpu_cfs_periods_total", s.CPU.Periods)
	l.add("container_cpu_cfs_throttled_periods_total", s.CPU.ThrottledPeriods)
	l.add("container_cpu_cfs_throttled_seconds_total", seconds(s.CPU.ThrottledNanos))
	m := s.Memory
	l.add("container_memory_usage_bytes", m.Usage)
	l.add("container_memory_working_set_bytes", m.WorkingSet)
	l.add("container_memory_rss", m.RSS)
	l.add("container_memory_cache", m.Cache)
	l.add("container_memory_mapped_file", m.MappedFile)
	l.add("container_memory_swap", m.Swap)
	l.add("container_memory_max_usage_bytes", m.MaxUsage)
	l.add("container_memory_failcnt", m.Failcnt)
	for _, scope := range []string{"container", "hierarchy"} {
		l.add("container_memory_failures_total", m.PageFaults, "pgfault", scope)
		l.add("container_memory_failures_total", m.MajorPageFaults, "pgmajfault", scope)
	}
	l.add("container_processes", s.Processes)
	l.add("container_threads_max", s.ProcessLimit)
	l.add("container_memory_kernel_usage", m.Kernel)
	l.add("container_oom_events_total", s.OOMEvents)
	l.add("container_threads", s.Tasks.Threads)
	l.add("container_file_descriptors", s.Tasks.FileDescriptors)
	l.add("container_sockets", s.Tasks.Sockets)
	l.add("container_last_seen", uint64(s.Time.Unix()))
}

// Filesystem is the filesystem a writable layer lives on.
type Filesystem struct {
	Device                            string
	CapacityBytes, Inodes, InodesFree uint64
}

// ContainerMetrics are one container's metrics. cg is nil for a container
// without a cgroup (not running), layer and fs nil when unknown, res the
// container's resources (nil for none).
func ContainerMetrics(lb Labels, cg *Sample, layer *LayerUsage, fs *Filesystem, res *runtime.LinuxContainerResources, started time.Time) []*runtime.Metric {
	l := &metricList{base: lb.values()}
	if cg != nil {
		l.addCgroup(cg)
	}
	if !started.IsZero() {
		l.add("container_start_time_seconds", uint64(started.Unix()))
	}
	if layer != nil && fs != nil {
		l.add("container_fs_usage_bytes", layer.Bytes, fs.Device)
		l.add("container_fs_inodes_total", fs.Inodes, fs.Device)
		l.add("container_fs_inodes_free", fs.InodesFree, fs.Device)
		l.add("container_fs_limit_bytes", fs.CapacityBytes, fs.Device)
	}
	if res != nil {
		l.add("container_spec_cpu_period", uint64(max(res.GetCpuPeriod(), 0)))
		l.add("container_spec_cpu_quota", uint64(max(res.GetCpuQuota(), 0)))
		l.add("container_spec_cpu_shares", uint64(max(res.GetCpuShares(), 0)))
		l.add("container_spec_memory_limit_bytes", uint64(max(res.GetMemoryLimitInBytes(), 0)))
		l.add("container_spec_memory_swap_limit_bytes", uint64(max(res.GetMemorySwapLimitInBytes(), 0)))
	}
	return l.out
}

// PodMetrics are a pod's own metrics: its cgroup totals (cg may be nil)
// and its network interfaces (loopback left out, as cAdvisor does).
func PodMetrics(lb Labels, cg *Sample, ifs []Interface) []*runtime.Metric {
	l := &metricList{base: lb.values()}
	if cg != nil {
		l.addCgroup(cg)
	}
	for _, i := range ifs {
		if i.Name == "lo" {
			continue
		}
		l.add("container_network_receive_bytes_total", i.RxBytes, i.Name)
		l.add("container_network_receive_packets_total", i.RxPackets, i.Name)
		l.add("container_network_receive_errors_total", i.RxErrors, i.Name)
		l.add("container_network_receive_packets_dropped_total", i.RxDropped, i.Name)
		l.add("container_network_transmit_bytes_total", i.TxBytes, i.Name)
		l.add("container_network_transmit_packets_total", i.TxPackets, i.Name)
		l.add("container_network_transmit_errors_total", i.TxErrors, i.Name)
		l.add("container_network_transmit_packets_dropped_total", i.TxDropped, i.Name)
	}
	return l.out
}
