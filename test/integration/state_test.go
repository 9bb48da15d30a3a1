package integration

// Races a busy node brings out: each test drives two events that can come
// in either order (an exit and a start, a stop or a remove; a pod stop and a
// create in it; an exec and an exit; recovery and an exit) and checks that
// every order ends in a true status, with no leftover.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cpuHog keeps every core busy until the test ends, so that the daemon and
// the runtime lose the CPU at any instant, as on a busy node.
func cpuHog(t *testing.T) {
	t.Helper()
	path, err := exec.LookPath("stress-ng")
	if err != nil {
		t.Fatalf("stress-ng is missing (contrib/install-deps.sh installs it): %v", err)
	}
	cmd := exec.Command(path, "--cpu", "0", "--timeout", "1h", "--quiet")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start CPU hog: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
}

// kubeletPod is a pod config shaped as the kubelet sends it: a PID
// namespace per container (so no infra process) and, here, the host's
// network, so the test measures containers and not CNI.
func kubeletPod(name string) *runtime.PodSandboxConfig {
	cfg := sandboxConfig(name)
	cfg.Linux.SecurityContext = &runtime.LinuxSandboxSecurityContext{NamespaceOptions: &runtime.NamespaceOption{
		Network: runtime.NamespaceMode_NODE, Pid: runtime.NamespaceMode_CONTAINER,
	}}
	return cfg
}

// runKubeletPod pulls busybox and runs a kubeletPod named name.
func (b *berth) runKubeletPod(ctx context.Context, t *testing.T, name string) (string, *runtime.PodSandboxConfig) {
	t.Helper()
	b.mustCrictl(t, "pull", "busybox")
	cfg := kubeletPod(name)
	pod, err := b.runtime.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	return pod.GetPodSandboxId(), cfg
}

// removePodLeavingNothing removes the pod and checks nothing is left.
func (b *berth) removePodLeavingNothing(ctx context.Context, t *testing.T, podID string) {
	t.Helper()
	if _, err := b.runtime.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
		t.Fatal(err)
	}
	if recs := b.containerRecords(t); len(recs) != 0 {
		t.Errorf("container records left: %v", recs)
	}
	b.assertNoPodLeftovers(t, nil)
}

func longCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitExited waits until container id is reported exited and returns its
// status.
func (b *berth) waitExited(ctx context.Context, id string) (*runtime.ContainerStatus, error) {
	var st *runtime.ContainerStatus
	var err error
	waitFor(func() bool {
		var resp *runtime.ContainerStatusResponse
		resp, err = b.runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id})
		st = resp.GetStatus()
		return err != nil || st.GetState() == runtime.ContainerState_CONTAINER_EXITED
	})
	if err != nil {
		return nil, err
	}
	if st.GetState() != runtime.ContainerState_CONTAINER_EXITED {
		return nil, fmt.Errorf("container %s is still %s after %s", id, st.GetState(), waitTimeout)
	}
	return st, nil
}

