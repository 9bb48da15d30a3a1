package nri

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
)

// fakeDomain is a runtime with a fixed set of pods and containers that
// records the updates plugins ask for.
type fakeDomain struct {
	pods []*api.PodSandbox
	ctrs []*api.Container

	mu      sync.Mutex
	updates []string // container ids
	fail    error
}

func (d *fakeDomain) ListPodSandboxes() []*api.PodSandbox { return d.pods }
func (d *fakeDomain) ListContainers() []*api.Container    { return d.ctrs }
func (d *fakeDomain) UpdateContainer(_ context.Context, u *api.ContainerUpdate) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.updates = append(d.updates, u.GetContainerId())
	return d.fail
}

func (d *fakeDomain) updated() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.updates)
}

// testPlugin records the events it gets and answers as told.
type testPlugin struct {
	mu     sync.Mutex
	events []string
	synced chan struct{}

	syncPods, syncCtrs []string
	createErr          error
	hangRun            chan struct{} // RunPodSandbox waits for it, deaf to its deadline
	pinUpdates         string        // UpdateContainer pins the container to these CPUs
	syncUpdate         *api.ContainerUpdate
}

func (p *testPlugin) record(ev string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
}

func (p *testPlugin) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

func (p *testPlugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	for _, pod := range pods {
		p.syncPods = append(p.syncPods, pod.GetId())
	}
	for _, c := range ctrs {
		p.syncCtrs = append(p.syncCtrs, c.GetId())
	}
	close(p.synced)
	if p.syncUpdate != nil {
		return []*api.ContainerUpdate{p.syncUpdate}, nil
	}
	return nil, nil
}

func (p *testPlugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox " + pod.GetId())
	if p.hangRun != nil {
		<-p.hangRun
	}
	return nil
}

func (p *testPlugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("StopPodSandbox " + pod.GetId())
	return nil
}

func (p *testPlugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RemovePodSandbox " + pod.GetId())
	return nil
}

func (p *testPlugin) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.record("CreateContainer " + c.GetId())
	if p.createErr != nil {
		return nil, nil, p.createErr
	}
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("FROM_PLUGIN", "yes")
	adj.AddAnnotation("plugin.example.com/seen", c.GetName())
	return adj, []*api.ContainerUpdate{{ContainerId: "c0", Linux: &api.LinuxContainerUpdate{Resources: &api.LinuxResources{}}}}, nil
}

func (p *testPlugin) UpdateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container, _ *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	p.record("UpdateContainer " + c.GetId())
	if p.pinUpdates == "" {
		return nil, nil
	}
	u := &api.ContainerUpdate{ContainerId: c.GetId()}
	u.SetLinuxCPUSetCPUs(p.pinUpdates)
	return []*api.ContainerUpdate{u}, nil
}

func (p *testPlugin) StartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("StartContainer " + c.GetId())
	return nil
}

func (p *testPlugin) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.record("StopContainer " + c.GetId())
	return nil, nil
}

func (p *testPlugin) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("RemoveContainer " + c.GetId())
	return nil
}

// startNRI serves NRI for dom on a socket of its own, with no pre-installed
// plugins, and stops it when the test ends.
func startNRI(t *testing.T, dom Domain, requestTimeout time.Duration) *NRI {
	t.Helper()
	dir, err := os.MkdirTemp("", "nri-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	for _, d := range []string{"plugins", "conf.d"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	n, err := New(Config{
		SocketPath:          filepath.Join(dir, "nri.sock"),
		PluginPath:          filepath.Join(dir, "plugins"),
		PluginConfigPath:    filepath.Join(dir, "conf.d"),
		RegistrationTimeout: 5 * time.Second,
		RequestTimeout:      requestTimeout,
	}, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(dom); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}

// connect runs p as plugin idx-name against n and waits for its sync.
func connect(t *testing.T, n *NRI, idx, name string, p *testPlugin) {
	t.Helper()
	connectStub(t, n, idx, name, p)
}

