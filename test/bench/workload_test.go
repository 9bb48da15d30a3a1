package bench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestWorkloadPresets(t *testing.T) {
	for name, w := range map[string]Workload{"full": Full(), "quick": Quick()} {
		if err := w.Check(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	full := Full()
	if full.Lifecycles < 30 || full.Calls < 30 || full.Pulls < 30 {
		t.Errorf("the full workload takes fewer than 30 samples: %+v", full)
	}
	bad := Full()
	bad.ScaleLevel = 600
	bad.GrowthLevels = []int{0, 500, 250}
	if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "must increase") || !strings.Contains(err.Error(), "scale level 600") {
		t.Errorf("Check of a bad workload = %v", err)
	}
}

func TestKubeletShapes(t *testing.T) {
	k := &Kubelet{Dir: t.TempDir(), Namespace: "bench", ImageRef: "sha256:abc", UserImage: "busybox", Command: SleepCommand}
	p, err := k.NewPod("web-1")
	if err != nil {
		t.Fatal(err)
	}
	sc := k.SandboxConfig(p)
	if got := sc.GetLinux().GetCgroupParent(); got != "/kubepods/besteffort/pod"+p.UID {
		t.Errorf("cgroup parent %q", got)
	}
	ns := sc.GetLinux().GetSecurityContext().GetNamespaceOptions()
	if ns.GetPid() != runtimeapi.NamespaceMode_CONTAINER || ns.GetNetwork() != runtimeapi.NamespaceMode_POD {
		t.Errorf("namespaces %v", ns)
	}
	if sc.GetLogDirectory() != filepath.Join(k.Dir, "log", "pods", "bench_web-1_"+p.UID) || len(sc.GetPortMappings()) != 0 {
		t.Errorf("log dir %q, ports %v", sc.GetLogDirectory(), sc.GetPortMappings())
	}
	if sc.GetLabels()["io.kubernetes.pod.uid"] != p.UID || sc.GetAnnotations()["kubernetes.io/config.source"] != "api" {
		t.Errorf("labels %v, annotations %v", sc.GetLabels(), sc.GetAnnotations())
	}
	cc, err := k.ContainerConfig(p, "app")
	if err != nil {
		t.Fatal(err)
	}
	if cc.GetLogPath() != "app/0.log" || cc.GetImage().GetImage() != "sha256:abc" || cc.GetLinux().GetResources().GetOomScoreAdj() != 1000 {
		t.Errorf("container config %v", cc)
	}
	if cc.GetLabels()["io.kubernetes.container.name"] != "app" || cc.GetAnnotations()["io.kubernetes.container.restartCount"] != "0" {
		t.Errorf("container labels %v annotations %v", cc.GetLabels(), cc.GetAnnotations())
	}
	if len(cc.GetMounts()) != 3 || len(cc.GetLinux().GetSecurityContext().GetMaskedPaths()) == 0 {
		t.Errorf("mounts %v", cc.GetMounts())
	}
	if err := p.Remove(); err != nil {
		t.Error(err)
	}
}

func TestSeriesBudget(t *testing.T) {
	w := Quick()
	w.SeriesBudget, w.MinSamples = time.Nanosecond, 3
	r := &run{w: w, res: &Result{}}
	f := r.res.Figure("x", "X", Ms)
	n := 0
	for range r.budgetN(f, 30) {
		f.Add(1)
		time.Sleep(time.Microsecond)
		n++
	}
	if n != 3 || len(r.res.Problems) != 1 {
		t.Errorf("a series past its budget ran %d times (want the 3 minimum samples), problems %v", n, r.res.Problems)
	}
	r = &run{w: Full(), res: &Result{}}
	n = 0
	for range r.budgetN(f, 30) {
		n++
	}
	if n != 30 {
		t.Errorf("a series within its budget ran %d times, want 30", n)
	}
}

// fakeRuntime answers the calls growth makes, keeping containers per pod;
// other calls panic (the embedded interface is nil). wrongPodList, when
// set, makes a filtered ListContainers answer one container short.
type fakeRuntime struct {
	runtimeapi.RuntimeServiceClient
	mu           sync.Mutex
	pods         int
	containers   []*runtimeapi.Container
	filtered     []string // PodSandboxId of every filtered list
	unfiltered   int
	wrongPodList bool
}

func (f *fakeRuntime) RunPodSandbox(context.Context, *runtimeapi.RunPodSandboxRequest, ...grpc.CallOption) (*runtimeapi.RunPodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pods++
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: fmt.Sprintf("pod%d", f.pods)}, nil
}

