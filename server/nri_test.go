package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/nri/pkg/api"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
)

// fakeNRI journals every event as "nri <event> <id>" and fails where the
// journal says; its CreateContainer adjusts the container as a plugin
// would.
type fakeNRI struct {
	j       *journal
	applied chan []*api.ContainerUpdate
}

func init() {
	// A pod or container plugins heard of must be told it is gone.
	acquisitions["nri run"], acquisitions["nri create"] = true, true
	releases["nri pod remove"] = []string{"nri run"}
	releases["nri remove"] = []string{"nri create"}
	// Plugins hear of a container's removal while its bundle still says
	// what it was, before the runtime's container goes in the background.
	anyOrder["nri remove"] = true
}

// withNRI gives s a journaling fake of NRI.
func withNRI(s *Server, f *fakes) *fakeNRI {
	n := &fakeNRI{j: f.j, applied: make(chan []*api.ContainerUpdate, 8)}
	s.nri = n
	return n
}

func (n *fakeNRI) BlockPluginSync() func() { return func() {} }
func (n *fakeNRI) RunPodSandbox(_ context.Context, p *api.PodSandbox) error {
	return n.j.do("nri run", p.GetId())
}
func (n *fakeNRI) UpdatePodSandbox(_ context.Context, p *api.PodSandbox, _, res *api.LinuxResources) error {
	return n.j.do("nri pod update", p.GetId()+" cpus="+res.GetCpu().GetCpus())
}
func (n *fakeNRI) PostUpdatePodSandbox(_ context.Context, p *api.PodSandbox) error {
	return n.j.do("nri pod post-update", p.GetId())
}
func (n *fakeNRI) StopPodSandbox(_ context.Context, p *api.PodSandbox) error {
	return n.j.do("nri pod stop", p.GetId())
}
func (n *fakeNRI) RemovePodSandbox(_ context.Context, p *api.PodSandbox) error {
	return n.j.do("nri pod remove", p.GetId())
}
func (n *fakeNRI) CreateContainer(_ context.Context, p *api.PodSandbox, c *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	if err := n.j.do("nri create", c.GetId()); err != nil {
		return nil, nil, err
	}
	adj := &api.ContainerAdjustment{}
	adj.AddEnv("NRI_POD", p.GetName())
	adj.AddAnnotation("nri.example.com/container", c.GetName())
	adj.SetLinuxCPUSetCPUs("0")
	return adj, []*api.ContainerUpdate{{ContainerId: "other"}}, nil
}
func (n *fakeNRI) PostCreateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	return n.j.do("nri post-create", c.GetId())
}
func (n *fakeNRI) StartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	return n.j.do("nri start", c.GetId())
}
func (n *fakeNRI) PostStartContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	return n.j.do("nri post-start", c.GetId())
}
func (n *fakeNRI) UpdateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container, res *api.LinuxResources) (*api.LinuxResources, []*api.ContainerUpdate, error) {
	if err := n.j.do("nri update", c.GetId()); err != nil {
		return nil, nil, err
	}
	// The plugin pins the container to CPU 1 whatever was asked.
	res.Cpu.Cpus = "1"
	return res, nil, nil
}
func (n *fakeNRI) PostUpdateContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	return n.j.do("nri post-update", c.GetId())
}
func (n *fakeNRI) StopContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) ([]*api.ContainerUpdate, error) {
	return nil, n.j.do("nri stop", c.GetId())
}
func (n *fakeNRI) RemoveContainer(_ context.Context, _ *api.PodSandbox, c *api.Container) error {
	return n.j.do("nri remove", c.GetId())
}
func (n *fakeNRI) ApplyLater(updates []*api.ContainerUpdate) {
	if len(updates) > 0 {
		n.applied <- updates
	}
}

// nriEvents are the NRI entries of the journal, with ids shortened to
// "pod" and "ctr".
func nriEvents(f *fakes, pod, ctr string) []string {
	var out []string
	for _, e := range f.j.snapshot() {
		if strings.HasPrefix(e, "nri ") {
			e = strings.ReplaceAll(strings.ReplaceAll(e, pod, "pod"), ctr, "ctr")
			out = append(out, e)
		}
	}
	return out
}

