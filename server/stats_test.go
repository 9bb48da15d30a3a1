package server

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/oci"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/stats"
)

// The stats handlers read the host in two places, statsState's readers:
// cgroups (which the cgroups library reads only on a cgroup filesystem) and
// pinned network namespaces (which take CAP_SYS_ADMIN to join). statsHost
// stands for both; everything else (cgroup paths from the bundles' runtime
// specs, CPU rates, the layer cache, the filesystem of the layers) is the
// production code on temp dirs.

// statsHost is the host as the stats handlers read it. A cgroup's samples
// are read one after another, the last one for good; a path without any is
// a cgroup that does not exist, unless it fails with another error. A
// netns path without interfaces is one that cannot be joined.
type statsHost struct {
	mu      sync.Mutex
	cgroups map[string][]stats.Sample
	fails   map[string]error // cgroup path → its read's error
	netns   map[string][]stats.Interface
	reads   map[string]int // cgroup path, or "netns " + path → reads
}

func newStatsHost() *statsHost {
	return &statsHost{cgroups: map[string][]stats.Sample{}, fails: map[string]error{}, netns: map[string][]stats.Interface{}, reads: map[string]int{}}
}

func (h *statsHost) setCgroup(path string, smps ...stats.Sample) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cgroups[path] = smps
}

func (h *statsHost) failCgroup(path string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fails[path] = err
}

func (h *statsHost) setNetNS(path string, ifs ...stats.Interface) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.netns[path] = ifs
}

func (h *statsHost) readsOf(path string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.reads[path]
}

func (h *statsHost) readCgroup(path string, _ stats.Fields) (stats.Sample, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads[path]++
	if err := h.fails[path]; err != nil {
		return stats.Sample{}, fmt.Errorf("read cgroup %s: %w", path, err)
	}
	smps := h.cgroups[path]
	if len(smps) == 0 {
		return stats.Sample{}, fmt.Errorf("cgroup %s: %w", path, stats.ErrNoCgroup)
	}
	return smps[min(h.reads[path], len(smps))-1], nil
}

func (h *statsHost) readNetNS(path string, _ []int) ([]stats.Interface, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reads["netns "+path]++
	ifs, ok := h.netns[path]
	if !ok {
		return nil, fmt.Errorf("network counters of netns %s: join netns %s: operation not permitted", path, path)
	}
	return slices.Clone(ifs), nil
}

// cgroupFiles are the counters in a cgroup's files: v2 unless v1 is set,
// then v1 with hierarchical accounting (memory.stat's total_* keys).
type cgroupFiles struct {
	v1           bool
	cpuNanos     uint64 // cpu.stat usage_usec, cpuacct.usage
	memory       uint64 // memory.current, memory.usage_in_bytes
	inactiveFile uint64 // memory.stat
	anon         uint64 // memory.stat anon, total_rss
	swap         uint64 // memory.swap.current, memory.stat total_swap
	limit        uint64 // memory.max; 0 is "max"
	pgfault      uint64
	pgmajfault   uint64
	pids         uint64 // pids.current
}

// at is the sample stats.ReadCgroup makes of the files when it reads them
// at t: the cgroups library's reading of them, mapped by stats.
func (f cgroupFiles) at(t time.Time) stats.Sample {
	st := cgroups.NewStats()
	st.CpuStats.CpuUsage.TotalUsage = f.cpuNanos
	limit := uint64(math.MaxUint64) // "max"
	if f.v1 {
		limit = 0x7FFFFFFFFFFFF000 // v1's "no limit"
	}
	if f.limit != 0 {
		limit = f.limit
	}
	st.MemoryStats.Usage = cgroups.MemoryData{Usage: f.memory, Limit: limit}
	key := func(k string) string { return k }
	if f.v1 {
		st.MemoryStats.UseHierarchy = true
		key = func(k string) string { return "total_" + k }
		st.MemoryStats.Stats["total_rss"] = f.anon
		st.MemoryStats.Stats["total_swap"] = f.swap
	} else {
		st.MemoryStats.Stats["anon"] = f.anon
		st.MemoryStats.SwapOnlyUsage = cgroups.MemoryData{Usage: f.swap}
	}
	st.MemoryStats.Stats[key("inactive_file")] = f.inactiveFile
	st.MemoryStats.Stats[key("pgfault")] = f.pgfault
	st.MemoryStats.Stats[key("pgmajfault")] = f.pgmajfault
	st.PidsStats.Current = f.pids
	return stats.FromCgroupStats(st, !f.v1, t)
}

// statsRootfs is the fake rootfs with the writable layer usages a test
// sets: a container without one cannot be measured.
type statsRootfs struct {
	RootfsStore
	dir      string
	mu       sync.Mutex
	layers   map[string][2]uint64 // id → bytes, inodes
	measured map[string]int
}

func (r *statsRootfs) setLayer(id string, bytes, inodes uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.layers[id] = [2]uint64{bytes, inodes}
}

func (r *statsRootfs) measuredOf(id string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.measured[id]
}

func (r *statsRootfs) WritableLayerUsage(id string) (uint64, uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.measured[id]++
	u, ok := r.layers[id]
	if !ok {
		return 0, 0, fmt.Errorf("writable layer of %s: %w", id, errdefs.ErrNotFound)
	}
	return u[0], u[1], nil
}

func (r *statsRootfs) LayersDir() string { return r.dir }

// statsServer is fakeServer with its stats reading h for the host and
// measuring writable layers in r.
func statsServer(t *testing.T) (*Server, *statsHost, *statsRootfs) {
	t.Helper()
	s, f := fakeServer(t)
	h := newStatsHost()
	s.stats = newStatsState()
	s.stats.readCgroup, s.stats.readNetNS = h.readCgroup, h.readNetNS
	r := &statsRootfs{RootfsStore: f.rootfs, dir: f.rootfs.LayersDir(), layers: map[string][2]uint64{}, measured: map[string]int{}}
	s.rootfs = r
	return s, h, r
}

