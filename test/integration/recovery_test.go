package integration

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// killAndRestart SIGKILLs the daemon, as an OOM kill would, and starts a new
// one on the same root with the same flags.
func (b *berth) killAndRestart(t *testing.T, args ...string) *berth {
	t.Helper()
	b.kill(t)
	return startBerthIn(t, b.Root, args...)
}

// kill SIGKILLs the daemon and waits until it is gone.
func (b *berth) kill(t *testing.T) {
	t.Helper()
	if err := b.Kill(); err != nil {
		t.Fatalf("kill berth: %v", err)
	}
	<-b.Exited()
	b.conn.Close()
	b.conn = nil
}

// 20 pods with a container each survive a kill -9 of the daemon: the same
// ids, IPs, names and log files, still running and manageable.
func TestRestartKeepsPodsAndContainers(t *testing.T) {
	tn := newTestNetwork(t)
	args := append(tn.args(), "--log-level", "info")
	b := startBerth(t, args...)
	ctx := ctxT(t)
	b.mustCrictl(t, "pull", "busybox")

	const pods = 20
	// A file here tells the first container to exit, so that it exits
	// while no daemon runs.
	exitSignal := t.TempDir()
	type podInfo struct{ pod, ctr, ip, logPath string }
	infos := make([]podInfo, pods)
	var wg sync.WaitGroup
	errs := make(chan error, pods)
	for i := range infos {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg := sandboxConfig(fmt.Sprintf("keep-%d", i))
			cfg.LogDirectory = t.TempDir()
			pod, err := b.runtime.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg})
			if err != nil {
				errs <- err
				return
			}
			cmd := "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done"
			var mounts []*runtime.Mount
			if i == 0 {
				cmd = "until [ -e /signal/exit ]; do sleep 0.1; done; exit 7"
				mounts = []*runtime.Mount{{HostPath: exitSignal, ContainerPath: "/signal"}}
			}
			ctr, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
				PodSandboxId: pod.GetPodSandboxId(), SandboxConfig: cfg,
				Config: &runtime.ContainerConfig{
					Metadata: &runtime.ContainerMetadata{Name: "logger"},
					Image:    &runtime.ImageSpec{Image: "busybox"},
					Command:  []string{"sh", "-c", cmd},
					LogPath:  "logger/0.log",
					Mounts:   mounts,
				},
			})
			if err != nil {
				errs <- err
				return
			}
			if _, err := b.runtime.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: ctr.GetContainerId()}); err != nil {
				errs <- err
				return
			}
			st, _ := b.runtime.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{PodSandboxId: pod.GetPodSandboxId()})
			cs, _ := b.runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: ctr.GetContainerId()})
			infos[i] = podInfo{pod.GetPodSandboxId(), ctr.GetContainerId(), st.GetStatus().GetNetwork().GetIp(), cs.GetStatus().GetLogPath()}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("set up pods: %v", err)
	}
	sizeBefore := fileSize(t, infos[1].logPath)
	// The container's parent is its conmon, which writes the exit file and
	// then exits: once it is gone, the exit is on disk for the next daemon.
	conmonGone := exited(t, parentPid(t, b.inspect(t, infos[0].ctr).Info.Pid))

	b.kill(t)
	writeFile(t, filepath.Join(exitSignal, "exit"), "")
	if !waitFor(conmonGone) {
		t.Fatal("the first container's conmon did not exit after its container was told to")
	}
	b = startBerthIn(t, b.Root, args...)

	ctx = ctxT(t)
	for i, in := range infos {
		st, err := b.runtime.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{PodSandboxId: in.pod})
		if err != nil {
			t.Fatalf("pod %d after restart: %v", i, err)
		}
		if st.GetStatus().GetState() != runtime.PodSandboxState_SANDBOX_READY || st.GetStatus().GetNetwork().GetIp() != in.ip {
			t.Errorf("pod %d after restart: %v ip %s, want ready with ip %s", i, st.GetStatus().GetState(), st.GetStatus().GetNetwork().GetIp(), in.ip)
		}
		cs, err := b.runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: in.ctr})
		if err != nil {
			t.Fatalf("container %d after restart: %v", i, err)
		}
		if cs.GetStatus().GetLogPath() != in.logPath {
			t.Errorf("container %d log path %s, was %s", i, cs.GetStatus().GetLogPath(), in.logPath)
		}
		want := runtime.ContainerState_CONTAINER_RUNNING
		if i == 0 {
			want = runtime.ContainerState_CONTAINER_EXITED
			if cs.GetStatus().GetExitCode() != 7 {
				t.Errorf("container that exited while berth was down: exit code %d, want 7", cs.GetStatus().GetExitCode())
			}
		}
		if cs.GetStatus().GetState() != want {
			t.Errorf("container %d after restart: %v, want %v", i, cs.GetStatus().GetState(), want)
		}
	}
	waitFor(func() bool { return fileSize(t, infos[1].logPath) > sizeBefore })
	if after := fileSize(t, infos[1].logPath); after <= sizeBefore {
		t.Errorf("log %s did not grow after the restart (%d -> %d bytes)", infos[1].logPath, sizeBefore, after)
	}
	if out := b.mustCrictl(t, "exec", "--sync", infos[2].ctr, "echo", "alive"); !strings.Contains(out, "alive") {
		t.Errorf("exec after restart: %q", out)
	}
	b.mustCrictl(t, "stop", infos[3].ctr)
	b.mustCrictl(t, "rm", infos[3].ctr)
	for _, in := range infos {
		if _, err := b.runtime.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: in.pod}); err != nil {
			t.Errorf("stop pod after restart: %v", err)
		}
		if _, err := b.runtime.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: in.pod}); err != nil {
			t.Errorf("remove pod after restart: %v", err)
		}
	}
	b.assertNoPodLeftovers(t, tn)
}