// A pod and its container go through their lives with plugins hearing of
// each step where the CRI says it happens: the pod before it is ready,
// the container's adjustment before the runtime creates it, each stop
// once the processes are gone.
func TestNRIHearsEveryEvent(t *testing.T) {
	s, f := fakeServer(t)
	withNRI(s, f)
	ctx := context.Background()
	podID, err := runPodWithFakes(t, s)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := s.sandboxes.Get(podID)
	ctrID, err := createWithFakes(t, s, sb, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: ctrID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	got := nriEvents(f, podID, ctrID)
	// A stop may be told more than once (the CRI stop, the exit it caused,
	// the removal, the pod's stop and its removal): nri.NRI passes plugins
	// the first only.
	got = slices.Compact(got)
	want := []string{
		"nri run pod", "nri create ctr", "nri post-create ctr", "nri start ctr", "nri post-start ctr",
		"nri stop ctr", "nri remove ctr", "nri pod stop pod", "nri pod remove pod",
	}
	if !slices.Equal(got, want) {
		t.Errorf("NRI heard\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	assertBalanced(t, f.j)
}

// The adjustment plugins return is in the spec the runtime creates the
// container from, and ContainerStatus reports the resources it set; the
// updates they ask for other containers are applied after the call.
func TestNRIAdjustmentReachesTheSpec(t *testing.T) {
	s, f := fakeServer(t)
	n := withNRI(s, f)
	sb := addReadyPod(t, s, "pod-a", hostPod("a"))
	id, err := createWithFakes(t, s, sb, "app")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := s.containers.Get(id)
	b, err := os.ReadFile(filepath.Join(c.Bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(spec.Process.Env, "NRI_POD=a") {
		t.Errorf("env %v lacks the plugin's NRI_POD=a", spec.Process.Env)
	}
	if spec.Annotations["nri.example.com/container"] != "app" {
		t.Errorf("annotations %v lack the plugin's, naming the container by its CRI name", spec.Annotations)
	}
	if spec.Linux.Resources.CPU.Cpus != "0" {
		t.Errorf("cpuset %q, want the plugin's 0", spec.Linux.Resources.CPU.Cpus)
	}
	st, err := s.ContainerStatus(context.Background(), &runtime.ContainerStatusRequest{ContainerId: id})
	if err != nil || st.GetStatus().GetResources().GetLinux().GetCpusetCpus() != "0" {
		t.Errorf("ContainerStatus resources %v, %v; want cpuset 0", st.GetStatus().GetResources(), err)
	}
	select {
	case u := <-n.applied:
		if len(u) != 1 || u[0].GetContainerId() != "other" {
			t.Errorf("updates applied %v, want the one for other", u)
		}
	case <-time.After(10 * time.Second):
		t.Error("the plugin's update of another container was never applied")
	}
}

// A plugin's failure fails the call, leaves nothing behind, tells the
// plugins that heard of the object it is gone, and the retry works.
func TestNRIFailureLeavesNothing(t *testing.T) {
	t.Run("RunPodSandbox", func(t *testing.T) {
		for _, step := range []string{"nri run", "pod record save created"} {
			t.Run(step, func(t *testing.T) {
				s, f := fakeServer(t)
				withNRI(s, f)
				f.j.failAt(step, 1)
				_, err := runPodWithFakes(t, s)
				assertFailedAt(t, f, err, step, step)
				assertBalanced(t, f.j)
				assertNoPodLeft(t, s)
				if _, err := runPodWithFakes(t, s); err != nil {
					t.Fatalf("retry: %v", err)
				}
			})
		}
	})
	t.Run("CreateContainer", func(t *testing.T) {
		for _, step := range []string{"nri create", "spec write", "runtime create"} {
			t.Run(step, func(t *testing.T) {
				s, f := fakeServer(t)
				withNRI(s, f)
				sb := addReadyPod(t, s, "pod-a", hostPod("a"))
				f.j.reset()
				f.j.failAt(step, 1)
				_, err := createWithFakes(t, s, sb, "app")
				if !f.j.hasFired(step) || err == nil {
					t.Fatalf("create = %v; the failure at %s never fired", err, step)
				}
				assertBalanced(t, f.j)
				assertNoContainerLeft(t, s, sb, "app")
				if _, err := createWithFakes(t, s, sb, "app"); err != nil {
					t.Fatalf("retry: %v", err)
				}
			})
		}
	})
	t.Run("StartContainer", func(t *testing.T) {
		s, f := fakeServer(t)
		withNRI(s, f)
		sb := addReadyPod(t, s, "pod-a", hostPod("a"))
		id, err := createWithFakes(t, s, sb, "app")
		if err != nil {
			t.Fatal(err)
		}
		f.j.failAt("nri start", 1)
		if _, err := s.StartContainer(context.Background(), &runtime.StartContainerRequest{ContainerId: id}); err == nil {
			t.Fatal("StartContainer succeeded though a plugin refused it")
		}
		if slices.Contains(f.j.snapshot(), "runtime start "+id) {
			t.Error("the runtime started a container a plugin refused")
		}
		// The kubelet's retry starts it.
		if _, err := s.StartContainer(context.Background(), &runtime.StartContainerRequest{ContainerId: id}); err != nil {
			t.Fatalf("retry: %v", err)
		}
	})
}

// A container that exits on its own is reported stopped to plugins, with
// no CRI call.
func TestNRIHearsAnExit(t *testing.T) {
	s, f := fakeServer(t)
	withNRI(s, f)
	c := addContainer(t, s, "ctr-x", "pod-x", container.StateRunning)
	s.recordExit(c, container.Exit{Code: 1, FinishedAt: time.Now(), Reason: "Error"})
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Contains(f.j.snapshot(), "nri stop ctr-x") {
		if time.Now().After(deadline) {
			t.Fatal("the exit was never told to plugins")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// UpdateContainerResources applies what plugins make of the request, and
// a pod's new resources are passed to plugins.
func TestNRIUpdates(t *testing.T) {
	s, f := fakeServer(t)
	withNRI(s, f)
	sb := addReadyPod(t, s, "pod-a", hostPod("a"))
	id, err := createWithFakes(t, s, sb, "app")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := s.UpdateContainerResources(ctx, &runtime.UpdateContainerResourcesRequest{
		ContainerId: id, Linux: &runtime.LinuxContainerResources{CpusetCpus: "0-1", CpuShares: 512},
	}); err != nil {
		t.Fatal(err)
	}
	st, _ := s.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id})
	if r := st.GetStatus().GetResources().GetLinux(); r.GetCpusetCpus() != "1" || r.GetCpuShares() != 512 {
		t.Errorf("resources after update %v, want the plugin's cpuset 1 and the request's shares", r)
	}
	if _, err := s.UpdatePodSandboxResources(ctx, &runtime.UpdatePodSandboxResourcesRequest{
		PodSandboxId: sb.ID, Resources: &runtime.LinuxContainerResources{CpusetCpus: "0"},
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"nri update " + id, "nri post-update " + id, "nri pod update pod-a cpus=0", "nri pod post-update pod-a"} {
		if !slices.Contains(f.j.snapshot(), want) {
			t.Errorf("journal lacks %q:\n  %s", want, strings.Join(f.j.snapshot(), "\n  "))
		}
	}
	f.j.failAt("nri update", 1)
	if _, err := s.UpdateContainerResources(ctx, &runtime.UpdateContainerResourcesRequest{
		ContainerId: id, Linux: &runtime.LinuxContainerResources{CpuShares: 2},
	}); err == nil {
		t.Error("an update a plugin refused succeeded")
	}
}

// Without NRI, UpdatePodSandboxResources is accepted (the kubelet sets
// the pod's cgroup) and names what is wrong with a bad request.
func TestUpdatePodSandboxResourcesWithoutNRI(t *testing.T) {
	s, _ := fakeServer(t)
	sb := addReadyPod(t, s, "pod-a", hostPod("a"))
	ctx := context.Background()
	if _, err := s.UpdatePodSandboxResources(ctx, &runtime.UpdatePodSandboxResourcesRequest{PodSandboxId: sb.ID}); err != nil {
		t.Errorf("UpdatePodSandboxResources = %v", err)
	}
	_, err := s.UpdatePodSandboxResources(ctx, &runtime.UpdatePodSandboxResourcesRequest{})
	wantCode(t, err, codes.InvalidArgument, "pod_sandbox_id")
	_, err = s.UpdatePodSandboxResources(ctx, &runtime.UpdatePodSandboxResourcesRequest{PodSandboxId: "nope"})
	wantCode(t, err, codes.NotFound, "pod_sandbox_id")
}

// A plugin's update of a container that is busy or gone fails, and does
// not wait past its bound.
func TestNRIDomainUpdate(t *testing.T) {
	s, _ := fakeServer(t)
	old := nriLockWait
	nriLockWait = 50 * time.Millisecond
	t.Cleanup(func() { nriLockWait = old })
	addContainer(t, s, "ctr-busy", "pod-x", container.StateRunning)
	d := s.NRIDomain()
	ctx := context.Background()
	if err := d.UpdateContainer(ctx, &api.ContainerUpdate{ContainerId: "ctr-gone"}); err == nil || !strings.Contains(err.Error(), "ctr-gone") {
		t.Errorf("update of an unknown container = %v, want an error naming it", err)
	}
	if err := d.UpdateContainer(ctx, &api.ContainerUpdate{ContainerId: "ctr"}); err == nil {
		t.Error("an update matched a container by a prefix of its id")
	}
	unlock := s.ctrLocks.Lock("ctr-busy")
	defer unlock()
	start := time.Now()
	if err := d.UpdateContainer(ctx, &api.ContainerUpdate{ContainerId: "ctr-busy"}); err == nil || !strings.Contains(err.Error(), "busy") {
		t.Errorf("update of a locked container = %v, want busy", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the update waited %v for a busy container", took)
	}
}