func (f *fakeRuntime) CreateContainer(_ context.Context, req *runtimeapi.CreateContainerRequest, _ ...grpc.CallOption) (*runtimeapi.CreateContainerResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := fmt.Sprintf("c%d", len(f.containers))
	f.containers = append(f.containers, &runtimeapi.Container{Id: id, PodSandboxId: req.GetPodSandboxId()})
	return &runtimeapi.CreateContainerResponse{ContainerId: id}, nil
}

func (f *fakeRuntime) ListContainers(_ context.Context, req *runtimeapi.ListContainersRequest, _ ...grpc.CallOption) (*runtimeapi.ListContainersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pod := req.GetFilter().GetPodSandboxId()
	if pod == "" {
		f.unfiltered++
		return &runtimeapi.ListContainersResponse{Containers: f.containers}, nil
	}
	f.filtered = append(f.filtered, pod)
	var cs []*runtimeapi.Container
	for _, c := range f.containers {
		if c.GetPodSandboxId() == pod {
			cs = append(cs, c)
		}
	}
	if f.wrongPodList {
		cs = cs[1:]
	}
	return &runtimeapi.ListContainersResponse{Containers: cs}, nil
}

func (f *fakeRuntime) StopPodSandbox(context.Context, *runtimeapi.StopPodSandboxRequest, ...grpc.CallOption) (*runtimeapi.StopPodSandboxResponse, error) {
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

func (f *fakeRuntime) RemovePodSandbox(_ context.Context, req *runtimeapi.RemovePodSandboxRequest, _ ...grpc.CallOption) (*runtimeapi.RemovePodSandboxResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.containers = slices.DeleteFunc(f.containers, func(c *runtimeapi.Container) bool { return c.GetPodSandboxId() == req.GetPodSandboxId() })
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

func growthRun(t *testing.T, rt *fakeRuntime) *run {
	w := Quick()
	w.Calls = 4
	k := &Kubelet{Dir: t.TempDir(), Namespace: "bench", ImageRef: "sha256:abc", UserImage: "busybox", Command: SleepCommand}
	target := &Target{Name: "fake", CRI: &CRI{RT: rt}, Logf: t.Logf}
	return &run{w: w, t: target, k: k, res: &Result{}, cgroups: new([]string)}
}

func TestGrowthListsProbePod(t *testing.T) {
	rt := &fakeRuntime{}
	// Containers of the node that the probe pod's list must leave out.
	for range 7 {
		_, _ = rt.CreateContainer(context.Background(), &runtimeapi.CreateContainerRequest{PodSandboxId: "other"})
	}
	r := growthRun(t, rt)
	if err := r.growth(context.Background(), 7); err != nil {
		t.Fatal(err)
	}
	if len(r.res.Growth) != 1 {
		t.Fatalf("growth points %+v", r.res.Growth)
	}
	g := r.res.Growth[0]
	if g.Containers != 7 || g.Create.N != 4 || g.List.N != 4 || g.ListPod.N != 4 {
		t.Errorf("growth point %+v, want 4 samples of each call at 7 containers", g)
	}
	if len(r.res.Problems) != 0 {
		t.Errorf("problems %v", r.res.Problems)
	}
	if rt.unfiltered != 4 || len(rt.filtered) != 4 {
		t.Errorf("%d unfiltered and %d filtered lists, want 4 each", rt.unfiltered, len(rt.filtered))
	}
	for _, p := range rt.filtered {
		if p != "pod1" {
			t.Errorf("a list filtered to pod %q, not the probe pod1", p)
		}
	}
	if len(rt.containers) != 7 {
		t.Errorf("%d containers left, want the 7 others (the probe pod removed)", len(rt.containers))
	}
}

func TestGrowthPodListMismatch(t *testing.T) {
	rt := &fakeRuntime{wrongPodList: true}
	r := growthRun(t, rt)
	if err := r.growth(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	g := r.res.Growth[0]
	if g.ListPod.N != 0 || g.List.N != 4 {
		t.Errorf("growth point %+v, want every pod list failed and the unfiltered ones not", g)
	}
	if len(r.res.Problems) != 1 || !strings.Contains(r.res.Problems[0], "4 lists of the probe pod failed") ||
		!strings.Contains(r.res.Problems[0], "3 containers listed for the probe pod, 4 in it") {
		t.Errorf("problems %v", r.res.Problems)
	}
}

func TestCheckPodList(t *testing.T) {
	cs := []*runtimeapi.Container{{Id: "a", PodSandboxId: "p"}, {Id: "b", PodSandboxId: "p"}}
	if err := checkPodList(cs, "p", 2); err != nil {
		t.Error(err)
	}
	if err := checkPodList(cs, "p", 3); err == nil {
		t.Error("a short list passed")
	}
	if err := checkPodList(append(cs, &runtimeapi.Container{Id: "c", PodSandboxId: "q"}), "p", 3); err == nil {
		t.Error("another pod's container passed")
	}
}