// containerRecords lists the container records in the daemon's state dir.
func (b *berth) containerRecords(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(b.Root, "state", "containers"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestQuickExitsStartUnderLoad: 1,000 containers whose command exits at
// once, created and started 8 at a time in one pod while every core is
// busy. Every StartContainer succeeds, every status is the container's own
// exit with startedAt set and not after finishedAt, every STARTED event
// precedes its STOPPED, and nothing is left.
func TestQuickExitsStartUnderLoad(t *testing.T) {
	b := startBerth(t, "--log-level", "info")
	ctx := longCtx(t, 30*time.Minute)
	podID, cfg := b.runKubeletPod(ctx, t, "quick")
	events := b.collectEvents(t, ctx)
	cpuHog(t)

	const n = 1000
	ids := make([]string, n)
	inParallel(t, n, 8, func(i int) error {
		cmd, want := []string{"true"}, int32(0)
		if i%2 == 1 {
			cmd, want = []string{"sh", "-c", "exit 3"}, 3
		}
		ctr, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
			PodSandboxId: podID, SandboxConfig: cfg,
			Config: &runtime.ContainerConfig{
				Metadata: &runtime.ContainerMetadata{Name: fmt.Sprintf("quick-%d", i)},
				Image:    &runtime.ImageSpec{Image: "busybox"},
				Command:  cmd,
			},
		})
		if err != nil {
			return fmt.Errorf("CreateContainer %d: %w", i, err)
		}
		id := ctr.GetContainerId()
		ids[i] = id
		if _, err := b.runtime.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: id}); err != nil {
			return fmt.Errorf("StartContainer %d (%v): %w", i, cmd, err)
		}
		st, err := b.waitExited(ctx, id)
		if err != nil {
			return err
		}
		switch {
		case st.GetExitCode() != want:
			return fmt.Errorf("container %d (%v) exited %d, want %d", i, cmd, st.GetExitCode(), want)
		case st.GetStartedAt() == 0:
			return fmt.Errorf("container %d (%v) ran but its startedAt is 0", i, cmd)
		case st.GetStartedAt() > st.GetFinishedAt():
			return fmt.Errorf("container %d (%v): startedAt %d after finishedAt %d", i, cmd, st.GetStartedAt(), st.GetFinishedAt())
		}
		if _, err := b.runtime.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
			return fmt.Errorf("RemoveContainer %d: %w", i, err)
		}
		return nil
	})
	if t.Failed() {
		return
	}
	for i, id := range ids {
		evs := eventTypes(events.of(t, id, 4))
		if strings.Join(evs, ",") != "CREATED,STARTED,STOPPED,DELETED" {
			t.Errorf("container %d: events %v, want CREATED,STARTED,STOPPED,DELETED", i, evs)
		}
	}
	b.removePodLeavingNothing(ctx, t, podID)
}

// TestOneNameTwoConfigs: concurrent creates of one container name, half
// with one image and half with another. At most one container results, and
// every caller gets a container made from its own config or AlreadyExists.
func TestOneNameTwoConfigs(t *testing.T) {
	b := startBerth(t)
	ctx := ctxT(t)
	b.mustCrictl(t, "pull", "busybox:1.36")
	podID, cfg := b.runKubeletPod(ctx, t, "twoconfigs")
	images := []string{"busybox", "busybox:1.36"}
	type result struct {
		image, id string
		err       error
	}
	results := make([]result, 20)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img := images[i%2]
			resp, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
				PodSandboxId: podID, SandboxConfig: cfg,
				Config: &runtime.ContainerConfig{
					Metadata: &runtime.ContainerMetadata{Name: "contested"},
					Image:    &runtime.ImageSpec{Image: img},
					Command:  []string{"sleep", "3600"},
				},
			})
			results[i] = result{img, resp.GetContainerId(), err}
		}()
	}
	wg.Wait()
	made := map[string]string{} // id → image asked for
	for _, r := range results {
		if r.err != nil {
			if status.Code(r.err) != codes.AlreadyExists {
				t.Errorf("create with %s: %v, want OK or AlreadyExists", r.image, r.err)
			}
			continue
		}
		if prev, ok := made[r.id]; ok && prev != r.image {
			t.Errorf("container %s handed to callers asking for %s and for %s", r.id, prev, r.image)
		}
		made[r.id] = r.image
		st, err := b.runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: r.id})
		if err != nil {
			t.Fatal(err)
		}
		if got := st.GetStatus().GetImage().GetImage(); got != r.image {
			t.Errorf("caller asking for %s got container %s of %s", r.image, r.id, got)
		}
	}
	list, err := b.runtime.ListContainers(ctx, &runtime.ListContainersRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetContainers()) > 1 || len(made) > 1 {
		t.Errorf("%d containers listed, %d ids handed out: want at most one", len(list.GetContainers()), len(made))
	}
	if len(made) == 0 {
		t.Error("no caller got the container")
	}
	b.removePodLeavingNothing(ctx, t, podID)
}

