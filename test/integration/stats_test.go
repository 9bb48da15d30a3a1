package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// statsRow finds the row of id in crictl's stats table and returns its
// columns (crictl stats: ID NAME CPU% MEM DISK INODES SWAP; crictl statsp:
// NAME ID CPU% MEM).
func statsRow(t *testing.T, table, id string) []string {
	t.Helper()
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		for _, c := range f {
			if len(c) >= 12 && strings.HasPrefix(id, c) {
				return f
			}
		}
	}
	t.Fatalf("no row for %s in:\n%s", id, table)
	return nil
}

func percent(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("CPU %% column %q: %v", s, err)
	}
	return v
}

// A crictl session: a pod with a busy container; crictl stats and statsp
// show its CPU and memory, statsp the pod's traffic after the host pinged
// it, and the CRI metrics carry the same numbers under cAdvisor's names.
func TestStatsOfABusyPod(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "busy", map[string]any{"labels": map[string]string{"app": "busy"}}, "busybox")
	const mib = 1 << 20
	id := b.runContainer(t, podID, podFile, "spin", "busybox", map[string]any{
		"command": []string{"sh", "-c", "head -c 2097152 /dev/zero > /scratch; while :; do :; done"},
		"labels":  map[string]string{"role": "spinner"},
		"linux":   map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 64 * mib}},
	})
	idle := b.runContainer(t, podID, podFile, "idle", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	// The spinner spins once its scratch file is whole. Measure nothing
	// before: the daemon keeps a layer's usage for a few seconds.
	scratchWhole := func() bool {
		resp, err := b.runtime.ExecSync(ctxT(t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "test $(wc -c < /scratch) -eq 2097152"}, Timeout: 30})
		return err == nil && resp.GetExitCode() == 0
	}
	if !waitFor(scratchWhole) {
		t.Fatal("the spinner never wrote its 2 MiB scratch file")
	}
	spinner := b.inspect(t, id).Info.Pid

	// crictl stats samples twice, a second apart, and prints the CPU use
	// in between as a percentage of one core.
	row := statsRow(t, b.mustCrictl(t, "stats", id), id)
	t.Logf("crictl stats: %v", row)
	if cpu := percent(t, row[2]); cpu < 20 {
		t.Errorf("crictl stats: CPU %.2f%% for a busy loop, want most of a core\n%v", cpu, row)
	}
	if row[3] == "0B" {
		t.Errorf("crictl stats: no memory for a running container: %v", row)
	}

	// The same through the CRI, with what the table leaves out.
	ctx := ctxT(t)
	first, err := b.runtime.ContainerStats(ctx, &runtime.ContainerStatsRequest{ContainerId: id})
	if err != nil {
		t.Fatalf("ContainerStats: %v", err)
	}
	// usage_nano_cores is the rate between two samples: the second waits
	// until the spinner has run a tenth of a CPU-second since the first.
	waitCPU(t, spinner, 100*time.Millisecond)
	resp, err := b.runtime.ContainerStats(ctx, &runtime.ContainerStatsRequest{ContainerId: id[:12]})
	if err != nil {
		t.Fatalf("ContainerStats by prefix: %v", err)
	}
	st := resp.GetStats()
	cpu, mem, layer := st.GetCpu(), st.GetMemory(), st.GetWritableLayer()
	switch {
	case st.GetAttributes().GetId() != id || st.GetAttributes().GetMetadata().GetName() != "spin" || st.GetAttributes().GetLabels()["role"] != "spinner":
		t.Errorf("attributes = %v", st.GetAttributes())
	case cpu.GetUsageCoreNanoSeconds().GetValue() <= first.GetStats().GetCpu().GetUsageCoreNanoSeconds().GetValue():
		t.Errorf("cumulative CPU did not grow: %v then %v", first.GetStats().GetCpu(), cpu)
	case cpu.GetUsageNanoCores().GetValue() < 200_000_000:
		t.Errorf("usage_nano_cores = %v, want most of a core", cpu.GetUsageNanoCores())
	case cpu.GetTimestamp() <= first.GetStats().GetCpu().GetTimestamp():
		t.Errorf("CPU timestamp did not move: %d then %d", first.GetStats().GetCpu().GetTimestamp(), cpu.GetTimestamp())
	case mem.GetWorkingSetBytes().GetValue() == 0 || mem.GetUsageBytes().GetValue() < mem.GetWorkingSetBytes().GetValue():
		t.Errorf("memory = %v", mem)
	case mem.GetAvailableBytes().GetValue() != 64*mib-mem.GetWorkingSetBytes().GetValue():
		t.Errorf("available = %v, want the 64 MiB limit less the working set %v", mem.GetAvailableBytes(), mem.GetWorkingSetBytes())
	case mem.GetPageFaults().GetValue() == 0:
		t.Errorf("no page faults: %v", mem)
	case layer.GetUsedBytes().GetValue() < 2*mib || layer.GetInodesUsed().GetValue() == 0 || layer.GetFsId().GetMountpoint() == "":
		t.Errorf("writable layer = %v, want the 2 MiB scratch file", layer)
	}

	// Filters: id prefix, pod id, label selector; unknown ids.
	for _, tc := range []struct {
		name   string
		filter *runtime.ContainerStatsFilter
		want   []string
	}{
		{"all", nil, []string{id, idle}},
		{"id prefix", &runtime.ContainerStatsFilter{Id: idle[:10]}, []string{idle}},
		{"pod", &runtime.ContainerStatsFilter{PodSandboxId: podID}, []string{id, idle}},
		{"label", &runtime.ContainerStatsFilter{LabelSelector: map[string]string{"role": "spinner"}}, []string{id}},
		{"other pod", &runtime.ContainerStatsFilter{PodSandboxId: "f00"}, nil},
		{"unknown id", &runtime.ContainerStatsFilter{Id: "f00"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := b.runtime.ListContainerStats(ctx, &runtime.ListContainerStatsRequest{Filter: tc.filter})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range resp.GetStats() {
				got = append(got, s.GetAttributes().GetId())
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("ids = %v, want %v", got, tc.want)
			}
		})
	}
	_, err = b.runtime.ContainerStats(ctx, &runtime.ContainerStatsRequest{ContainerId: "f00"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "f00") {
		t.Errorf("ContainerStats of an unknown id = %v, want NotFound naming it", err)
	}
	_, err = b.runtime.PodSandboxStats(ctx, &runtime.PodSandboxStatsRequest{PodSandboxId: "f00"})
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "f00") {
		t.Errorf("PodSandboxStats of an unknown id = %v, want NotFound naming it", err)
	}

	// Traffic from the host to the pod, then the pod's stats.
	ip := b.inspectp(t, podID).Status.Network.IP
	if out, err := exec.Command("ping", "-c", "3", "-i", "0.2", "-W", "2", ip).CombinedOutput(); err != nil {
		t.Fatalf("ping pod at %s: %v\n%s", ip, err, out)
	}
	prow := statsRow(t, b.mustCrictl(t, "statsp", podID), podID)
	t.Logf("crictl statsp: %v", prow)
	if cpu := percent(t, prow[2]); cpu < 20 || prow[3] == "0B" {
		t.Errorf("crictl statsp: %v, want the busy container's CPU and some memory", prow)
	}
	presp, err := b.runtime.PodSandboxStats(ctx, &runtime.PodSandboxStatsRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatalf("PodSandboxStats: %v", err)
	}
	linux := presp.GetStats().GetLinux()
	eth0 := linux.GetNetwork().GetDefaultInterface()
	var names []string
	for _, i := range linux.GetNetwork().GetInterfaces() {
		names = append(names, i.GetName())
	}
	switch {
	case presp.GetStats().GetAttributes().GetId() != podID || presp.GetStats().GetAttributes().GetLabels()["app"] != "busy":
		t.Errorf("pod attributes = %v", presp.GetStats().GetAttributes())
	case eth0.GetName() != "eth0" || eth0.GetRxBytes().GetValue() < 3*84 || eth0.GetTxBytes().GetValue() < 3*84:
		t.Errorf("eth0 after 3 pings = %v, want at least 3 echo requests in and 3 replies out", eth0)
	case !strings.Contains(fmt.Sprint(names), "lo") || !strings.Contains(fmt.Sprint(names), "eth0"):
		t.Errorf("interfaces = %v, want lo and eth0", names)
	case linux.GetCpu().GetUsageCoreNanoSeconds().GetValue() < cpu.GetUsageCoreNanoSeconds().GetValue():
		t.Errorf("pod CPU %v is less than its busy container's %v", linux.GetCpu(), cpu)
	case linux.GetMemory().GetWorkingSetBytes().GetValue() == 0:
		t.Errorf("pod memory = %v", linux.GetMemory())
	case linux.GetProcess().GetProcessCount().GetValue() < 2:
		t.Errorf("pod processes = %v, want the spinner and the sleeper", linux.GetProcess())
	case len(linux.GetContainers()) != 2:
		t.Errorf("pod lists %d containers, want 2", len(linux.GetContainers()))
	}
	for _, tc := range []struct {
		name   string
		filter *runtime.PodSandboxStatsFilter
		want   int
	}{
		{"all", nil, 1},
		{"id prefix", &runtime.PodSandboxStatsFilter{Id: podID[:8]}, 1},
		{"label", &runtime.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "busy"}}, 1},
		{"other label", &runtime.PodSandboxStatsFilter{LabelSelector: map[string]string{"app": "web"}}, 0},
	} {
		resp, err := b.runtime.ListPodSandboxStats(ctx, &runtime.ListPodSandboxStatsRequest{Filter: tc.filter})
		if err != nil || len(resp.GetStats()) != tc.want {
			t.Errorf("ListPodSandboxStats %s: %d pods, %v; want %d", tc.name, len(resp.GetStats()), err, tc.want)
		}
	}

	// CRI metrics: cAdvisor names, one label value per key.
	descs, err := b.runtime.ListMetricDescriptors(ctx, &runtime.ListMetricDescriptorsRequest{})
	if err != nil {
		t.Fatalf("ListMetricDescriptors: %v", err)
	}
	keys := map[string]int{}
	for _, d := range descs.GetDescriptors() {
		keys[d.GetName()] = len(d.GetLabelKeys())
	}
	metrics, err := b.runtime.ListPodSandboxMetrics(ctx, &runtime.ListPodSandboxMetricsRequest{})
	if err != nil || len(metrics.GetPodMetrics()) != 1 {
		t.Fatalf("ListPodSandboxMetrics = %v, %v", metrics, err)
	}
	pm := metrics.GetPodMetrics()[0]
	values := map[string]uint64{} // name/id[/interface] -> value
	check := func(ms []*runtime.Metric) {
		for _, m := range ms {
			if n, ok := keys[m.GetName()]; !ok || n != len(m.GetLabelValues()) {
				t.Errorf("metric %s: %d label values, descriptor has %d keys (known %v)", m.GetName(), len(m.GetLabelValues()), n, ok)
				continue
			}
			key := m.GetName() + "/" + m.GetLabelValues()[1]
			if strings.HasPrefix(m.GetName(), "container_network_") {
				key += "/" + m.GetLabelValues()[6]
			}
			values[key] = m.GetValue().GetValue()
		}
	}
	check(pm.GetMetrics())
	for _, cm := range pm.GetContainerMetrics() {
		check(cm.GetMetrics())
	}
	if v := values["container_network_receive_bytes_total/"+podID+"/eth0"]; v < 3*84 {
		t.Errorf("container_network_receive_bytes_total of the pod's eth0 = %d", v)
	}
	if v := values["container_memory_working_set_bytes/"+id]; v == 0 {
		t.Errorf("container_memory_working_set_bytes of the spinner = 0")
	}
	if v := values["container_fs_usage_bytes/"+id]; v < 2*mib {
		t.Errorf("container_fs_usage_bytes of the spinner = %d, want its scratch file", v)
	}
	if _, ok := values["container_cpu_usage_seconds_total/"+id]; !ok {
		t.Errorf("no container_cpu_usage_seconds_total for the spinner")
	}
	if v := values["container_processes/"+podID]; v < 2 {
		t.Errorf("container_processes of the pod = %d", v)
	}

	b.mustCrictl(t, "stop", "--timeout", "0", id)
	if resp, err := b.runtime.ContainerStats(ctx, &runtime.ContainerStatsRequest{ContainerId: id}); err != nil || resp.GetStats().GetCpu() != nil || resp.GetStats().GetWritableLayer() == nil {
		t.Errorf("stats of an exited container = %v, %v; want its layer and no CPU", resp, err)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// eventLog collects one GetContainerEvents stream.
type eventLog struct {
	mu     sync.Mutex
	events []*runtime.ContainerEventResponse
	err    error
	done   chan struct{}
}

// subscribe opens a stream and waits until the daemon has subscribed it
// (it sends the headers then), so no later event is missed.
func (b *berth) subscribe(t *testing.T, ctx context.Context) runtime.RuntimeService_GetContainerEventsClient {
	t.Helper()
	stream, err := b.runtime.GetContainerEvents(ctx, &runtime.GetEventsRequest{})
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatalf("GetContainerEvents headers: %v", err)
	}
	return stream
}