// writeBundle makes a bundle whose runtime spec names cgroupsPath; with
// "" it has no spec.
func writeBundle(t *testing.T, cgroupsPath string) string {
	t.Helper()
	dir := t.TempDir()
	if cgroupsPath == "" {
		return dir
	}
	b, err := json.Marshal(map[string]any{"ociVersion": "1.2.0", "linux": map[string]string{"cgroupsPath": cgroupsPath}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// statsContainer adds a container of pod in state, with labels, whose
// bundle's spec names cgroupsPath.
func statsContainer(t *testing.T, s *Server, id, pod string, state container.State, cgroupsPath string, labels map[string]string) *container.Container {
	t.Helper()
	c := addContainerWith(t, s, id, pod, ctrStatsConfig(id, labels), state)
	c.Bundle = writeBundle(t, cgroupsPath)
	return c
}

func ctrStatsConfig(id string, labels map[string]string) *runtime.ContainerConfig {
	return &runtime.ContainerConfig{
		Metadata:    &runtime.ContainerMetadata{Name: "ctr-" + id, Attempt: 1},
		Image:       &runtime.ImageSpec{Image: "busybox"},
		Labels:      labels,
		Annotations: map[string]string{"note": id},
	}
}

// statsPod adds a ready pod with labels whose config asks for the cgroup
// parent parent; the pod records the parent the server makes of it.
func statsPod(t *testing.T, s *Server, id, parent string, labels map[string]string) *sandbox.Sandbox {
	t.Helper()
	cfg := hostNetworkPod(id + "-name")
	cfg.Linux.CgroupParent = parent
	cfg.Labels, cfg.Annotations = labels, map[string]string{"note": id}
	sb := addReadyPod(t, s, id, cfg)
	sb.CgroupParent = s.cgroupParent(cfg)
	return sb
}

// notReadyPod adds a pod that never became ready.
func notReadyPod(t *testing.T, s *Server, id string) *sandbox.Sandbox {
	t.Helper()
	cfg := hostNetworkPod(id + "-name")
	sb := sandbox.New(id, sandbox.Name(cfg.GetMetadata()), cfg, "", "crun", filepath.Join(s.config.Runtime.RunDir, "pods", id), s.sandboxRecords())
	s.sandboxes.Add(sb)
	return sb
}

func u64(v uint64) *runtime.UInt64Value { return &runtime.UInt64Value{Value: v} }

// grpcCodeOf is the code a handler's error reaches the kubelet with.
func grpcCodeOf(err error) codes.Code { return status.Code(ToStatus(err)) }

// checkLayerTime checks that a writable layer was measured between before
// and after, then clears its timestamp so that the rest compares exactly.
func checkLayerTime(t *testing.T, st *runtime.ContainerStats, before, after time.Time) {
	t.Helper()
	if l := st.GetWritableLayer(); l != nil {
		if ts := l.Timestamp; ts < before.UnixNano() || ts > after.UnixNano() {
			t.Errorf("container %s: writable layer measured at %d, not during the call [%d, %d]", st.GetAttributes().GetId(), ts, before.UnixNano(), after.UnixNano())
		}
		l.Timestamp = 0
	}
}

func diffProto(t *testing.T, what string, got, want proto.Message) {
	t.Helper()
	if !proto.Equal(got, want) {
		t.Errorf("%s =\n%s\nwant\n%s", what, prototext.Format(got), prototext.Format(want))
	}
}

func TestContainerStats(t *testing.T) {
	at := time.Unix(1_700_000_000, 500)
	v2 := cgroupFiles{cpuNanos: 2_500_000_000, memory: 30 << 20, inactiveFile: 12 << 20, anon: 10 << 20, swap: 4096,
		limit: 64 << 20, pgfault: 900, pgmajfault: 7, pids: 3}
	v1 := cgroupFiles{v1: true, cpuNanos: 1_000_000_000, memory: 8 << 20, inactiveFile: 3 << 20, anon: 4 << 20, swap: 8192,
		pgfault: 50, pgmajfault: 1, pids: 2}
	// What the kubelet gets of v2 and v1: working set is usage less the
	// inactive file cache; only v2 has a limit, so an available figure.
	v2Cpu := &runtime.CpuUsage{Timestamp: at.UnixNano(), UsageCoreNanoSeconds: u64(2_500_000_000)}
	v2Mem := &runtime.MemoryUsage{Timestamp: at.UnixNano(), WorkingSetBytes: u64(18 << 20), AvailableBytes: u64(46 << 20),
		UsageBytes: u64(30 << 20), RssBytes: u64(10 << 20), PageFaults: u64(900), MajorPageFaults: u64(7)}
	v2Swap := &runtime.SwapUsage{Timestamp: at.UnixNano(), SwapUsageBytes: u64(4096)}
	v1Cpu := &runtime.CpuUsage{Timestamp: at.UnixNano(), UsageCoreNanoSeconds: u64(1_000_000_000)}
	v1Mem := &runtime.MemoryUsage{Timestamp: at.UnixNano(), WorkingSetBytes: u64(5 << 20),
		UsageBytes: u64(8 << 20), RssBytes: u64(4 << 20), PageFaults: u64(50), MajorPageFaults: u64(1)}
	v1Swap := &runtime.SwapUsage{Timestamp: at.UnixNano(), SwapUsageBytes: u64(8192)}

	const scope = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/berth-c1.scope"
	for _, tc := range []struct {
		name        string
		state       container.State
		cgroupsPath string // in the bundle's runtime spec; "" for no spec
		hostPath    string // where the host has the cgroup; "" for nowhere
		files       cgroupFiles
		fail        error // of the cgroup's read
		noLayer     bool
		cpu         *runtime.CpuUsage
		mem         *runtime.MemoryUsage
		swap        *runtime.SwapUsage
		reads       int // of readAt
		readAt      string
	}{
		{name: "running, cgroup v2 with a memory limit", state: container.StateRunning,
			cgroupsPath: "/berth/berth-c1", hostPath: "/berth/berth-c1", files: v2,
			cpu: v2Cpu, mem: v2Mem, swap: v2Swap, reads: 1, readAt: "/berth/berth-c1"},
		{name: "running, cgroup v1 without a limit, a systemd scope", state: container.StateRunning,
			cgroupsPath: "kubepods-besteffort-pod1.slice:berth:c1", hostPath: scope, files: v1,
			cpu: v1Cpu, mem: v1Mem, swap: v1Swap, reads: 1, readAt: scope},
		{name: "created: no cgroup yet, the layer all the same", state: container.StateCreated,
			cgroupsPath: "/berth/berth-c1", reads: 1, readAt: "/berth/berth-c1"},
		{name: "cgroup unreadable: the layer all the same", state: container.StateRunning,
			cgroupsPath: "/berth/berth-c1", hostPath: "/berth/berth-c1", files: v2, fail: os.ErrPermission,
			reads: 1, readAt: "/berth/berth-c1"},
		{name: "exited: its cgroup is not read", state: container.StateExited,
			cgroupsPath: "/berth/berth-c1", hostPath: "/berth/berth-c1", files: v2, readAt: "/berth/berth-c1"},
		{name: "no runtime spec in the bundle", state: container.StateRunning,
			hostPath: "/berth/berth-c1", files: v2, readAt: "/berth/berth-c1"},
		{name: "writable layer not measurable", state: container.StateRunning,
			cgroupsPath: "/berth/berth-c1", hostPath: "/berth/berth-c1", files: v2, noLayer: true,
			cpu: v2Cpu, mem: v2Mem, swap: v2Swap, reads: 1, readAt: "/berth/berth-c1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, h, r := statsServer(t)
			statsContainer(t, s, "c1", "p1", tc.state, tc.cgroupsPath, map[string]string{"app": "web"})
			if tc.hostPath != "" {
				h.setCgroup(tc.hostPath, tc.files.at(at))
			}
			if tc.fail != nil {
				h.failCgroup(tc.hostPath, tc.fail)
			}
			if !tc.noLayer {
				r.setLayer("c1", 4096, 3)
			}
			before := time.Now()
			resp, err := s.ContainerStats(context.Background(), &runtime.ContainerStatsRequest{ContainerId: "c1"})
			if err != nil {
				t.Fatal(err)
			}
			checkLayerTime(t, resp.GetStats(), before, time.Now())
			want := &runtime.ContainerStats{
				Attributes: &runtime.ContainerAttributes{
					Id:          "c1",
					Metadata:    &runtime.ContainerMetadata{Name: "ctr-c1", Attempt: 1},
					Labels:      map[string]string{"app": "web"},
					Annotations: map[string]string{"note": "c1"},
				},
				Cpu: tc.cpu, Memory: tc.mem, Swap: tc.swap,
			}
			if !tc.noLayer {
				want.WritableLayer = &runtime.FilesystemUsage{
					FsId:      &runtime.FilesystemIdentifier{Mountpoint: r.dir},
					UsedBytes: u64(4096), InodesUsed: u64(3),
				}
			}
			diffProto(t, "stats", resp.GetStats(), want)
			if got := h.readsOf(tc.readAt); got != tc.reads {
				t.Errorf("cgroup %s read %d times, want %d", tc.readAt, got, tc.reads)
			}
		})
	}
}

func TestStatsErrors(t *testing.T) {
	s, _, _ := statsServer(t)
	statsPod(t, s, "pod-a1", "", nil)
	statsPod(t, s, "pod-b1", "", nil)
	statsContainer(t, s, "abc1x", "pod-a1", container.StateRunning, "/berth/berth-abc1x", nil)
	statsContainer(t, s, "abc2y", "pod-a1", container.StateRunning, "/berth/berth-abc2y", nil)
	ctrStats := func(id string) func() (string, error) {
		return func() (string, error) {
			resp, err := s.ContainerStats(context.Background(), &runtime.ContainerStatsRequest{ContainerId: id})
			return resp.GetStats().GetAttributes().GetId(), err
		}
	}
	podStats := func(id string) func() (string, error) {
		return func() (string, error) {
			resp, err := s.PodSandboxStats(context.Background(), &runtime.PodSandboxStatsRequest{PodSandboxId: id})
			return resp.GetStats().GetAttributes().GetId(), err
		}
	}
	for _, tc := range []struct {
		name    string
		call    func() (string, error)
		code    codes.Code
		mention string // in the error
		id      string // of the answer, when no error
	}{
		{"container by id", ctrStats("abc2y"), codes.OK, "", "abc2y"},
		{"container by unique prefix", ctrStats("abc1"), codes.OK, "", "abc1x"},
		{"container without id", ctrStats(""), codes.InvalidArgument, "container_id", ""},
		{"unknown container", ctrStats("nope"), codes.NotFound, "nope", ""},
		{"container prefix of two", ctrStats("abc"), codes.InvalidArgument, "more than one", ""},
		{"pod by id", podStats("pod-a1"), codes.OK, "", "pod-a1"},
		{"pod by unique prefix", podStats("pod-b"), codes.OK, "", "pod-b1"},
		{"pod without id", podStats(""), codes.InvalidArgument, "pod_sandbox_id", ""},
		{"unknown pod", podStats("nope"), codes.NotFound, "nope", ""},
		{"pod prefix of two", podStats("pod-"), codes.InvalidArgument, "pod_sandbox_id", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := tc.call()
			if code := grpcCodeOf(err); code != tc.code || !strings.Contains(fmt.Sprint(err), tc.mention) {
				t.Fatalf("err = %v (%s), want %s mentioning %q", err, code, tc.code, tc.mention)
			}
			if id != tc.id {
				t.Errorf("stats of %q, want %q", id, tc.id)
			}
		})
	}
}

// The kubelet takes usage_nano_cores from the runtime when it has one: the
// rate between a container's (or pod's) previous sample and this one.
func TestStatsCPURate(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	sample := func(nanos uint64, at time.Time) stats.Sample {
		return cgroupFiles{cpuNanos: nanos, memory: 1 << 20}.at(at)
	}
	rate := func(v uint64) *uint64 { return &v }
	for _, tc := range []struct {
		name      string
		samples   [2]stats.Sample
		nanoCores *uint64 // of the second reading; nil for none
	}{
		{"a quarter core over two seconds", [2]stats.Sample{sample(1_000_000_000, t0), sample(1_500_000_000, t0.Add(2*time.Second))}, rate(250_000_000)},
		{"one core busy", [2]stats.Sample{sample(3_000_000_000, t0), sample(4_000_000_000, t0.Add(time.Second))}, rate(1_000_000_000)},
		{"idle", [2]stats.Sample{sample(3_000_000_000, t0), sample(3_000_000_000, t0.Add(10*time.Second))}, rate(0)},
		{"counter reset: a cgroup made anew", [2]stats.Sample{sample(5_000_000_000, t0), sample(1_000_000_000, t0.Add(time.Second))}, nil},
		{"no time between the samples", [2]stats.Sample{sample(1_000_000_000, t0), sample(2_000_000_000, t0)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Pod and container share an id: their rates must not mix.
			s, h, _ := statsServer(t)
			statsPod(t, s, "x1", "/kubepods/podx1", nil)
			statsContainer(t, s, "x1", "p0", container.StateRunning, "/berth/berth-x1", nil)
			h.setCgroup("/berth/berth-x1", tc.samples[0], tc.samples[1])
			// The pod's own cgroup runs at twice the rate: twice the usages.
			double := func(smp stats.Sample) stats.Sample { smp.CPU.UsageNanos *= 2; return smp }
			h.setCgroup("/kubepods/podx1", double(tc.samples[0]), double(tc.samples[1]))

			var ctrCores, podCores []*runtime.UInt64Value
			for range 2 {
				c, err := s.ContainerStats(context.Background(), &runtime.ContainerStatsRequest{ContainerId: "x1"})
				if err != nil {
					t.Fatal(err)
				}
				p, err := s.PodSandboxStats(context.Background(), &runtime.PodSandboxStatsRequest{PodSandboxId: "x1"})
				if err != nil {
					t.Fatal(err)
				}
				ctrCores = append(ctrCores, c.GetStats().GetCpu().GetUsageNanoCores())
				podCores = append(podCores, p.GetStats().GetLinux().GetCpu().GetUsageNanoCores())
			}
			if ctrCores[0] != nil || podCores[0] != nil {
				t.Errorf("first samples have a rate: container %v, pod %v", ctrCores[0], podCores[0])
			}
			if tc.nanoCores == nil {
				if ctrCores[1] != nil || podCores[1] != nil {
					t.Errorf("rates container %v, pod %v; want none", ctrCores[1], podCores[1])
				}
				return
			}
			want := *tc.nanoCores
			if ctrCores[1] == nil || podCores[1] == nil || ctrCores[1].Value != want || podCores[1].Value != 2*want {
				t.Errorf("rates container %v, pod %v; want %d and %d", ctrCores[1], podCores[1], want, 2*want)
			}
		})
	}
}

func TestListContainerStatsFilter(t *testing.T) {
	s, _, _ := statsServer(t)
	for _, c := range []struct {
		id, pod string
		labels  map[string]string
	}{
		{"abc111", "pod-a", map[string]string{"app": "web"}},
		{"abc222", "pod-b", map[string]string{"app": "db"}},
		{"def333", "pod-a", map[string]string{"app": "web", "tier": "front"}},
		{"def444", "qod-c", nil},
	} {
		statsContainer(t, s, c.id, c.pod, container.StateRunning, "/berth/berth-"+c.id, c.labels)
	}
	for _, tc := range []struct {
		name   string
		filter *runtime.ContainerStatsFilter
		want   []string
	}{
		{"no filter", nil, []string{"abc111", "abc222", "def333", "def444"}},
		{"empty filter", &runtime.ContainerStatsFilter{}, []string{"abc111", "abc222", "def333", "def444"}},
		{"id", &runtime.ContainerStatsFilter{Id: "def333"}, []string{"def333"}},
		{"id prefix", &runtime.ContainerStatsFilter{Id: "abc"}, []string{"abc111", "abc222"}},
		{"pod id", &runtime.ContainerStatsFilter{PodSandboxId: "pod-a"}, []string{"abc111", "def333"}},
		{"pod id prefix", &runtime.ContainerStatsFilter{PodSandboxId: "pod-"}, []string{"abc111", "abc222", "def333"}},
		{"label", &runtime.ContainerStatsFilter{LabelSelector: map[string]string{"app": "web"}}, []string{"abc111", "def333"}},
		{"every label", &runtime.ContainerStatsFilter{LabelSelector: map[string]string{"app": "web", "tier": "front"}}, []string{"def333"}},
		{"id, pod and label", &runtime.ContainerStatsFilter{Id: "abc", PodSandboxId: "pod-a", LabelSelector: map[string]string{"app": "web"}}, []string{"abc111"}},
		{"label of none", &runtime.ContainerStatsFilter{LabelSelector: map[string]string{"app": "cache"}}, nil},
		{"id of none", &runtime.ContainerStatsFilter{Id: "zzz"}, nil},
		{"id longer than any", &runtime.ContainerStatsFilter{Id: "abc1111"}, nil},
		{"pod of none", &runtime.ContainerStatsFilter{PodSandboxId: "pod-z"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.ListContainerStats(context.Background(), &runtime.ListContainerStatsRequest{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range resp.GetStats() {
				got = append(got, st.GetAttributes().GetId())
				if st.GetAttributes().GetMetadata().GetName() != "ctr-"+st.GetAttributes().GetId() {
					t.Errorf("stats of %s carry metadata %v", st.GetAttributes().GetId(), st.GetAttributes().GetMetadata())
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("stats of %q, want %q", got, tc.want)
			}
		})
	}
}

func TestListPodSandboxStatsFilter(t *testing.T) {
	s, _, _ := statsServer(t)
	statsPod(t, s, "pod-a1", "", map[string]string{"app": "web"})
	statsPod(t, s, "pod-a2", "", map[string]string{"app": "db"})
	statsPod(t, s, "pod-b1", "", map[string]string{"app": "web", "tier": "front"})
	notReadyPod(t, s, "pod-c1")
	statsContainer(t, s, "x", "pod-a1", container.StateRunning, "/berth/berth-x", nil)
	statsContainer(t, s, "y", "pod-a1", container.StateExited, "/berth/berth-y", nil)
	statsContainer(t, s, "z", "pod-b1", container.StateRunning, "/berth/berth-z", nil)
	wantCtrs := map[string][]string{"pod-a1": {"x", "y"}, "pod-b1": {"z"}}
	for _, tc := range []struct {
		name   string
		filter *runtime.PodSandboxStatsFilter
		want   []string
	}{
		{"no filter: not ready pods too", nil, []string{"pod-a1", "pod-a2", "pod-b1", "pod-c1"}},
		{"id", &runtime.PodSandboxStatsFilter{Id: "pod-a2"}, []string{"pod-a2"}},
		{"id prefix", &runtime.PodSandboxStatsFilter{Id: "pod-a"}, []string{"pod-a1", "pod-a2"}},
		{"label", &runtime.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "web"}}, []string{"pod-a1", "pod-b1"}},
		{"id and label", &runtime.PodSandboxStatsFilter{Id: "pod-b", LabelSelector: map[string]string{"app": "web"}}, []string{"pod-b1"}},
		{"label of none", &runtime.PodSandboxStatsFilter{LabelSelector: map[string]string{"tier": "back"}}, nil},
		{"id of none", &runtime.PodSandboxStatsFilter{Id: "pod-d"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.ListPodSandboxStats(context.Background(), &runtime.ListPodSandboxStatsRequest{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, st := range resp.GetStats() {
				id := st.GetAttributes().GetId()
				got = append(got, id)
				var ctrs []string
				for _, c := range st.GetLinux().GetContainers() {
					ctrs = append(ctrs, c.GetAttributes().GetId())
				}
				slices.Sort(ctrs)
				if !slices.Equal(ctrs, wantCtrs[id]) {
					t.Errorf("pod %s has the stats of containers %q, want %q", id, ctrs, wantCtrs[id])
				}
				if md := st.GetAttributes().GetMetadata(); md.GetName() != id+"-name" || md.GetNamespace() != "default" {
					t.Errorf("pod %s carries metadata %v", id, md)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("stats of %q, want %q", got, tc.want)
			}
		})
	}
}

// A pod's totals are those of its own cgroup when it has one to itself,
// else the sum of its containers' and its infra container's.
func TestPodSandboxStatsTotals(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	mib := uint64(1 << 20)
	run1 := cgroupFiles{cpuNanos: 1_000_000_000, memory: 10 * mib, inactiveFile: 2 * mib, anon: 6 * mib, limit: 100 * mib, pids: 2}
	run2 := cgroupFiles{cpuNanos: 2_000_000_000, memory: 20 * mib, inactiveFile: 4 * mib, anon: 9 * mib, pids: 3}
	gone := cgroupFiles{cpuNanos: 7_000_000_000, memory: 70 * mib, pids: 7}
	infra := cgroupFiles{cpuNanos: 500_000_000, memory: 1 * mib, anon: 1 * mib, pids: 1}
	own := cgroupFiles{cpuNanos: 9_000_000_000, memory: 64 * mib, inactiveFile: 16 * mib, anon: 40 * mib, limit: 128 * mib, pids: 9}
	const slicePath = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice"

	type totals struct {
		cpu, workingSet, rss, procs uint64
		available                   *uint64
	}
	avail := func(v uint64) *uint64 { return &v }
	ownTotals := &totals{cpu: 9_000_000_000, workingSet: 48 * mib, rss: 40 * mib, procs: 9, available: avail(80 * mib)}
	// The parts' limits do not make a limit of the sum.
	sumTotals := &totals{cpu: 3_500_000_000, workingSet: 25 * mib, rss: 16 * mib, procs: 6}
	sumNoInfra := &totals{cpu: 3_000_000_000, workingSet: 24 * mib, rss: 15 * mib, procs: 5}

	for _, tc := range []struct {
		name       string
		systemd    bool
		parent     string  // the pod config's cgroup_parent
		recorded   *string // the pod's record of its parent, if not the server's
		shared     bool    // another pod has the same parent
		notReady   bool
		exitedOnly bool // the pod's only container has exited, and it has no infra
		want       *totals
		read       []string // pod cgroups read
		notRead    []string
	}{
		{name: "own cgroupfs parent: the pod's cgroup", parent: "/kubepods/besteffort/pod1",
			want: ownTotals, read: []string{"/kubepods/besteffort/pod1"}, notRead: []string{"/berth/berth-infra1"}},
		{name: "own cgroupfs parent, not clean", parent: "kubepods//besteffort/pod1/",
			want: ownTotals, read: []string{"/kubepods/besteffort/pod1"}},
		{name: "own systemd slice: the slice's cgroup", systemd: true, parent: "kubepods-besteffort-pod1.slice",
			want: ownTotals, read: []string{slicePath}},
		{name: "no parent asked: the sum with infra", want: sumTotals, notRead: []string{"/kubepods/besteffort/pod1"}},
		{name: "the default parent asked: the sum", parent: "/berth", want: sumTotals, notRead: []string{"/berth"}},
		{name: "the default slice asked: the sum", systemd: true, parent: "system.slice", want: sumTotals, notRead: []string{"/system.slice"}},
		{name: "a parent another pod shares: the sum", parent: "/kubepods/besteffort/pod1", shared: true,
			want: sumTotals, notRead: []string{"/kubepods/besteffort/pod1"}},
		{name: "a parent the pod was not made with: the sum", parent: "/kubepods/besteffort/pod1", recorded: new(string),
			want: sumTotals, notRead: []string{"/kubepods/besteffort/pod1"}},
		{name: "own parent without a cgroup: the sum", parent: "/kubepods/besteffort/pod2",
			want: sumTotals, read: []string{"/kubepods/besteffort/pod2"}},
		{name: "not a systemd slice: the sum", systemd: true, parent: "pod1", want: sumTotals},
		{name: "not ready: the containers' sum, no infra", notReady: true, want: sumNoInfra, notRead: []string{"/berth/berth-infra1"}},
		{name: "nothing running: no totals", exitedOnly: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, h, _ := statsServer(t)
			if tc.systemd {
				s.config.Runtime.CgroupManager = oci.SystemdManager
			}
			for path, f := range map[string]cgroupFiles{
				"/berth/berth-run1": run1, "/berth/berth-run2": run2, "/berth/berth-gone": gone,
				"/berth/berth-infra1": infra, "/kubepods/besteffort/pod1": own, slicePath: own,
				"/berth": own, "/system.slice": own,
			} {
				h.setCgroup(path, f.at(at))
			}
			var sb *sandbox.Sandbox
			if tc.notReady {
				sb = notReadyPod(t, s, "p1")
			} else {
				sb = statsPod(t, s, "p1", tc.parent, map[string]string{"app": "web"})
			}
			if tc.recorded != nil {
				sb.CgroupParent = *tc.recorded
			}
			if tc.shared {
				statsPod(t, s, "p2", tc.parent, nil)
			}
			ctrs := []string{"gone"}
			statsContainer(t, s, "gone", "p1", container.StateExited, "/berth/berth-gone", nil)
			if !tc.exitedOnly {
				ctrs = append(ctrs, "run1", "run2")
				statsContainer(t, s, "run1", "p1", container.StateRunning, "/berth/berth-run1", nil)
				statsContainer(t, s, "run2", "p1", container.StateRunning, "/berth/berth-run2", nil)
				sb.InfraID, sb.InfraBundle = "infra1", writeBundle(t, "/berth/berth-infra1")
			}

			resp, err := s.PodSandboxStats(context.Background(), &runtime.PodSandboxStatsRequest{PodSandboxId: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			linux := resp.GetStats().GetLinux()
			if tc.want == nil {
				if linux.GetCpu() != nil || linux.GetMemory() != nil || linux.GetProcess() != nil {
					t.Errorf("totals of a pod with nothing running: %v %v %v", linux.GetCpu(), linux.GetMemory(), linux.GetProcess())
				}
			} else {
				w := tc.want
				diffProto(t, "cpu", linux.GetCpu(), &runtime.CpuUsage{Timestamp: at.UnixNano(), UsageCoreNanoSeconds: u64(w.cpu)})
				if m := linux.GetMemory(); m.GetWorkingSetBytes().GetValue() != w.workingSet || m.GetRssBytes().GetValue() != w.rss || m.GetTimestamp() != at.UnixNano() {
					t.Errorf("memory = %v, want working set %d, rss %d at %d", m, w.workingSet, w.rss, at.UnixNano())
				}
				if got := linux.GetMemory().GetAvailableBytes(); (got == nil) != (w.available == nil) || (got != nil && got.Value != *w.available) {
					t.Errorf("available = %v, want %v", got, w.available)
				}
				diffProto(t, "process", linux.GetProcess(), &runtime.ProcessUsage{Timestamp: at.UnixNano(), ProcessCount: u64(w.procs)})
			}
			if linux.GetNetwork() != nil {
				t.Errorf("a pod on the host's network has network stats: %v", linux.GetNetwork())
			}
			got := map[string]*runtime.ContainerStats{}
			for _, c := range linux.GetContainers() {
				got[c.GetAttributes().GetId()] = c
			}
			if ids := slices.Sorted(maps.Keys(got)); !slices.Equal(ids, ctrs) {
				t.Fatalf("container stats of %q, want %q", ids, ctrs)
			}
			if got["gone"].GetCpu() != nil || got["gone"].GetMemory() != nil {
				t.Errorf("an exited container has cgroup stats: %v", got["gone"])
			}
			if !tc.exitedOnly && got["run2"].GetMemory().GetWorkingSetBytes().GetValue() != 16*mib {
				t.Errorf("run2's memory = %v, want a working set of 16 MiB", got["run2"].GetMemory())
			}
			for _, p := range tc.read {
				if h.readsOf(p) != 1 {
					t.Errorf("cgroup %s read %d times, want once", p, h.readsOf(p))
				}
			}
			for _, p := range slices.Concat(tc.notRead, []string{"/berth/berth-gone"}) {
				if h.readsOf(p) != 0 {
					t.Errorf("cgroup %s read %d times, want never", p, h.readsOf(p))
				}
			}
			if attrs := resp.GetStats().GetAttributes(); attrs.GetId() != "p1" || attrs.GetMetadata().GetName() != "p1-name" {
				t.Errorf("attributes = %v", attrs)
			}
		})
	}
}

// A pod's network counters are those of its network namespace, eth0 the
// default interface; a namespace that cannot be read leaves them out.
func TestPodSandboxStatsNetwork(t *testing.T) {
	lo := stats.Interface{Name: "lo", RxBytes: 840, RxPackets: 10, TxBytes: 840, TxPackets: 10}
	eth0 := stats.Interface{Name: "eth0", RxBytes: 1_296_000, RxErrors: 2, TxBytes: 796_000, TxErrors: 5}
	net1 := stats.Interface{Name: "net1", RxBytes: 7, TxBytes: 9, TxErrors: 1}
	usage := func(i stats.Interface) *runtime.NetworkInterfaceUsage {
		return &runtime.NetworkInterfaceUsage{Name: i.Name, RxBytes: u64(i.RxBytes), RxErrors: u64(i.RxErrors), TxBytes: u64(i.TxBytes), TxErrors: u64(i.TxErrors)}
	}
	const netns = "/var/run/netns/berth-p1"
	for _, tc := range []struct {
		name     string
		netns    string // the pod's; "" for the host's
		notReady bool
		ifs      []stats.Interface // in the namespace; nil for one that cannot be joined
		want     *runtime.NetworkUsage
		reads    int
	}{
		{name: "eth0 is the default", netns: netns, ifs: []stats.Interface{lo, eth0, net1}, reads: 1,
			want: &runtime.NetworkUsage{DefaultInterface: usage(eth0), Interfaces: []*runtime.NetworkInterfaceUsage{usage(lo), usage(eth0), usage(net1)}}},
		{name: "no eth0, no default", netns: netns, ifs: []stats.Interface{lo, net1}, reads: 1,
			want: &runtime.NetworkUsage{Interfaces: []*runtime.NetworkInterfaceUsage{usage(lo), usage(net1)}}},
		{name: "a namespace that cannot be joined", netns: netns, reads: 1},
		{name: "the host's network: not read", ifs: []stats.Interface{lo, eth0}},
		{name: "not ready: not read", netns: netns, notReady: true, ifs: []stats.Interface{lo, eth0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, h, _ := statsServer(t)
			var sb *sandbox.Sandbox
			if tc.notReady {
				sb = notReadyPod(t, s, "p1")
			} else {
				sb = statsPod(t, s, "p1", "", nil)
			}
			sb.NS = &namespaces.Pinned{PodID: "p1", Net: tc.netns}
			if tc.ifs != nil {
				h.setNetNS(tc.netns, tc.ifs...)
			}
			before := time.Now()
			resp, err := s.PodSandboxStats(context.Background(), &runtime.PodSandboxStatsRequest{PodSandboxId: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			after := time.Now()
			got := resp.GetStats().GetLinux().GetNetwork()
			if got != nil {
				if got.Timestamp < before.UnixNano() || got.Timestamp > after.UnixNano() {
					t.Errorf("network read at %d, not during the call [%d, %d]", got.Timestamp, before.UnixNano(), after.UnixNano())
				}
				got.Timestamp = 0
			}
			if tc.want == nil {
				if got != nil {
					t.Errorf("network = %v, want none", got)
				}
			} else {
				diffProto(t, "network", got, tc.want)
			}
			if n := h.readsOf("netns " + tc.netns); n != tc.reads {
				t.Errorf("netns read %d times, want %d", n, tc.reads)
			}
		})
	}
}

// With the production readers: a cgroup that does not exist and a network
// namespace that cannot be read are left out of the answer, which still
// has the rest; a namespace this process may join is read for real.
func TestStatsWithHostReaders(t *testing.T) {
	s, _, r := statsServer(t)
	s.stats = newStatsState()
	missing := fmt.Sprintf("/berth-unit-test-%d-no-such-cgroup", os.Getpid())
	sb := statsPod(t, s, "p1", "", nil)
	sb.NS = &namespaces.Pinned{PodID: "p1", Net: filepath.Join(t.TempDir(), "no-such-netns")}
	sb.InfraID, sb.InfraBundle = "infra1", writeBundle(t, missing+"/berth-infra1")
	own := statsPod(t, s, "p2", missing+"/pod2", nil)
	own.NS = &namespaces.Pinned{PodID: "p2", Net: "/proc/self/ns/net"}
	statsContainer(t, s, "c1", "p1", container.StateRunning, missing+"/berth-c1", nil)
	r.setLayer("c1", 8192, 5)

	c, err := s.ContainerStats(context.Background(), &runtime.ContainerStatsRequest{ContainerId: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	if st := c.GetStats(); st.GetCpu() != nil || st.GetMemory() != nil || st.GetSwap() != nil {
		t.Errorf("a container without a cgroup has cgroup stats: %v", st)
	}
	if l := c.GetStats().GetWritableLayer(); l.GetUsedBytes().GetValue() != 8192 || l.GetInodesUsed().GetValue() != 5 {
		t.Errorf("writable layer = %v, want 8192 bytes in 5 inodes", l)
	}

	p1, err := s.PodSandboxStats(context.Background(), &runtime.PodSandboxStatsRequest{PodSandboxId: "p1"})
	if err != nil {
		t.Fatal(err)
	}
	if l := p1.GetStats().GetLinux(); l.GetCpu() != nil || l.GetNetwork() != nil || len(l.GetContainers()) != 1 {
		t.Errorf("pod without cgroups or a readable netns = %v", l)
	}

	// The handler's reading of this process's own namespace is what
	// reading it directly gives: its interfaces where this process may
	// join a namespace (CAP_SYS_ADMIN), none where it may not.
	direct, derr := stats.ReadNetNS("/proc/self/ns/net")
	p2, err := s.PodSandboxStats(context.Background(), &runtime.PodSandboxStatsRequest{PodSandboxId: "p2"})
	if err != nil {
		t.Fatal(err)
	}
	l := p2.GetStats().GetLinux()
	if l.GetCpu() != nil {
		t.Errorf("pod whose own cgroup does not exist has totals: %v", l.GetCpu())
	}
	var want, got []string
	for _, i := range direct {
		want = append(want, i.Name)
	}
	for _, i := range l.GetNetwork().GetInterfaces() {
		got = append(got, i.GetName())
	}
	if derr == nil && len(want) == 0 {
		t.Fatal("this process's network namespace has no interfaces")
	}
	if !slices.Equal(got, want) || (derr != nil) != (l.GetNetwork() == nil) {
		t.Errorf("interfaces %q, want %q (direct read: %v)", got, want, derr)
	}
}

func TestListStatsCanceled(t *testing.T) {
	s, _, _ := statsServer(t)
	statsPod(t, s, "p1", "", nil)
	statsContainer(t, s, "c1", "p1", container.StateRunning, "/berth/berth-c1", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, call := range map[string]func() error{
		"ListContainerStats": func() error {
			_, err := s.ListContainerStats(ctx, &runtime.ListContainerStatsRequest{})
			return err
		},
		"ListPodSandboxStats": func() error {
			_, err := s.ListPodSandboxStats(ctx, &runtime.ListPodSandboxStatsRequest{})
			return err
		},
		"ListPodSandboxMetrics": func() error {
			_, err := s.ListPodSandboxMetrics(ctx, &runtime.ListPodSandboxMetricsRequest{})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			if err := call(); grpcCodeOf(err) != codes.Canceled {
				t.Errorf("err = %v, want Canceled", err)
			}
		})
	}
}

// Concurrent stats calls share the rates, paths and layer cache safely,
// and measure each writable layer once within its TTL.
func TestStatsConcurrent(t *testing.T) {
	s, h, r := statsServer(t)
	at := time.Unix(1_700_000_000, 0)
	var ids []string
	for p := range 3 {
		pod := fmt.Sprintf("p%d", p)
		statsPod(t, s, pod, "", nil)
		for c := range 2 {
			id := fmt.Sprintf("%s-c%d", pod, c)
			ids = append(ids, id)
			statsContainer(t, s, id, pod, container.StateRunning, "/berth/berth-"+id, nil)
			h.setCgroup("/berth/berth-"+id, cgroupFiles{cpuNanos: 1_000_000_000, memory: 1 << 20}.at(at))
			r.setLayer(id, 4096, 1)
		}
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				pods, err := s.ListPodSandboxStats(context.Background(), &runtime.ListPodSandboxStatsRequest{})
				if err != nil || len(pods.GetStats()) != 3 {
					t.Errorf("ListPodSandboxStats = %d pods, %v; want 3", len(pods.GetStats()), err)
				}
				ctrs, err := s.ListContainerStats(context.Background(), &runtime.ListContainerStatsRequest{})
				if err != nil || len(ctrs.GetStats()) != 6 {
					t.Errorf("ListContainerStats = %d containers, %v; want 6", len(ctrs.GetStats()), err)
				}
				for _, c := range ctrs.GetStats() {
					if c.GetMemory().GetUsageBytes().GetValue() != 1<<20 || c.GetWritableLayer().GetUsedBytes().GetValue() != 4096 {
						t.Errorf("stats of %s = %v", c.GetAttributes().GetId(), c)
					}
				}
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if n := r.measuredOf(id); n != 1 {
			t.Errorf("writable layer of %s measured %d times within its TTL, want once", id, n)
		}
	}
}

func TestCountByState(t *testing.T) {
	for _, tc := range []struct {
		name       string
		containers []container.State
		readyPods  int
		otherPods  int
		wantCtrs   map[string]int
		wantPods   map[string]int
	}{
		{name: "nothing: every state at zero",
			wantCtrs: map[string]int{"created": 0, "running": 0, "exited": 0},
			wantPods: map[string]int{"ready": 0, "notready": 0}},
		{name: "some of each",
			containers: []container.State{container.StateCreated, container.StateExited, container.StateRunning, container.StateExited, container.StateCreated, container.StateExited},
			readyPods:  2, otherPods: 1,
			wantCtrs: map[string]int{"created": 2, "running": 1, "exited": 3},
			wantPods: map[string]int{"ready": 2, "notready": 1}},
		{name: "only running, only ready",
			containers: []container.State{container.StateRunning, container.StateRunning},
			readyPods:  1,
			wantCtrs:   map[string]int{"created": 0, "running": 2, "exited": 0},
			wantPods:   map[string]int{"ready": 1, "notready": 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, _ := statsServer(t)
			for i := range tc.readyPods {
				statsPod(t, s, fmt.Sprintf("ready%d", i), "", nil)
			}
			for i := range tc.otherPods {
				notReadyPod(t, s, fmt.Sprintf("other%d", i))
			}
			for i, st := range tc.containers {
				addContainer(t, s, fmt.Sprintf("c%d", i), "ready0", st)
			}
			ctrs, pods := s.CountByState()
			if !maps.Equal(ctrs, tc.wantCtrs) || !maps.Equal(pods, tc.wantPods) {
				t.Errorf("CountByState = %v, %v; want %v, %v", ctrs, pods, tc.wantCtrs, tc.wantPods)
			}
		})
	}
}

func TestListMetricDescriptors(t *testing.T) {
	s, _, _ := statsServer(t)
	resp, err := s.ListMetricDescriptors(context.Background(), &runtime.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string][]string{}
	for _, d := range resp.GetDescriptors() {
		if _, dup := keys[d.GetName()]; dup || d.GetHelp() == "" {
			t.Errorf("descriptor %v: repeated or without help", d)
		}
		keys[d.GetName()] = d.GetLabelKeys()
	}
	base := []string{"container", "id", "image", "name", "namespace", "pod"}
	for name, want := range map[string][]string{
		"container_cpu_usage_seconds_total":     append(slices.Clone(base), "cpu"),
		"container_memory_working_set_bytes":    base,
		"container_network_receive_bytes_total": append(slices.Clone(base), "interface"),
		"container_fs_usage_bytes":              append(slices.Clone(base), "device"),
		"container_memory_failures_total":       append(slices.Clone(base), "failure_type", "scope"),
	} {
		if got, ok := keys[name]; !ok || !slices.Equal(got, want) {
			t.Errorf("descriptor %s has label keys %q (listed %v), want %q", name, got, ok, want)
		}
	}
}

// metric finds the series of name whose label values end with extra.
func metric(ms []*runtime.Metric, name string, extra ...string) (*runtime.Metric, bool) {
	for _, m := range ms {
		if m.GetName() == name && len(m.GetLabelValues()) >= len(extra) &&
			slices.Equal(m.GetLabelValues()[len(m.GetLabelValues())-len(extra):], extra) {
			return m, true
		}
	}
	return nil, false
}

func TestListPodSandboxMetrics(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	mib := uint64(1 << 20)
	for _, tc := range []struct {
		name       string
		noLayersFS bool // the layers' directory is gone: no filesystem to report
	}{
		{name: "with the layers' filesystem"},
		{name: "without a filesystem for the layers", noLayersFS: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, h, r := statsServer(t)
			if tc.noLayersFS {
				r.dir = filepath.Join(t.TempDir(), "gone")
			}
			sb := statsPod(t, s, "p1", "/kubepods/pod1", nil)
			sb.NS = &namespaces.Pinned{PodID: "p1", Net: "/var/run/netns/p1"}
			h.setNetNS("/var/run/netns/p1",
				stats.Interface{Name: "lo", RxBytes: 100},
				stats.Interface{Name: "eth0", RxBytes: 5000, RxPackets: 40, TxBytes: 3000, TxDropped: 2})
			h.setCgroup("/kubepods/pod1", cgroupFiles{cpuNanos: 9_000_000_000, memory: 64 * mib, inactiveFile: 16 * mib, pids: 9}.at(at))
			notReadyPod(t, s, "p2")
			statsContainer(t, s, "p2-c", "p2", container.StateRunning, "/berth/berth-p2-c", nil)

			web := ctrStatsConfig("web", nil)
			web.Linux = &runtime.LinuxContainerConfig{Resources: &runtime.LinuxContainerResources{CpuShares: 512, CpuQuota: 50_000, CpuPeriod: 100_000, MemoryLimitInBytes: int64(256 * mib)}}
			webCtr := addContainerWith(t, s, "web", "p1", web, container.StateRunning)
			webCtr.Bundle = writeBundle(t, "/kubepods/pod1/berth-web")
			h.setCgroup("/kubepods/pod1/berth-web", cgroupFiles{cpuNanos: 2_500_000_000, memory: 30 * mib, inactiveFile: 12 * mib, pids: 3}.at(at))
			r.setLayer("web", 4096, 3)
			statsContainer(t, s, "side", "p1", container.StateCreated, "/kubepods/pod1/berth-side", nil)
			statsContainer(t, s, "init", "p1", container.StateExited, "/kubepods/pod1/berth-init", nil)

			resp, err := s.ListPodSandboxMetrics(context.Background(), &runtime.ListPodSandboxMetricsRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.GetPodMetrics()) != 1 || resp.GetPodMetrics()[0].GetPodSandboxId() != "p1" {
				t.Fatalf("metrics of %v, want of the ready pod p1 only", resp.GetPodMetrics())
			}
			pm := resp.GetPodMetrics()[0]

			// Every series matches its descriptor.
			desc, _ := s.ListMetricDescriptors(context.Background(), &runtime.ListMetricDescriptorsRequest{})
			nkeys := map[string]int{}
			for _, d := range desc.GetDescriptors() {
				nkeys[d.GetName()] = len(d.GetLabelKeys())
			}
			all := slices.Clone(pm.GetMetrics())
			for _, cm := range pm.GetContainerMetrics() {
				all = append(all, cm.GetMetrics()...)
			}
			for _, m := range all {
				if n, ok := nkeys[m.GetName()]; !ok || n != len(m.GetLabelValues()) {
					t.Errorf("metric %s has %d label values; its descriptor (listed %v) %d keys", m.GetName(), len(m.GetLabelValues()), ok, n)
				}
			}

			podLabels := []string{"", "p1", "", sb.Name, "default", "p1-name"}
			for _, want := range []struct {
				name  string
				extra []string
				value uint64
			}{
				{"container_cpu_usage_seconds_total", []string{"total"}, 9},
				{"container_memory_working_set_bytes", nil, 48 * mib},
				{"container_processes", nil, 9},
				{"container_network_receive_bytes_total", []string{"eth0"}, 5000},
				{"container_network_receive_packets_total", []string{"eth0"}, 40},
				{"container_network_transmit_bytes_total", []string{"eth0"}, 3000},
				{"container_network_transmit_packets_dropped_total", []string{"eth0"}, 2},
			} {
				m, ok := metric(pm.GetMetrics(), want.name, want.extra...)
				if !ok || m.GetValue().GetValue() != want.value || !slices.Equal(m.GetLabelValues()[:6], podLabels) {
					t.Errorf("pod metric %s%q = %v, want %d labelled %q", want.name, want.extra, m, want.value, podLabels)
				}
			}
			if m, ok := metric(pm.GetMetrics(), "container_network_receive_bytes_total", "lo"); ok {
				t.Errorf("the loopback is reported: %v", m)
			}

			ctrs := map[string][]*runtime.Metric{}
			for _, cm := range pm.GetContainerMetrics() {
				ctrs[cm.GetContainerId()] = cm.GetMetrics()
			}
			if ids := slices.Sorted(maps.Keys(ctrs)); !slices.Equal(ids, []string{"side", "web"}) {
				t.Fatalf("metrics of containers %q, want of side and web (not the exited init)", ids)
			}
			webLabels := []string{"ctr-web", "web", "busybox", "name-web", "default", "p1-name"}
			wantWeb := []struct {
				name  string
				extra []string
				value uint64
			}{
				{"container_cpu_usage_seconds_total", []string{"total"}, 2},
				{"container_memory_working_set_bytes", nil, 18 * mib},
				{"container_memory_usage_bytes", nil, 30 * mib},
				{"container_processes", nil, 3},
				{"container_last_seen", nil, uint64(at.Unix())},
				{"container_start_time_seconds", nil, uint64(webCtr.Status().StartedAt.Unix())},
				{"container_spec_cpu_shares", nil, 512},
				{"container_spec_cpu_quota", nil, 50_000},
				{"container_spec_cpu_period", nil, 100_000},
				{"container_spec_memory_limit_bytes", nil, 256 * mib},
			}
			fsMetrics := []string{"container_fs_usage_bytes", "container_fs_inodes_total", "container_fs_inodes_free", "container_fs_limit_bytes"}
			if !tc.noLayersFS {
				fs, err := stats.FilesystemOf(r.dir)
				if err != nil {
					t.Fatal(err)
				}
				wantWeb = append(wantWeb,
					struct {
						name  string
						extra []string
						value uint64
					}{"container_fs_usage_bytes", []string{fs.Device}, 4096},
					struct {
						name  string
						extra []string
						value uint64
					}{"container_fs_limit_bytes", []string{fs.Device}, fs.CapacityBytes})
			}
			for _, want := range wantWeb {
				m, ok := metric(ctrs["web"], want.name, want.extra...)
				if !ok || m.GetValue().GetValue() != want.value || !slices.Equal(m.GetLabelValues()[:6], webLabels) {
					t.Errorf("web's %s%q = %v, want %d labelled %q", want.name, want.extra, m, want.value, webLabels)
				}
			}
			for _, name := range fsMetrics {
				if m, ok := metric(ctrs["web"], name); ok == tc.noLayersFS {
					t.Errorf("web's %s = %v, reported %v; want reported %v", name, m, ok, !tc.noLayersFS)
				}
			}
			// side was created, not started: no cgroup, no start time, no
			// measurable layer, no resources.
			if len(ctrs["side"]) != 0 {
				t.Errorf("a created container without a layer has metrics: %v", ctrs["side"])
			}
		})
	}
}
