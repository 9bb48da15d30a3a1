package integration

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// nriPlugin is a plugin of the test's own, on nri's stub API, connected to
// a berth's NRI socket: it records the events it gets and, as told,
// adjusts containers, refuses them or holds their creation.
type nriPlugin struct {
	mu     sync.Mutex
	events []string
	// synced has the ids of the pods and containers of each sync.
	synced chan []string

	adjust func(*api.Container) *api.ContainerAdjustment
	// hold, when set, keeps CreateContainer until it is closed, after
	// telling entered.
	hold, entered chan struct{}
}

func (p *nriPlugin) record(ev string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, ev)
}

func (p *nriPlugin) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events)
}

func (p *nriPlugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	var ids []string
	for _, pod := range pods {
		ids = append(ids, "pod "+pod.GetName())
	}
	for _, c := range ctrs {
		ids = append(ids, "container "+c.GetName())
	}
	p.synced <- ids
	return nil, nil
}

func (p *nriPlugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RunPodSandbox " + pod.GetName())
	return nil
}
func (p *nriPlugin) StopPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("StopPodSandbox " + pod.GetName())
	return nil
}
func (p *nriPlugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.record("RemovePodSandbox " + pod.GetName())
	return nil
}
func (p *nriPlugin) CreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.record("CreateContainer " + c.GetName())
	if p.hold != nil {
		close(p.entered)
		<-p.hold
	}
	if p.adjust != nil {
		return p.adjust(c), nil, nil
	}
	return nil, nil, nil
}
func (p *nriPlugin) StartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("StartContainer " + c.GetName())
	return nil
}
func (p *nriPlugin) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	p.record("StopContainer " + c.GetName())
	return nil, nil
}
func (p *nriPlugin) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	p.record("RemoveContainer " + c.GetName())
	return nil
}

// connectPlugin connects p to b's NRI socket as plugin idx-name and
// returns the pods and containers of its first sync; the plugin goes when
// the test ends.
func (b *berth) connectPlugin(t *testing.T, idx, name string, p *nriPlugin) []string {
	t.Helper()
	p.synced = make(chan []string, 4)
	s, err := stub.New(p, stub.WithSocketPath(filepath.Join(b.Root, "nri.sock")), stub.WithPluginName(name), stub.WithPluginIdx(idx))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); s.Stop() })
	if err := s.Start(ctx); err != nil {
		t.Fatalf("connect NRI plugin %s: %v", name, err)
	}
	select {
	case ids := <-p.synced:
		// Berth sends events to a plugin once its sync is over, which the
		// next CRI call that makes something waits for.
		return ids
	case <-time.After(waitTimeout):
		t.Fatalf("NRI plugin %s was never synchronized", name)
		return nil
	}
}

// One plugin injects an environment variable, a mount and a device, and
// the container sees all three; another records the events, in the order
// of the calls.
func TestNRIPluginsAdjustAndSeeEveryEvent(t *testing.T) {
	b := startBerth(t)
	ctx := ctxT(t)
	b.mustCrictl(t, "pull", "busybox")
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "greeting"), []byte("from the plugin\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	injector := &nriPlugin{adjust: func(*api.Container) *api.ContainerAdjustment {
		adj := &api.ContainerAdjustment{}
		adj.AddEnv("NRI_INJECTED", "yes")
		adj.AddMount(&api.Mount{Destination: "/nri-data", Source: data, Type: "bind", Options: []string{"bind", "ro"}})
		adj.AddDevice(&api.LinuxDevice{Path: "/dev/nri-zero", Type: "c", Major: 1, Minor: 5, FileMode: api.FileMode(os.FileMode(0o666))})
		return adj
	}}
	recorder := &nriPlugin{}
	b.connectPlugin(t, "10", "injector", injector)
	b.connectPlugin(t, "20", "recorder", recorder)

	podID, podCfg := b.runKubeletPod(ctx, t, "nri-pod")
	ctr, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: podCfg,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "app"},
			Image:    &runtime.ImageSpec{Image: "busybox"},
			Command:  []string{"sleep", "3600"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	id := ctr.GetContainerId()
	if _, err := b.runtime.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	out := b.mustCrictl(t, "exec", id, "sh", "-c", "echo env=$NRI_INJECTED; cat /nri-data/greeting; head -c 4 /dev/nri-zero | od -An -tx1")
	for _, want := range []string{"env=yes", "from the plugin", "00 00 00 00"} {
		if !strings.Contains(out, want) {
			t.Errorf("the container does not see what the plugin injected (%q):\n%s", want, out)
		}
	}

	if _, err := b.runtime.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: id, Timeout: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.runtime.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.runtime.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	b.removePodLeavingNothing(ctx, t, podID)

	want := []string{
		"RunPodSandbox nri-pod", "CreateContainer app", "StartContainer app", "StopContainer app",
		"RemoveContainer app", "StopPodSandbox nri-pod", "RemovePodSandbox nri-pod",
	}
	if got := recorder.seen(); !slices.Equal(got, want) {
		t.Errorf("the recorder saw\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// Berth killed while a plugin is answering CreateContainer: after the
// restart the container is gone without a trace, a plugin that connects is
// synchronized with the pod that survived, and the kubelet's retry of the
// create works.
func TestNRICrashDuringCreateContainer(t *testing.T) {
	b := startBerth(t)
	ctx := ctxT(t)
	b.mustCrictl(t, "pull", "busybox")
	holder := &nriPlugin{hold: make(chan struct{}), entered: make(chan struct{})}
	b.connectPlugin(t, "10", "holder", holder)
	podID, podCfg := b.runKubeletPod(ctx, t, "nri-crash")
	req := &runtime.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: podCfg,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "app"},
			Image:    &runtime.ImageSpec{Image: "busybox"},
			Command:  []string{"sleep", "3600"},
		},
	}
	created := make(chan error, 1)
	go func() {
		_, err := b.runtime.CreateContainer(ctx, req)
		created <- err
	}()
	select {
	case <-holder.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the plugin never got CreateContainer")
	}
	b = b.killAndRestart(t)
	close(holder.hold)
	if err := <-created; err == nil {
		t.Fatal("a CreateContainer whose daemon was killed succeeded")
	}

	if recs := b.containerRecords(t); len(recs) != 0 {
		t.Errorf("container records left after recovery: %v", recs)
	}
	list, err := b.runtime.ListContainers(ctx, &runtime.ListContainersRequest{})
	if err != nil || len(list.GetContainers()) != 0 {
		t.Errorf("containers after recovery: %v, %v; want none", list.GetContainers(), err)
	}
	again := &nriPlugin{}
	if got := b.connectPlugin(t, "10", "rejoiner", again); !slices.Equal(got, []string{"pod nri-crash"}) {
		t.Errorf("a plugin connecting after the restart was synchronized with %v, want the pod alone", got)
	}
	ctr, err := b.runtime.CreateContainer(ctx, req)
	if err != nil {
		t.Fatalf("the kubelet's retry of the create: %v", err)
	}
	if ev := again.seen(); !slices.Equal(ev, []string{"CreateContainer app"}) {
		t.Errorf("the rejoined plugin saw %v, want the retried create", ev)
	}
	if _, err := b.runtime.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: ctr.GetContainerId()}); err != nil {
		t.Fatal(err)
	}
	b.removePodLeavingNothing(ctx, t, podID)
}