// parentPid is the parent of process pid, from /proc/<pid>/status.
func parentPid(t *testing.T, pid int) int {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("status of process %d: %v", pid, err)
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			var ppid int
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d", &ppid); err == nil {
				return ppid
			}
		}
	}
	t.Fatalf("no PPid in /proc/%d/status", pid)
	return 0
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return fi.Size()
}

// Each crash point kills the daemon in the middle of an operation; after a
// restart the object either exists whole and works, or is gone without a
// trace.
func TestCrashPointsLeaveNothingHalfMade(t *testing.T) {
	tn := newTestNetwork(t)
	for _, point := range []string{
		"RunPodSandbox:recorded", "RunPodSandbox:namespaces", "RunPodSandbox:network", "RunPodSandbox:infra", "RunPodSandbox:done",
		"CreateContainer:recorded", "CreateContainer:rootfs", "CreateContainer:runtime", "CreateContainer:done",
		"StartContainer:started", "RemoveContainer:marked", "RemoveContainer:runtime",
		"StopPodSandbox:containers", "StopPodSandbox:network",
		"RemovePodSandbox:marked", "RemovePodSandbox:containers", "RemovePodSandbox:namespaces",
	} {
		t.Run(point, func(t *testing.T) {
			t.Setenv("BERTH_CRASH_POINT", point)
			b := startBerth(t, tn.args()...)
			b.mustCrictl(t, "pull", "busybox")
			err := podLifecycle(ctxT(t), b)
			if err == nil {
				t.Fatalf("the lifecycle finished; crash point %s was never reached", point)
			}
			select {
			case <-b.Exited():
			case <-time.After(waitTimeout):
				t.Fatalf("daemon still runs after %v", err)
			}
			t.Setenv("BERTH_CRASH_POINT", "")
			b = b.killAndRestart(t, tn.args()...)

			ctx := ctxT(t)
			pods, err := b.runtime.ListPodSandbox(ctx, &runtime.ListPodSandboxRequest{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range pods.GetItems() {
				// What survived must work: a ready pod runs a new container.
				if p.GetState() == runtime.PodSandboxState_SANDBOX_READY {
					if err := runProbe(ctx, b, p.GetId()); err != nil {
						t.Errorf("pod %s survived the crash at %s but does not work: %v", p.GetId(), point, err)
					}
				}
				if _, err := b.runtime.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: p.GetId()}); err != nil {
					t.Errorf("remove pod after the crash: %v", err)
				}
			}
			b.assertNoPodLeftovers(t, tn)
		})
	}
}

// podLifecycle runs a pod through the operations that have crash points:
// run, create, start, stop and remove the container, stop the pod, remove
// the pod.
func podLifecycle(ctx context.Context, b *berth) error {
	return podWithContainerCycle(ctx, b, 2) // even: the container goes first
}

// runProbe proves a pod works: a new container in it runs and answers exec.
func runProbe(ctx context.Context, b *berth, podID string) error {
	st, err := b.runtime.PodSandboxStatus(ctx, &runtime.PodSandboxStatusRequest{PodSandboxId: podID})
	if err != nil {
		return err
	}
	cfg := &runtime.PodSandboxConfig{Metadata: st.GetStatus().GetMetadata(), Linux: &runtime.LinuxPodSandboxConfig{}}
	ctr, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
		PodSandboxId: podID, SandboxConfig: cfg,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "probe"},
			Image:    &runtime.ImageSpec{Image: "busybox"},
			Command:  []string{"sleep", "3600"},
		},
	})
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if _, err := b.runtime.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: ctr.GetContainerId()}); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	resp, err := b.runtime.ExecSync(ctx, &runtime.ExecSyncRequest{ContainerId: ctr.GetContainerId(), Cmd: []string{"echo", "ok"}, Timeout: 10})
	if err != nil || strings.TrimSpace(string(resp.GetStdout())) != "ok" {
		return fmt.Errorf("exec: %v %v", resp, err)
	}
	return nil
}