// TestEnvWithNUL: the runtime passes env as C strings, so a NUL byte would
// cut the value short; it is refused, naming the variable.
func TestEnvWithNUL(t *testing.T) {
	b := startBerth(t)
	ctx := ctxT(t)
	podID, cfg := b.runKubeletPod(ctx, t, "nul")
	_, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: cfg,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "nul"},
			Image:    &runtime.ImageSpec{Image: "busybox"},
			Envs:     []*runtime.KeyValue{{Key: "OK", Value: []byte("fine")}, {Key: "SECRET", Value: []byte("abc\x00def")}},
		},
	})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "SECRET") || !strings.Contains(err.Error(), "config.envs[1]") {
		t.Errorf("env with a NUL: %v, want InvalidArgument naming config.envs[1] SECRET", err)
	}
	b.removePodLeavingNothing(ctx, t, podID)
}

// TestStopPodWhileCreating: containers are created in a pod while it is
// stopped. A create either fails with FailedPrecondition or makes a
// container that the stop then stopped; none runs in a stopped pod, and the
// pod's removal leaves nothing.
func TestStopPodWhileCreating(t *testing.T) {
	b := startBerth(t, "--log-level", "info")
	ctx := longCtx(t, 10*time.Minute)
	cpuHog(t)
	for round := 0; round < 5; round++ {
		podID, cfg := b.runKubeletPod(ctx, t, fmt.Sprintf("stopping-%d", round))
		var wg sync.WaitGroup
		var mu sync.Mutex
		var created []string
		for i := 0; i < 6; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				resp, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
					PodSandboxId: podID, SandboxConfig: cfg,
					Config: &runtime.ContainerConfig{
						Metadata: &runtime.ContainerMetadata{Name: fmt.Sprintf("c%d", i)},
						Image:    &runtime.ImageSpec{Image: "busybox"},
						Command:  []string{"sleep", "3600"},
					},
				})
				if err != nil {
					if status.Code(err) != codes.FailedPrecondition {
						t.Errorf("create in a stopping pod: %v, want OK or FailedPrecondition", err)
					}
					return
				}
				mu.Lock()
				created = append(created, resp.GetContainerId())
				mu.Unlock()
			}()
		}
		if _, err := b.runtime.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for _, id := range created {
			st, err := b.runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id})
			if err != nil {
				t.Fatal(err)
			}
			if s := st.GetStatus().GetState(); s != runtime.ContainerState_CONTAINER_EXITED {
				t.Errorf("round %d: container %s is %s in a stopped pod", round, id, s)
			}
			if _, err := b.runtime.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: id}); status.Code(err) != codes.FailedPrecondition {
				t.Errorf("round %d: start in a stopped pod: %v, want FailedPrecondition", round, err)
			}
		}
		if _, err := b.runtime.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: podID}); err != nil {
			t.Fatal(err)
		}
	}
	if recs := b.containerRecords(t); len(recs) != 0 {
		t.Errorf("container records left: %v", recs)
	}
	b.assertNoPodLeftovers(t, nil)
}

// gatedContainer creates and starts a container that runs until the file
// "go" appears in gate (a host dir mounted at /gate), then exits with code.
func (b *berth) gatedContainer(ctx context.Context, t *testing.T, podID string, cfg *runtime.PodSandboxConfig, name, gate string, code int) string {
	t.Helper()
	ctr, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: cfg,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: name},
			Image:    &runtime.ImageSpec{Image: "busybox"},
			Command:  []string{"sh", "-c", fmt.Sprintf("while [ ! -e /gate/go ]; do sleep 0.02; done; exit %d", code)},
			Mounts:   []*runtime.Mount{{HostPath: gate, ContainerPath: "/gate"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.runtime.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: ctr.GetContainerId()}); err != nil {
		t.Fatal(err)
	}
	return ctr.GetContainerId()
}