// connectStub is connect, returning the plugin's stub.
func connectStub(t *testing.T, n *NRI, idx, name string, p *testPlugin) stub.Stub {
	t.Helper()
	p.synced = make(chan struct{})
	s, err := stub.New(p, stub.WithSocketPath(n.cfg.SocketPath), stub.WithPluginName(name), stub.WithPluginIdx(idx))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); s.Stop() })
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start plugin %s: %v", name, err)
	}
	select {
	case <-p.synced:
	case <-time.After(10 * time.Second):
		t.Fatalf("plugin %s was never synchronized", name)
	}
	// The plugin gets events once its sync is over, which a block waits for.
	n.BlockPluginSync()()
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func pod(id string) *api.PodSandbox {
	return &api.PodSandbox{Id: id, Name: "pod-" + id, Namespace: "default", Uid: id + "-uid"}
}
func ctr(id, pod string) *api.Container {
	return &api.Container{Id: id, PodSandboxId: pod, Name: "ctr-" + id, State: api.ContainerState_CONTAINER_RUNNING}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A plugin that connects hears of what exists, then of every event, with
// each object's Stop once and before its Remove.
func TestPluginSeesSyncThenEachEventOnce(t *testing.T) {
	dom := &fakeDomain{pods: []*api.PodSandbox{pod("p0")}, ctrs: []*api.Container{ctr("c0", "p0")}}
	n := startNRI(t, dom, 2*time.Second)
	p := &testPlugin{}
	connect(t, n, "10", "recorder", p)
	if !slices.Equal(p.syncPods, []string{"p0"}) || !slices.Equal(p.syncCtrs, []string{"c0"}) {
		t.Fatalf("sync got pods %v, containers %v; want [p0] and [c0]", p.syncPods, p.syncCtrs)
	}

	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	unblock := n.BlockPluginSync()
	must(n.RunPodSandbox(ctx, pod("p1")))
	adj, updates, err := n.CreateContainer(ctx, pod("p1"), ctr("c1", "p1"))
	must(err)
	unblock()
	if got := adj.GetAnnotations()["plugin.example.com/seen"]; got != "ctr-c1" {
		t.Errorf("adjustment annotations %v, want the plugin's", adj.GetAnnotations())
	}
	if env := adj.GetEnv(); len(env) != 1 || env[0].GetKey() != "FROM_PLUGIN" {
		t.Errorf("adjustment env %v, want FROM_PLUGIN", env)
	}
	if len(updates) != 1 || updates[0].GetContainerId() != "c0" {
		t.Errorf("updates %v, want one for c0", updates)
	}
	must(n.StartContainer(ctx, pod("p1"), ctr("c1", "p1")))
	for range 2 { // a CRI stop and the exit both report it
		_, err := n.StopContainer(ctx, pod("p1"), ctr("c1", "p1"))
		must(err)
	}
	must(n.RemoveContainer(ctx, pod("p1"), ctr("c1", "p1")))
	must(n.RemoveContainer(ctx, pod("p1"), ctr("c1", "p1"))) // gone: nothing to tell
	must(n.RemoveContainer(ctx, pod("p0"), ctr("c0", "p0"))) // running when seeded: Stop first
	must(n.RemovePodSandbox(ctx, pod("p1")))                 // never stopped: Stop first
	must(n.StopPodSandbox(ctx, pod("p0")))
	must(n.StopPodSandbox(ctx, pod("p0")))
	must(n.RemovePodSandbox(ctx, pod("p0")))

	want := []string{
		"RunPodSandbox p1", "CreateContainer c1", "StartContainer c1", "StopContainer c1", "RemoveContainer c1",
		"StopContainer c0", "RemoveContainer c0",
		"StopPodSandbox p1", "RemovePodSandbox p1",
		"StopPodSandbox p0", "RemovePodSandbox p0",
	}
	if got := p.seen(); !slices.Equal(got, want) {
		t.Errorf("plugin saw\n%v\nwant\n%v", got, want)
	}
}

// An update no plugin touches comes back as asked, with nothing for other
// containers; one a plugin changes comes back changed.
func TestUpdateContainer(t *testing.T) {
	n := startNRI(t, &fakeDomain{}, 2*time.Second)
	ctx := context.Background()
	asked := &api.LinuxResources{Cpu: &api.LinuxCPU{Cpus: "0-1"}}
	own, others, err := n.UpdateContainer(ctx, pod("p1"), ctr("c1", "p1"), asked)
	if err != nil || own != nil || len(others) != 0 {
		t.Fatalf("UpdateContainer with no plugin = %v, %v, %v; want nothing changed", own, others, err)
	}
	connect(t, n, "10", "pinner", &testPlugin{pinUpdates: "1"})
	own, others, err = n.UpdateContainer(ctx, pod("p1"), ctr("c1", "p1"), asked)
	if err != nil || own.GetCpu().GetCpus() != "1" || len(others) != 0 {
		t.Fatalf("UpdateContainer with a pinning plugin = %v, %v, %v; want cpus 1", own, others, err)
	}
	connect(t, n, "20", "bystander", &testPlugin{})
	if own, others, err = n.UpdateContainer(ctx, pod("p1"), ctr("c2", "p1"), asked); err != nil || len(others) != 0 {
		t.Fatalf("UpdateContainer = %v, %v, %v", own, others, err)
	}
}

// A plugin's error fails the call and names the plugin's reason; the
// object stays known so the undo's Remove reaches the plugins.
func TestPluginErrorFailsTheCall(t *testing.T) {
	n := startNRI(t, &fakeDomain{}, 2*time.Second)
	p := &testPlugin{createErr: errors.New("no CPUs left in this NUMA node")}
	connect(t, n, "10", "refuser", p)
	ctx := context.Background()
	_, _, err := n.CreateContainer(ctx, pod("p1"), ctr("c1", "p1"))
	if err == nil || !strings.Contains(err.Error(), "no CPUs left") || !strings.Contains(err.Error(), "c1") {
		t.Fatalf("CreateContainer = %v, want the plugin's error naming the container", err)
	}
	if err := n.RemoveContainer(ctx, pod("p1"), ctr("c1", "p1")); err != nil {
		t.Fatal(err)
	}
	want := []string{"CreateContainer c1", "StopContainer c1", "RemoveContainer c1"}
	if got := p.seen(); !slices.Equal(got, want) {
		t.Errorf("plugin saw %v, want %v", got, want)
	}
}

// A plugin that hangs is cut off at the request timeout and dropped: the
// call goes on without it, and later calls do not wait for it.
func TestHangingPluginIsDropped(t *testing.T) {
	n := startNRI(t, &fakeDomain{}, 300*time.Millisecond)
	p := &testPlugin{hangRun: make(chan struct{})}
	defer close(p.hangRun)
	connect(t, n, "10", "sleeper", p)
	done := make(chan error, 1)
	go func() { done <- n.RunPodSandbox(context.Background(), pod("p1")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunPodSandbox = %v, want it to go on without the plugin", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunPodSandbox waited on a hanging plugin")
	}
	if err := n.RunPodSandbox(context.Background(), pod("p2")); err != nil {
		t.Fatal(err)
	}
	if got := p.seen(); slices.Contains(got, "RunPodSandbox p2") {
		t.Errorf("a dropped plugin still got events: %v", got)
	}
}

// A plugin that dies is dropped: the calls after it go on without it.
func TestDeadPluginIsDropped(t *testing.T) {
	n := startNRI(t, &fakeDomain{}, 2*time.Second)
	p := &testPlugin{}
	s := connectStub(t, n, "10", "mortal", p)
	if err := n.RunPodSandbox(context.Background(), pod("p1")); err != nil {
		t.Fatal(err)
	}
	s.Stop()
	done := make(chan error, 1)
	go func() { done <- n.RunPodSandbox(context.Background(), pod("p2")) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunPodSandbox after the plugin died = %v, want it to go on", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunPodSandbox waited on a dead plugin")
	}
	if got := p.seen(); !slices.Equal(got, []string{"RunPodSandbox p1"}) {
		t.Errorf("plugin saw %v", got)
	}
}