// After a reboot the run dirs (tmpfs) are empty and nothing runs: containers
// are reported exited and pods not ready, never running, and both remove.
func TestRebootReportsExitedNeverRunning(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "reboot", nil, "busybox")
	ctr := b.runContainer(t, podID, podFile, "c", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	if err := b.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.Exited()
	simulateReboot(t, b.Root, tn)

	b = startBerthIn(t, b.Root, tn.args()...)
	if pi := b.inspectp(t, podID); pi.Status.State != "SANDBOX_NOTREADY" {
		t.Errorf("pod after reboot: %s, want SANDBOX_NOTREADY", pi.Status.State)
	}
	if ci := b.inspect(t, ctr); ci.Status.State != "CONTAINER_EXITED" {
		t.Errorf("container after reboot: %s, want CONTAINER_EXITED", ci.Status.State)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// simulateReboot does to a dead daemon's root what a reboot does: every
// process of its containers is gone, the volatile dirs are empty, and the
// network's iptables rules are flushed (a reboot loses them; the bridge
// plugin cannot remove them without the pod's netns).
func simulateReboot(t *testing.T, root string, tn *testNetwork) {
	t.Helper()
	flushMasquerade(t, tn)
	for _, p := range processesMentioning(t, root) {
		pid := strings.SplitN(p, ":", 2)[0]
		var n int
		fmt.Sscanf(pid, "%d", &n)
		syscall.Kill(n, syscall.SIGKILL)
	}
	// The runtimes' own state lives on /run too.
	for _, rt := range []string{"crun", "runc"} {
		out, _ := exec.Command(rt, "--root", "/run/"+rt, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			bundle, _ := exec.Command(rt, "--root", "/run/"+rt, "state", id).Output()
			if strings.Contains(string(bundle), root) {
				exec.Command(rt, "--root", "/run/"+rt, "delete", "--force", id).Run()
			}
		}
	}
	for _, m := range mountsUnder(t, root) {
		unix.Unmount(m, unix.MNT_DETACH)
	}
	for _, dir := range []string{"run", "runroot"} {
		if err := os.RemoveAll(filepath.Join(root, dir)); err != nil {
			t.Fatal(err)
		}
	}
}

// The kubelet retries a RunPodSandbox that outlived its deadline with the
// same name: the retry gets the pod the first call made, and there is one.
func TestSlowNetworkRetryGetsThePod(t *testing.T) {
	tn := newTestNetwork(t)
	// A bridge plugin that takes 3s to ADD, shadowing the real one. The
	// sleep is what is tested: an ADD can only get slower on a busy node,
	// so it always outlasts the first call's 1s deadline.
	slow := t.TempDir()
	writeFile(t, filepath.Join(slow, "bridge"), "#!/bin/sh\n[ \"$CNI_COMMAND\" = ADD ] && sleep 3\nexec /usr/lib/cni/bridge \"$@\"\n")
	os.Chmod(filepath.Join(slow, "bridge"), 0o755)
	b := startBerth(t, append(tn.args(), "--cni-plugin-dir", slow, "--cni-plugin-dir", "/usr/lib/cni")...)

	cfg := sandboxConfig("slow")
	short, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err := b.runtime.RunPodSandbox(short, &runtime.RunPodSandboxRequest{Config: cfg})
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("RunPodSandbox past its deadline = %v, want DeadlineExceeded", err)
	}
	resp, err := b.runtime.RunPodSandbox(ctxT(t), &runtime.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	list, err := b.runtime.ListPodSandbox(ctxT(t), &runtime.ListPodSandboxRequest{})
	if err != nil || len(list.GetItems()) != 1 || list.GetItems()[0].GetId() != resp.GetPodSandboxId() {
		t.Fatalf("pods after the retry = %v, %v; want exactly the one the retry got", list.GetItems(), err)
	}
	if r := tn.reservations(t); len(r) != 1 {
		t.Errorf("IP reservations = %v, want one: no second ADD", r)
	}
	// A true duplicate, after the result was collected, is refused.
	if _, err := b.runtime.RunPodSandbox(ctxT(t), &runtime.RunPodSandboxRequest{Config: cfg}); status.Code(err) != codes.AlreadyExists {
		t.Errorf("a third RunPodSandbox with the name = %v, want AlreadyExists", err)
	}
	b.mustCrictl(t, "rmp", "-f", resp.GetPodSandboxId())
	b.assertNoPodLeftovers(t, tn)
}

// flushMasquerade removes the bridge plugin's masquerade rules and chains of
// pods on tn, as a reboot would.
func flushMasquerade(t *testing.T, tn *testNetwork) {
	t.Helper()
	_, subnet, _ := net.ParseCIDR(tn.subnet)
	out, err := exec.Command("iptables", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		t.Fatalf("list nat rules: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] != "-A" || f[2] != "-s" || !strings.Contains(line, "-j CNI-") {
			continue
		}
		ip, _, err := net.ParseCIDR(f[3])
		if err != nil || !subnet.Contains(ip) {
			continue
		}
		chain := f[len(f)-1]
		// The comment holds quotes: delete the rule by its number instead.
		rules, _ := exec.Command("iptables", "-t", "nat", "-S", "POSTROUTING").Output()
		for n, r := range strings.Split(string(rules), "\n") {
			if r == line {
				exec.Command("iptables", "-t", "nat", "-D", "POSTROUTING", fmt.Sprint(n)).Run() // line 0 is the policy
			}
		}
		exec.Command("iptables", "-t", "nat", "-F", chain).Run()
		exec.Command("iptables", "-t", "nat", "-X", chain).Run()
	}
}