// TestExitRacesStopRemoveAndExec: containers exit at the moment they are
// stopped, removed, or exec'd into. A stop or remove succeeds; an exec
// returns a result or FailedPrecondition, never Unknown; every exit is
// recorded with its own code, and a removed container's record stays gone.
func TestExitRacesStopRemoveAndExec(t *testing.T) {
	b := startBerth(t, "--log-level", "info")
	ctx := longCtx(t, 10*time.Minute)
	podID, cfg := b.runKubeletPod(ctx, t, "racing")
	cpuHog(t)
	for i := 0; i < 10; i++ {
		gate := t.TempDir()
		stopped := b.gatedContainer(ctx, t, podID, cfg, fmt.Sprintf("stop-%d", i), gate, 4)
		removed := b.gatedContainer(ctx, t, podID, cfg, fmt.Sprintf("rm-%d", i), gate, 5)
		execd := b.gatedContainer(ctx, t, podID, cfg, fmt.Sprintf("exec-%d", i), gate, 6)
		var wg sync.WaitGroup
		wg.Add(4)
		go func() { defer wg.Done(); os.WriteFile(filepath.Join(gate, "go"), nil, 0o644) }()
		go func() {
			defer wg.Done()
			if _, err := b.runtime.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: stopped, Timeout: 10}); err != nil {
				t.Errorf("stop of an exiting container: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			if _, err := b.runtime.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: removed}); err != nil {
				t.Errorf("remove of an exiting container: %v", err)
			}
		}()
		go func() {
			defer wg.Done()
			_, err := b.runtime.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: execd, Cmd: []string{"sleep", "30"}, Timeout: 60})
			if err != nil && status.Code(err) != codes.FailedPrecondition {
				t.Errorf("exec into an exiting container: %v, want a result or FailedPrecondition", err)
			}
		}()
		wg.Wait()
		// The stop either saw the exit (code 4) or killed the container
		// first (137); the exec'd container's own exit is always its own.
		if st, err := b.waitExited(ctx, stopped); err != nil {
			t.Error(err)
		} else if c := st.GetExitCode(); c != 4 && c != 137 {
			t.Errorf("stopped container exited %d, want 4 or 137", c)
		}
		if st, err := b.waitExited(ctx, execd); err != nil {
			t.Error(err)
		} else if st.GetExitCode() != 6 {
			t.Errorf("exec'd container exited %d, want 6", st.GetExitCode())
		}
		if _, err := b.runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: removed}); status.Code(err) != codes.NotFound {
			t.Errorf("removed container: %v, want NotFound", err)
		}
		for _, id := range []string{stopped, execd} {
			if _, err := b.runtime.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
				t.Fatal(err)
			}
		}
		// The records go when the removals' background release is done.
		waitFor(func() bool { return len(b.containerRecords(t)) == 0 })
		if recs := b.containerRecords(t); len(recs) != 0 {
			t.Fatalf("round %d: records left after every remove (an exit resurrected one?): %v", i, recs)
		}
	}
	b.removePodLeavingNothing(ctx, t, podID)
}

// TestExitDuringRecovery: containers exit while the daemon is down and
// while it restarts and recovers. Each is reported exited with its own
// code, not as a lost container (255).
func TestExitDuringRecovery(t *testing.T) {
	b := startBerth(t, "--log-level", "info")
	ctx := longCtx(t, 10*time.Minute)
	podID, cfg := b.runKubeletPod(ctx, t, "recovering")
	gateDown, gateDuring := t.TempDir(), t.TempDir()
	var ids []string
	for i := 0; i < 20; i++ {
		gate := gateDown
		if i%2 == 1 {
			gate = gateDuring
		}
		ids = append(ids, b.gatedContainer(ctx, t, podID, cfg, fmt.Sprintf("r%d", i), gate, 10+i))
	}
	b.kill(t)
	if err := os.WriteFile(filepath.Join(gateDown, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The other half exits while the new daemon starts and recovers.
	opened := make(chan struct{})
	go func() {
		defer close(opened)
		os.WriteFile(filepath.Join(gateDuring, "go"), nil, 0o644)
	}()
	b = startBerthIn(t, b.Root, "--log-level", "info")
	<-opened
	ctx = ctxT(t)
	for i, id := range ids {
		st, err := b.waitExited(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if st.GetExitCode() != int32(10+i) || st.GetStartedAt() == 0 || st.GetStartedAt() > st.GetFinishedAt() {
			t.Errorf("container %d: exit %d (%s), startedAt %d, finishedAt %d; want exit %d after its start",
				i, st.GetExitCode(), st.GetMessage(), st.GetStartedAt(), st.GetFinishedAt(), 10+i)
		}
	}
	b.removePodLeavingNothing(ctx, t, podID)
}
