package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// ctrJSON is a container config as a person writes it for `crictl create`.
func ctrJSON(t *testing.T, name, image string, extra map[string]any) string {
	t.Helper()
	cfg := map[string]any{
		"metadata": map[string]any{"name": name},
		"image":    map[string]any{"image": image},
		"log_path": name + ".log",
		"linux":    map[string]any{},
	}
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(t.TempDir(), name+".json")
	writeFile(t, path, string(b))
	return path
}

// podWithContainers runs a pod (own PID namespaces, so no infra unless asked)
// and returns its id and config file, pulling the images its containers use.
func (b *berth) runPod(t *testing.T, name string, extra map[string]any, images ...string) (string, string) {
	t.Helper()
	for _, img := range images {
		b.mustCrictl(t, "pull", img)
	}
	pod := podJSON(t, name, extra)
	return strings.TrimSpace(b.mustCrictl(t, "runp", pod)), pod
}

// runContainer creates and starts a container, returning its id.
func (b *berth) runContainer(t *testing.T, podID, podFile, name, image string, extra map[string]any) string {
	t.Helper()
	id := strings.TrimSpace(b.mustCrictl(t, "create", podID, ctrJSON(t, name, image, extra), podFile))
	b.mustCrictl(t, "start", id)
	return id
}

type ctrInspect struct {
	Status struct {
		State    string `json:"state"`
		ExitCode int32  `json:"exitCode"`
		Reason   string `json:"reason"`
		LogPath  string `json:"logPath"`
		ImageRef string `json:"imageRef"`
	} `json:"status"`
	Info struct {
		Pid int `json:"pid"`
	} `json:"info"`
}

func (b *berth) inspect(t *testing.T, id string) ctrInspect {
	t.Helper()
	var ci ctrInspect
	out := b.mustCrictl(t, "inspect", id)
	if err := json.Unmarshal([]byte(out), &ci); err != nil {
		t.Fatalf("parse crictl inspect: %v\n%s", err, out)
	}
	return ci
}

// waitState polls until the container reaches state, and returns its last
// status either way.
func (b *berth) waitState(t *testing.T, id, state string) ctrInspect {
	t.Helper()
	var ci ctrInspect
	waitFor(func() bool {
		ci = b.inspect(t, id)
		return ci.Status.State == state
	})
	return ci
}

var criLogLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) (stdout|stderr) (F|P) `)

// A crictl session with one busybox container.
func TestContainerLifecycleWithCrictl(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "app", nil, "busybox")

	id := strings.TrimSpace(b.mustCrictl(t, "create", podID, ctrJSON(t, "hello", "busybox", map[string]any{
		"command": []string{"sh", "-c", "echo hello from berth; echo to stderr >&2; exec sleep 3600"},
	}), podFile))
	if ci := b.inspect(t, id); ci.Status.State != "CONTAINER_CREATED" {
		t.Errorf("after create: %s", ci.Status.State)
	}
	b.mustCrictl(t, "start", id)
	if out := b.mustCrictl(t, "ps", "-q"); strings.TrimSpace(out) != id {
		t.Errorf("crictl ps -q = %q, want %s", out, id)
	}
	ci := b.inspect(t, id)
	if ci.Status.State != "CONTAINER_RUNNING" || ci.Info.Pid == 0 {
		t.Errorf("after start: %s pid %d", ci.Status.State, ci.Info.Pid)
	}
	if !strings.Contains(ci.Status.ImageRef, "busybox@sha256:") {
		t.Errorf("imageRef = %q, want the repo digest", ci.Status.ImageRef)
	}

	var logs string
	waitFor(func() bool {
		logs, _ = b.crictl(t, "logs", id)
		return strings.Contains(logs, "hello from berth")
	})
	if !strings.Contains(logs, "hello from berth") {
		t.Errorf("crictl logs = %q", logs)
	}
	raw, err := os.ReadFile(ci.Status.LogPath)
	if err != nil {
		t.Fatalf("read log file: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	for _, l := range lines {
		if !criLogLine.MatchString(l) {
			t.Errorf("log line not in CRI format: %q", l)
		}
	}
	if !strings.Contains(string(raw), " stderr F to stderr") || !strings.Contains(string(raw), " stdout F hello from berth") {
		t.Errorf("log file lacks the tagged lines:\n%s", raw)
	}

	// --sync is ExecSync; crictl prints stdout and stderr, each with a newline.
	if out := b.mustCrictl(t, "exec", "--sync", id, "echo", "hi"); strings.TrimSpace(out) != "hi" {
		t.Errorf("crictl exec echo hi = %q", out)
	}
	resp, err := b.runtime.ExecSync(ctxT(t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", "echo out; echo err >&2; exit 7"}})
	if err != nil || string(resp.GetStdout()) != "out\n" || string(resp.GetStderr()) != "err\n" || resp.GetExitCode() != 7 {
		t.Errorf("ExecSync = %v, %v", resp, err)
	}
	start := time.Now()
	_, err = b.runtime.ExecSync(ctxT(t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"sleep", "60"}, Timeout: 1})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 10*time.Second {
		t.Errorf("ExecSync past its timeout = %v after %v, want DeadlineExceeded", err, time.Since(start))
	}

	// sleep ignores nothing: SIGTERM ends it at once.
	b.mustCrictl(t, "stop", "--timeout", "10", id)
	ci = b.inspect(t, id)
	if ci.Status.State != "CONTAINER_EXITED" || ci.Status.ExitCode != 143 || ci.Status.Reason != "Error" {
		t.Errorf("after stop: %+v", ci.Status)
	}
	b.mustCrictl(t, "stop", id) // idempotent
	b.mustCrictl(t, "rm", id)
	// crictl rm asks for the status first; the CRI call itself is idempotent.
	if _, err := b.runtime.RemoveContainer(ctxT(t), &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Errorf("RemoveContainer of a removed container: %v, want success", err)
	}
	if out := b.mustCrictl(t, "ps", "-a", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("containers after rm: %q", out)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

func TestContainerExitIsNoticed(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "exits", nil, "busybox")
	for _, tc := range []struct {
		name, cmd, reason string
		code              int32
	}{
		{"completed", "exit 0", "Completed", 0},
		{"error", "exit 3", "Error", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctxT(t))
			defer cancel()
			events := b.collectEvents(t, ctx)
			id := b.runContainer(t, podID, podFile, tc.name, "busybox", map[string]any{"command": []string{"sh", "-c", tc.cmd}})
			ci := b.waitState(t, id, "CONTAINER_EXITED")
			if ci.Status.State != "CONTAINER_EXITED" || ci.Status.ExitCode != tc.code || ci.Status.Reason != tc.reason {
				t.Errorf("status = %+v, want exited %d %s", ci.Status, tc.code, tc.reason)
			}
			// From conmon's record of the exit to the daemon's stopped
			// event: the daemon's delay alone, not the time this test's
			// crictl calls take on a busy node.
			evs := events.of(t, id, 3)
			st, err := b.runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: id})
			if err != nil {
				t.Fatalf("ContainerStatus: %v", err)
			}
			if got := fmt.Sprint(eventTypes(evs)); got != "[CREATED STARTED STOPPED]" {
				t.Fatalf("events = %s, want [CREATED STARTED STOPPED] (stream error %v)", got, events.err)
			}
			if d := time.Duration(evs[2].GetCreatedAt() - st.GetStatus().GetFinishedAt()); d > 2*time.Second {
				t.Errorf("exit noticed %v after it happened, want within a second", d)
			}
		})
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

func TestContainersOfOnePodShareLocalhost(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "shared", nil, "busybox")
	b.runContainer(t, podID, podFile, "server", "busybox", map[string]any{
		"command": []string{"sh", "-c", "mkdir -p /www && echo hello-from-server > /www/index.html && exec httpd -f -p 8080 -h /www"},
	})
	client := b.runContainer(t, podID, podFile, "client", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	var out string
	var err error
	waitFor(func() bool {
		out, err = b.crictl(t, "exec", "--sync", client, "wget", "-qO-", "http://127.0.0.1:8080/")
		return err == nil
	})
	if strings.TrimSpace(out) != "hello-from-server" {
		t.Errorf("client's request to localhost:8080 = %q, %v", out, err)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

func TestContainerUser(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "users", nil, "busybox", "docker.io/berthtest/nonroot:latest")
	for _, tc := range []struct {
		name, image string
		sc          map[string]any
		want        string
	}{
		{"image USER", "docker.io/berthtest/nonroot:latest", nil, "1000 1000"},
		// A uid with no passwd entry gets group 0, as in CRI-O and containerd.
		{"run_as_user overrides it", "docker.io/berthtest/nonroot:latest", map[string]any{"run_as_user": map[string]any{"value": 2000}}, "2000 0"},
		{"run_as_group too", "busybox", map[string]any{"run_as_user": map[string]any{"value": 3000}, "run_as_group": map[string]any{"value": 3001}}, "3000 3001"},
		{"run_as_username", "docker.io/berthtest/nonroot:latest", map[string]any{"run_as_username": "app"}, "1000 1000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]any{"command": []string{"sleep", "3600"}}
			if tc.sc != nil {
				extra["linux"] = map[string]any{"security_context": tc.sc}
			}
			id := b.runContainer(t, podID, podFile, strings.ReplaceAll(tc.name, " ", "-"), tc.image, extra)
			out := b.mustCrictl(t, "exec", "--sync", id, "sh", "-c", "echo $(id -u) $(id -g)")
			if strings.TrimSpace(out) != tc.want {
				t.Errorf("uid gid = %q, want %q", out, tc.want)
			}
		})
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

func TestContainerSecurity(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "security", nil, "busybox")
	capLast, _ := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	var n int
	fmt.Sscanf(string(capLast), "%d", &n)
	allCaps := fmt.Sprintf("%016x", uint64(1)<<(n+1)-1)

	for _, tc := range []struct {
		name    string
		sc      map[string]any
		cmd     string
		want    string // in the output
		wantErr bool   // the command fails
	}{
		{"seccomp RuntimeDefault blocks unshare", map[string]any{"seccomp": map[string]any{"profile_type": 0}}, "grep Seccomp: /proc/self/status; unshare -U true", "Seccomp:\t2", true},
		{"unconfined allows it", map[string]any{"seccomp": map[string]any{"profile_type": 1}}, "grep Seccomp: /proc/self/status; unshare -U true && echo unshared", "unshared", false},
		{"readonly rootfs refuses writes", map[string]any{"readonly_rootfs": true}, "touch /newfile", "Read-only file system", true},
		{"default capabilities lack NET_ADMIN", nil, "ip link set lo mtu 1400", "", true},
		{"added NET_ADMIN", map[string]any{"capabilities": map[string]any{"add_capabilities": []string{"NET_ADMIN"}}}, "ip link set lo mtu 1400 && echo changed", "changed", false},
		{"drop ALL", map[string]any{"capabilities": map[string]any{"drop_capabilities": []string{"ALL"}}}, "grep CapEff /proc/self/status", "0000000000000000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]any{"command": []string{"sleep", "3600"}}
			if tc.sc != nil {
				extra["linux"] = map[string]any{"security_context": tc.sc}
			}
			id := b.runContainer(t, podID, podFile, strings.ReplaceAll(tc.name, " ", "-"), "busybox", extra)
			resp, err := b.runtime.ExecSync(ctxT(t), &runtime.ExecSyncRequest{ContainerId: id, Cmd: []string{"sh", "-c", tc.cmd}, Timeout: 30})
			if err != nil {
				t.Fatal(err)
			}
			out := string(resp.GetStdout()) + string(resp.GetStderr())
			if (resp.GetExitCode() != 0) != tc.wantErr || !strings.Contains(out, tc.want) {
				t.Errorf("%q exited %d with %q; want failure %v and %q", tc.cmd, resp.GetExitCode(), out, tc.wantErr, tc.want)
			}
		})
	}
	b.mustCrictl(t, "rmp", "-f", podID)

	// Only a privileged pod may hold privileged containers.
	privPod, privFile := b.runPod(t, "privileged", map[string]any{
		"linux": map[string]any{"security_context": map[string]any{"privileged": true}},
	})
	priv := b.runContainer(t, privPod, privFile, "privileged", "busybox", map[string]any{
		"command": []string{"sleep", "3600"},
		"linux":   map[string]any{"security_context": map[string]any{"privileged": true}},
	})
	// All capabilities the daemon holds: this machine withholds CAP_SYS_RESOURCE.
	own := capEff(t, "self")
	if out := b.mustCrictl(t, "exec", "--sync", priv, "grep", "CapEff", "/proc/self/status"); !strings.Contains(out, own) {
		t.Errorf("privileged CapEff: %q, want the daemon's full set %s (all: %s)", out, own, allCaps)
	}
	b.mustCrictl(t, "rmp", "-f", privPod)
	b.assertNoPodLeftovers(t, tn)
}

// capEff is a process's effective capability mask as /proc shows it.
func capEff(t *testing.T, pid string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			return strings.TrimSpace(strings.TrimPrefix(l, "CapEff:"))
		}
	}
	t.Fatal("no CapEff")
	return ""
}

func cgroupFile(t *testing.T, id, controller, file string) string {
	t.Helper()
	for _, p := range []string{
		filepath.Join("/sys/fs/cgroup", controller, "berth", "berth-"+id, file),
		filepath.Join("/sys/fs/cgroup/berth", "berth-"+id, file),
	} {
		if b, err := os.ReadFile(p); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	t.Fatalf("no %s/%s for container %s", controller, file, id)
	return ""
}

func TestContainerResources(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "resources", nil, "busybox")
	const mib = 1 << 20

	hog := b.runContainer(t, podID, podFile, "hog", "busybox", map[string]any{
		"command": []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"},
		"linux":   map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 16 * mib}},
	})
	if ci := b.waitState(t, hog, "CONTAINER_EXITED"); ci.Status.Reason != "OOMKilled" {
		t.Errorf("memory hog under 16 MiB: %+v, want OOMKilled", ci.Status)
	}

	id := b.runContainer(t, podID, podFile, "limited", "busybox", map[string]any{
		"command": []string{"sleep", "3600"},
		"linux":   map[string]any{"resources": map[string]any{"memory_limit_in_bytes": 64 * mib, "cpu_shares": 512}},
	})
	if got := cgroupFile(t, id, "memory", "memory.limit_in_bytes"); got != fmt.Sprint(64*mib) {
		t.Errorf("memory limit = %s, want 64 MiB", got)
	}
	_, err := b.runtime.UpdateContainerResources(ctxT(t), &runtime.UpdateContainerResourcesRequest{
		ContainerId: id,
		Linux:       &runtime.LinuxContainerResources{MemoryLimitInBytes: 128 * mib, CpuShares: 1024},
	})
	if err != nil {
		t.Fatalf("UpdateContainerResources: %v", err)
	}
	if got := cgroupFile(t, id, "memory", "memory.limit_in_bytes"); got != fmt.Sprint(128*mib) {
		t.Errorf("memory limit after update = %s, want 128 MiB", got)
	}
	if got := cgroupFile(t, id, "cpu", "cpu.shares"); got != "1024" {
		t.Errorf("cpu shares after update = %s, want 1024", got)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// An image's symlinks to / and .. used as mount target and working dir must
// resolve inside the rootfs: nothing may be created or mounted on the host.
func TestSymlinksInImageStayInRootfs(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "symlinks", nil, "docker.io/berthtest/symlinks:latest")
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "marker"), "from-host")
	escape := "berth-escape-" + fmt.Sprint(time.Now().UnixNano())
	id := b.runContainer(t, podID, podFile, "escape", "docker.io/berthtest/symlinks:latest", map[string]any{
		"command":     []string{"sleep", "3600"},
		"working_dir": "/up/" + escape + "-wd",
		"mounts": []map[string]any{
			{"host_path": src, "container_path": "/evil/" + escape + "-mnt"},
			{"host_path": src, "container_path": "/etc/evil-dir/" + escape + "-tmp"},
		},
	})
	for _, p := range []string{"/" + escape + "-wd", "/" + escape + "-mnt", "/tmp/" + escape + "-tmp"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("host path %s exists (err %v): a symlink in the image escaped the rootfs", p, err)
			os.RemoveAll(p)
		}
	}
	out := b.mustCrictl(t, "exec", "--sync", id, "sh", "-c", "pwd; cat /"+escape+"-mnt/marker /tmp/"+escape+"-tmp/marker")
	if !strings.Contains(out, escape+"-wd") || strings.Count(out, "from-host") != 2 {
		t.Errorf("inside the container: %q; want the working dir and both mounts inside the rootfs", out)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

func TestCreateContainerBadInput(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	ctx := ctxT(t)
	b.mustCrictl(t, "pull", "busybox")
	pod, err := b.runtime.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: sandboxConfig("bad")})
	if err != nil {
		t.Fatal(err)
	}
	podID := pod.GetPodSandboxId()
	cfg := func(name, image string, mounts ...*runtime.Mount) *runtime.ContainerConfig {
		return &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: name},
			Image:    &runtime.ImageSpec{Image: image},
			Command:  []string{"sleep", "3600"},
			Mounts:   mounts,
		}
	}
	first, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{PodSandboxId: podID, Config: cfg("dup", "busybox"), SandboxConfig: sandboxConfig("bad")})
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	for _, tc := range []struct {
		name    string
		req     *runtime.CreateContainerRequest
		code    codes.Code
		mention string
	}{
		{"unknown pod", &runtime.CreateContainerRequest{PodSandboxId: "nope", Config: cfg("a", "busybox")}, codes.NotFound, "nope"},
		{"empty pod id", &runtime.CreateContainerRequest{Config: cfg("a", "busybox")}, codes.InvalidArgument, "pod_sandbox_id"},
		{"missing image", &runtime.CreateContainerRequest{PodSandboxId: podID, Config: cfg("a", "docker.io/library/absent:1")}, codes.NotFound, "absent:1"},
		{"no image", &runtime.CreateContainerRequest{PodSandboxId: podID, Config: cfg("a", "")}, codes.InvalidArgument, "config.image.image"},
		{"no name", &runtime.CreateContainerRequest{PodSandboxId: podID, Config: cfg("", "busybox")}, codes.InvalidArgument, "config.metadata.name"},
		{"duplicate name", &runtime.CreateContainerRequest{PodSandboxId: podID, Config: cfg("dup", "busybox")}, codes.AlreadyExists, first.GetContainerId()},
		{"empty host path", &runtime.CreateContainerRequest{PodSandboxId: podID, Config: cfg("a", "busybox", &runtime.Mount{ContainerPath: "/data"})}, codes.InvalidArgument, "config.mounts[0].host_path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := b.runtime.CreateContainer(ctx, tc.req)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), tc.mention) {
				t.Errorf("CreateContainer = %v; want %v naming %q", err, tc.code, tc.mention)
			}
		})
	}
	for _, call := range []struct {
		name string
		err  error
	}{
		{"ContainerStatus", func() error {
			_, err := b.runtime.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: "nope"})
			return err
		}()},
		{"StartContainer", func() error {
			_, err := b.runtime.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: "nope"})
			return err
		}()},
	} {
		if status.Code(call.err) != codes.NotFound || !strings.Contains(call.err.Error(), "nope") {
			t.Errorf("%s(unknown) = %v, want NotFound naming it", call.name, call.err)
		}
	}
	if _, err := b.runtime.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: "nope"}); err != nil {
		t.Errorf("StopContainer(unknown) = %v, want success", err)
	}
	if _, err := b.runtime.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: "nope"}); err != nil {
		t.Errorf("RemoveContainer(unknown) = %v, want success", err)
	}
	// Only the first container exists and only its rootfs is in storage.
	list, _ := b.runtime.ListContainers(ctx, &runtime.ListContainersRequest{})
	if len(list.GetContainers()) != 1 {
		t.Errorf("containers = %v, want only the first", list.GetContainers())
	}
	if ids := storageContainers(t, b); len(ids) != 2 { // the container and the pod's infra
		t.Errorf("storage containers = %v, want the first container's and the infra's", ids)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// A pod's hostPort mapping publishes its container's port on the node.
func TestHostPortReachesContainer(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	const hostPort = 12080
	podID, podFile := b.runPod(t, "hostport", map[string]any{
		"port_mappings": []map[string]any{{"protocol": 0, "container_port": 80, "host_port": hostPort}},
	}, "busybox")
	b.runContainer(t, podID, podFile, "web", "busybox", map[string]any{
		"command": []string{"sh", "-c", "mkdir -p /www && echo published > /www/index.html && exec httpd -f -p 80 -h /www"},
	})
	var body string
	waitFor(func() bool {
		body = httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hostPort))
		return body != ""
	})
	if strings.TrimSpace(body) != "published" {
		t.Errorf("GET 127.0.0.1:%d = %q, want the container's page", hostPort, body)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
	if body := httpGet(fmt.Sprintf("http://127.0.0.1:%d/", hostPort)); body != "" {
		t.Errorf("hostPort still answers after the pod is gone: %q", body)
	}
}

func httpGet(url string) string {
	// A request is answered or refused at once; the timeout only bounds
	// one that hangs.
	c := http.Client{Timeout: waitTimeout}
	resp, err := c.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// Pods with running containers through their whole life: nothing is left.
func TestPodsWithContainersLeakNothing(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, append(tn.args(), "--log-level", "info")...)
	ctx := ctxT(t)
	b.mustCrictl(t, "pull", "busybox")
	inParallel(t, 40, 4, func(i int) error { return podWithContainerCycle(ctx, b, i) })
	b.assertNoPodLeftovers(t, tn)
}

func podWithContainerCycle(ctx context.Context, b *berth, i int) error {
	cfg := sandboxConfig("leak-" + strconv.Itoa(i))
	pod, err := b.runtime.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg})
	if err != nil {
		return err
	}
	ctr, err := b.runtime.CreateContainer(ctx, &runtime.CreateContainerRequest{
		PodSandboxId: pod.GetPodSandboxId(), SandboxConfig: cfg,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "sleeper"},
			Image:    &runtime.ImageSpec{Image: "busybox"},
			Command:  []string{"sleep", "3600"},
		},
	})
	if err != nil {
		return err
	}
	if _, err := b.runtime.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: ctr.GetContainerId()}); err != nil {
		return err
	}
	// Half the pods are stopped container first, as the kubelet does; the
	// other half are torn down whole.
	if i%2 == 0 {
		if _, err := b.runtime.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: ctr.GetContainerId(), Timeout: 5}); err != nil {
			return err
		}
		if _, err := b.runtime.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: ctr.GetContainerId()}); err != nil {
			return err
		}
	}
	if _, err := b.runtime.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: pod.GetPodSandboxId()}); err != nil {
		return err
	}
	_, err = b.runtime.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: pod.GetPodSandboxId()})
	return err
}

// The kubelet rotates a container's log by renaming it and asking for a
// reopen: new lines go to a new file at the same path.
func TestReopenContainerLogAfterRotation(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "rotate", nil, "busybox")
	id := b.runContainer(t, podID, podFile, "ticker", "busybox", map[string]any{
		"command": []string{"sh", "-c", "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"},
	})
	logPath := b.inspect(t, id).Status.LogPath
	ticked := func(path string) func() bool {
		return func() bool {
			raw, err := os.ReadFile(path)
			return err == nil && strings.Contains(string(raw), " stdout F tick ")
		}
	}
	if !waitFor(ticked(logPath)) {
		t.Fatalf("no tick line in %s before the rotation", logPath)
	}
	if err := os.Rename(logPath, logPath+".1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.runtime.ReopenContainerLog(ctxT(t), &runtime.ReopenContainerLogRequest{ContainerId: id}); err != nil {
		t.Fatalf("ReopenContainerLog: %v", err)
	}
	if !waitFor(ticked(logPath)) {
		fresh, err := os.ReadFile(logPath)
		t.Errorf("new log after reopen = %q, %v; want fresh tick lines", fresh, err)
	}
	b.mustCrictl(t, "stop", id)
	if _, err := b.runtime.ReopenContainerLog(ctxT(t), &runtime.ReopenContainerLogRequest{ContainerId: id}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ReopenContainerLog of a stopped container = %v, want FailedPrecondition", err)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// An image volume mounts an image read-only into a container, and is
// released with the container.
func TestImageVolume(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, tn.args()...)
	podID, podFile := b.runPod(t, "imgvol", nil, "busybox", "docker.io/berthtest/nonroot:latest")
	id := b.runContainer(t, podID, podFile, "reader", "busybox", map[string]any{
		"command": []string{"sleep", "3600"},
		"mounts": []map[string]any{
			{"container_path": "/img", "readonly": true, "image": map[string]any{"image": "docker.io/berthtest/nonroot:latest"}},
			{"container_path": "/img-etc", "readonly": true, "image": map[string]any{"image": "docker.io/berthtest/nonroot:latest"}, "image_sub_path": "etc"},
		},
	})
	out := b.mustCrictl(t, "exec", "--sync", id, "sh", "-c", "/img/bin/ls /img/home; grep app /img-etc/passwd; touch /img/x 2>/dev/null && echo WRITABLE; true")
	if !strings.Contains(out, "app") || strings.Contains(out, "WRITABLE") {
		t.Errorf("image volume: %q; want the image's files, read-only", out)
	}
	st, err := b.runtime.ContainerStatus(ctxT(t), &runtime.ContainerStatusRequest{ContainerId: id})
	if err != nil {
		t.Fatal(err)
	}
	want := imageStatus(t, b, "docker.io/berthtest/nonroot:latest").GetId()
	for _, m := range st.GetStatus().GetMounts() {
		if m.GetImage().GetImageRef() != want {
			t.Errorf("mount %s reports image_ref %q, want %s", m.GetContainerPath(), m.GetImage().GetImageRef(), want)
		}
	}
	_, err = b.runtime.CreateContainer(ctxT(t), &runtime.CreateContainerRequest{PodSandboxId: podID, Config: &runtime.ContainerConfig{
		Metadata: &runtime.ContainerMetadata{Name: "writable"}, Image: &runtime.ImageSpec{Image: "busybox"},
		Mounts: []*runtime.Mount{{ContainerPath: "/img", Image: &runtime.ImageSpec{Image: "busybox"}}},
	}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("a writable image volume = %v, want InvalidArgument", err)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}