// Updates a plugin asks for at sync are applied, after the sync.
func TestSyncUpdatesAreApplied(t *testing.T) {
	dom := &fakeDomain{ctrs: []*api.Container{ctr("c0", "p0")}}
	n := startNRI(t, dom, 2*time.Second)
	connect(t, n, "10", "tuner", &testPlugin{syncUpdate: &api.ContainerUpdate{ContainerId: "c0"}})
	waitFor(t, "the sync's update of c0", func() bool { return slices.Equal(dom.updated(), []string{"c0"}) })
}

// Updates a plugin sends on its own come back as failed when the runtime
// cannot apply them, unless the plugin said to ignore that.
func TestUnsolicitedUpdates(t *testing.T) {
	dom := &fakeDomain{fail: fmt.Errorf("container is gone")}
	n := &NRI{state: map[string]phase{}, dom: dom}
	failed, err := n.updateContainers(context.Background(), []*api.ContainerUpdate{
		{ContainerId: "c1"}, {ContainerId: "c2", IgnoreFailure: true},
	})
	if len(failed) != 1 || failed[0].GetContainerId() != "c1" || err == nil || !strings.Contains(err.Error(), "c1") {
		t.Fatalf("updateContainers = %v, %v; want c1 failed, c2's failure ignored", failed, err)
	}
}

// A socket another runtime serves is not taken from it.
func TestStartRefusesASocketInUse(t *testing.T) {
	first := startNRI(t, &fakeDomain{}, time.Second)
	second, err := New(first.cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := second.Start(&fakeDomain{}); err == nil || !strings.Contains(err.Error(), "served by another process") {
		t.Fatalf("second Start = %v, want a refusal naming the socket", err)
	}
}