func (b *berth) collectEvents(t *testing.T, ctx context.Context) *eventLog {
	stream := b.subscribe(t, ctx)
	l := &eventLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for {
			ev, err := stream.Recv()
			l.mu.Lock()
			if err != nil {
				l.err = err
				l.mu.Unlock()
				return
			}
			l.events = append(l.events, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

// of returns the events about id, waiting until there are n or the stream
// ended.
func (l *eventLog) of(t *testing.T, id string, n int) []*runtime.ContainerEventResponse {
	t.Helper()
	var out []*runtime.ContainerEventResponse
	waitFor(func() bool {
		out = nil
		l.mu.Lock()
		defer l.mu.Unlock()
		for _, ev := range l.events {
			if ev.GetContainerId() == id {
				out = append(out, ev)
			}
		}
		return len(out) >= n || l.err != nil
	})
	return out
}

func eventTypes(evs []*runtime.ContainerEventResponse) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, strings.TrimSuffix(strings.TrimPrefix(ev.GetContainerEventType().String(), "CONTAINER_"), "_EVENT"))
	}
	return out
}

// Two subscribers at once each see a container's and its pod's whole
// lifecycle, in order, with the pod's status.
func TestContainerEventsStream(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	subs := []*eventLog{b.collectEvents(t, ctx), b.collectEvents(t, ctx)}

	podID, podFile := b.runPod(t, "events", nil, "busybox")
	id := b.runContainer(t, podID, podFile, "sleeper", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	b.mustCrictl(t, "stop", "--timeout", "0", id)
	b.mustCrictl(t, "rm", id)
	b.mustCrictl(t, "stopp", podID)
	b.mustCrictl(t, "rmp", podID)

	want := "[CREATED STARTED STOPPED DELETED]"
	for n, l := range subs {
		evs := l.of(t, id, 4)
		if got := fmt.Sprint(eventTypes(evs)); got != want {
			t.Errorf("subscriber %d: container events %s, want %s (stream error %v)", n, got, want, l.err)
			continue
		}
		for i, ev := range evs {
			if ev.GetPodSandboxStatus().GetId() != podID || ev.GetCreatedAt() == 0 {
				t.Errorf("subscriber %d: %s event without its pod's status: %v", n, eventTypes(evs)[i], ev)
			}
			if i > 0 && ev.GetCreatedAt() < evs[i-1].GetCreatedAt() {
				t.Errorf("subscriber %d: event times go back", n)
			}
		}
		// The started event carries the container's status as running.
		var running bool
		for _, cs := range evs[1].GetContainersStatuses() {
			running = running || (cs.GetId() == id && cs.GetState() == runtime.ContainerState_CONTAINER_RUNNING)
		}
		if !running {
			t.Errorf("subscriber %d: started event lacks the running container: %v", n, evs[1].GetContainersStatuses())
		}
		if got := fmt.Sprint(eventTypes(l.of(t, podID, 4))); got != want {
			t.Errorf("subscriber %d: sandbox events %s, want %s", n, got, want)
		}
	}
	cancel()
	for _, l := range subs {
		<-l.done
	}
	if log, _ := os.ReadFile(b.LogPath); strings.Contains(string(log), "serving metrics") {
		t.Error("the metrics endpoint is on without --metrics-address")
	}
	b.assertNoPodLeftovers(t, tn)

	// An open stream does not hold up the daemon's shutdown: it ends, and
	// says why.
	open := b.collectEvents(t, context.Background())
	start := time.Now()
	if err := b.Stop(); err != nil || time.Since(start) > 10*time.Second {
		t.Errorf("stop with a subscriber: %v after %v", err, time.Since(start))
	}
	<-open.done
	if status.Code(open.err) != codes.Unavailable {
		t.Errorf("subscriber at shutdown got %v, want Unavailable", open.err)
	}
}

// A subscriber that never reads must not hold up container operations: it
// is dropped with ResourceExhausted once its buffer fills, while another
// subscriber keeps receiving everything.
func TestStuckEventSubscriberBlocksNothing(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	// The stuck client has a connection of its own with gRPC's smallest
	// fixed flow-control window (64 KiB): with the default, growing window
	// its transport would take megabytes of unread events before the
	// daemon's buffer for it even starts to fill.
	conn, err := grpc.NewClient("unix://"+b.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stuck, err := runtime.NewRuntimeServiceClient(conn).GetContainerEvents(ctx, &runtime.GetEventsRequest{})
	if err == nil {
		_, err = stuck.Header() // subscribed; never read until the end
	}
	if err != nil {
		t.Fatalf("GetContainerEvents: %v", err)
	}
	reader := b.collectEvents(t, ctx)

	podID, _ := b.runPod(t, "crowd", nil, "busybox")
	cfg := sandboxConfig("crowd")
	start := time.Now()
	var ids []string
	for i := range 50 {
		callCtx, callCancel := context.WithTimeout(ctx, 30*time.Second)
		c, err := b.runtime.CreateContainer(callCtx, &runtime.CreateContainerRequest{
			PodSandboxId:  podID,
			SandboxConfig: cfg,
			Config: &runtime.ContainerConfig{
				Metadata: &runtime.ContainerMetadata{Name: fmt.Sprintf("c%d", i)},
				Image:    &runtime.ImageSpec{Image: "busybox"},
				Command:  []string{"sleep", "3600"},
			},
		})
		if err == nil {
			_, err = b.runtime.StartContainer(callCtx, &runtime.StartContainerRequest{ContainerId: c.GetContainerId()})
		}
		if err == nil {
			_, err = b.runtime.StopContainer(callCtx, &runtime.StopContainerRequest{ContainerId: c.GetContainerId()})
		}
		callCancel()
		if err != nil {
			t.Fatalf("container %d with a stuck subscriber: %v (after %v)", i, err, time.Since(start))
		}
		ids = append(ids, c.GetContainerId())
	}
	t.Logf("50 containers created, started and stopped in %v", time.Since(start))
	for _, id := range []string{ids[0], ids[49]} {
		if got := fmt.Sprint(eventTypes(reader.of(t, id, 3))); got != "[CREATED STARTED STOPPED]" {
			t.Errorf("reading subscriber: events of %s = %s", id, got)
		}
	}
	start = time.Now()
	b.mustCrictl(t, "rmp", "-f", podID) // 50 more events, and the pod's
	t.Logf("pod with 50 containers removed in %v", time.Since(start))
	if got := fmt.Sprint(eventTypes(reader.of(t, podID, 4))); got != "[CREATED STARTED STOPPED DELETED]" {
		t.Errorf("reading subscriber: pod events = %s", got)
	}

	// Now read the stuck stream: what it had buffered, then the drop.
	var n int
	for {
		if _, err = stuck.Recv(); err != nil {
			break
		}
		n++
	}
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "relist") {
		t.Errorf("stuck subscriber's stream ended with %v after %d events, want ResourceExhausted", err, n)
	}
	reader.mu.Lock()
	total := len(reader.events)
	reader.mu.Unlock()
	if n >= total {
		t.Errorf("stuck subscriber got all %d events: it was never dropped", n)
	}
	t.Logf("stuck subscriber dropped after %d of %d events", n, total)
	b.assertNoPodLeftovers(t, tn)
}

// freePort returns a loopback address nobody listens on.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestMetricsEndpoint(t *testing.T) {
	tn := newTestNetwork(t)
	addr := freePort(t)
	b := startBerth(t, append(tn.args(), "--metrics-address", addr)...)
	b.mustCrictl(t, "version")
	podID, podFile := b.runPod(t, "metered", nil, "busybox")
	id := b.runContainer(t, podID, podFile, "sleeper", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	b.crictl(t, "inspect", "f00") // a NotFound

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := string(body)
	for _, want := range []string{
		`berth_cri_request_duration_seconds_bucket{method="Version",le="`,
		`berth_cri_request_duration_seconds_count{method="RunPodSandbox"} 1`,
		`berth_cri_request_duration_seconds_count{method="StartContainer"} 1`,
		`berth_cri_request_errors_total{code="NotFound",method="ContainerStatus"} 1`,
		`berth_image_pull_duration_seconds_count{result="success"}`,
		`berth_image_pull_bytes_total `,
		`berth_oci_operation_duration_seconds_count{operation="runtime_start"}`,
		`berth_oci_operation_duration_seconds_count{operation="conmon_create"}`,
		`berth_containers{state="running"} 1`,
		`berth_pods{state="ready"} 1`,
		`berth_container_event_subscribers 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", out)
	}
	b.mustCrictl(t, "stop", id)
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// A pod with a cgroup parent of its own (as the kubelet gives every pod) is
// measured from that cgroup, which also holds its containers' conmons.
func TestPodStatsFromItsCgroupParent(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	parent := fmt.Sprintf("/berth/pod-stats-%d", os.Getpid())
	t.Cleanup(func() {
		dirs, _ := filepath.Glob("/sys/fs/cgroup/*" + parent)
		if d := "/sys/fs/cgroup" + parent; cgroupDirExists(d) {
			dirs = append(dirs, d)
		}
		for _, d := range dirs {
			if err := os.Remove(d); err != nil {
				t.Errorf("remove pod cgroup %s: %v", d, err)
			}
		}
	})
	podID, podFile := b.runPod(t, "parented", map[string]any{"linux": map[string]any{"cgroup_parent": parent}}, "busybox")
	id := b.runContainer(t, podID, podFile, "spin", "busybox", map[string]any{"command": []string{"sh", "-c", "while :; do :; done"}})
	// Counters that hold something, so the comparisons below mean something.
	waitCPU(t, b.inspect(t, id).Info.Pid, 100*time.Millisecond)

	ctx := ctxT(t)
	resp, err := b.runtime.PodSandboxStats(ctx, &runtime.PodSandboxStatsRequest{PodSandboxId: podID})
	if err != nil {
		t.Fatalf("PodSandboxStats: %v", err)
	}
	linux := resp.GetStats().GetLinux()
	ctr := linux.GetContainers()[0]
	if ctr.GetAttributes().GetId() != id {
		t.Fatalf("pod stats list %v", ctr.GetAttributes())
	}
	// The container's own processes (sh) and, in the pod's cgroup only,
	// its conmon.
	if procs := linux.GetProcess().GetProcessCount().GetValue(); procs < 2 {
		t.Errorf("pod processes = %d, want the container's and its conmon's", procs)
	}
	if linux.GetCpu().GetUsageCoreNanoSeconds().GetValue() < ctr.GetCpu().GetUsageCoreNanoSeconds().GetValue() ||
		linux.GetMemory().GetUsageBytes().GetValue() <= ctr.GetMemory().GetUsageBytes().GetValue() {
		t.Errorf("pod cpu %v memory %v do not hold the container's cpu %v memory %v (and conmon's memory)",
			linux.GetCpu(), linux.GetMemory(), ctr.GetCpu(), ctr.GetMemory())
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// waitCPU waits until process pid has run for d more than it had when
// called, by the scheduler's account (/proc/<pid>/schedstat, nanoseconds).
func waitCPU(t *testing.T, pid int, d time.Duration) {
	t.Helper()
	ran := func() time.Duration {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
		if err != nil {
			t.Fatalf("CPU time of process %d: %v", pid, err)
		}
		ns, err := strconv.ParseInt(strings.Fields(string(raw))[0], 10, 64)
		if err != nil {
			t.Fatalf("parse /proc/%d/schedstat %q: %v", pid, raw, err)
		}
		return time.Duration(ns)
	}
	start := ran()
	if !waitFor(func() bool { return ran()-start >= d }) {
		t.Fatalf("process %d did not run for %v within %v", pid, d, waitTimeout)
	}
}

func cgroupDirExists(d string) bool {
	fi, err := os.Stat(d)
	return err == nil && fi.IsDir()
}
