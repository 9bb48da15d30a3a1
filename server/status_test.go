package server

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/sandbox"
)

// wantCode fails t unless err maps to code and, when names is set, its
// message names it.
func wantCode(t *testing.T, err error, code codes.Code, names string) {
	t.Helper()
	st := ToStatus(err)
	if status.Code(st) != code || (names != "" && !strings.Contains(st.Error(), names)) {
		t.Errorf("error = %v, want %s naming %q", st, code, names)
	}
}

// decodeInfo decodes the "info" JSON of a verbose status.
func decodeInfo(t *testing.T, info map[string]string) map[string]any {
	t.Helper()
	raw, ok := info["info"]
	if !ok {
		t.Fatalf("verbose info has no \"info\" key: %v", info)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("verbose info is not JSON: %v\n%s", err, raw)
	}
	return out
}

// statusFixture is a fake-backed server with one pod and a container in
// each state: "run-1" running (the runtime knows it), "new-1" created and
// "done-1" exited with a reason, all of pod "pod-1".
func statusFixture(t *testing.T) (*Server, *scriptRuntime, map[string]*container.Container) {
	t.Helper()
	s, f := fakeServer(t)
	rt := newScriptRuntime(f.runtime)
	s.runtimes = map[string]OCIRuntime{"crun": rt}
	addReadyPod(t, s, "pod-1", hostNetworkPod("web"))
	cfg := func(name string) *runtime.ContainerConfig {
		return &runtime.ContainerConfig{
			Metadata:    &runtime.ContainerMetadata{Name: name, Attempt: 2},
			Image:       &runtime.ImageSpec{Image: "busybox"},
			Labels:      map[string]string{"app": name},
			Annotations: map[string]string{"note": "n-" + name},
		}
	}
	run := cfg("run")
	run.Linux = &runtime.LinuxContainerConfig{Resources: &runtime.LinuxContainerResources{CpuShares: 512}}
	ctrs := map[string]*container.Container{
		"run-1":  addContainerWith(t, s, "run-1", "pod-1", run, container.StateRunning),
		"new-1":  addContainerWith(t, s, "new-1", "pod-1", cfg("new"), container.StateCreated),
		"done-1": addContainerWith(t, s, "done-1", "pod-1", cfg("done"), container.StateRunning),
	}
	finished := ctrs["done-1"].Status().StartedAt.Add(1500 * time.Millisecond)
	if _, err := ctrs["done-1"].Exited(container.Exit{Code: 137, FinishedAt: finished, Reason: "OOMKilled", Message: "out of memory"}); err != nil {
		t.Fatal(err)
	}
	// The fields a creation fills in before the container is listed.
	for id, c := range ctrs {
		c.ImageRef, c.ImageID = "docker.io/library/busybox@sha256:abc", "img-busybox"
		c.LogPath = "/var/log/pods/" + id + ".log"
		c.Bundle = filepath.Join(t.TempDir(), id)
		c.Mounts = []*runtime.Mount{{ContainerPath: "/data", HostPath: "/srv/" + id}}
		c.User = &runtime.ContainerUser{Linux: &runtime.LinuxContainerUser{Uid: 1000, Gid: 1000}}
	}
	ctrs["run-1"].StopSignal = "SIGINT" // the image's STOPSIGNAL
	ctrs["done-1"].StopSignal = "SIGRTMIN+1"
	rt.run("run-1")
	rt.exit("done-1", 137)
	return s, rt, ctrs
}

func TestContainerStatusReportsEachState(t *testing.T) {
	s, _, ctrs := statusFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		query     string
		id        string
		state     runtime.ContainerState
		started   bool
		exitCode  int32
		reason    string
		message   string
		finished  int64
		cpuShares int64 // 0: no resources reported
		signal    runtime.Signal
	}{
		{query: "run-1", id: "run-1", state: runtime.ContainerState_CONTAINER_RUNNING, started: true, cpuShares: 512, signal: runtime.Signal_SIGNAL_SIGINT},
		{query: "run", id: "run-1", state: runtime.ContainerState_CONTAINER_RUNNING, started: true, cpuShares: 512, signal: runtime.Signal_SIGNAL_SIGINT},
		{query: "new-1", id: "new-1", state: runtime.ContainerState_CONTAINER_CREATED},
		{query: "done-1", id: "done-1", state: runtime.ContainerState_CONTAINER_EXITED, started: true,
			exitCode: 137, reason: "OOMKilled", message: "out of memory", finished: ctrs["done-1"].Status().StartedAt.Add(1500 * time.Millisecond).UnixNano(),
			signal: runtime.Signal_SIGNAL_SIGRTMINPLUS1},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := s.ContainerStatus(ctx, &runtime.ContainerStatusRequest{ContainerId: tc.query})
			if err != nil {
				t.Fatal(err)
			}
			st, c := resp.GetStatus(), ctrs[tc.id]
			if st.GetId() != tc.id || st.GetState() != tc.state {
				t.Errorf("id, state = %s, %s; want %s, %s", st.GetId(), st.GetState(), tc.id, tc.state)
			}
			if (st.GetStartedAt() != 0) != tc.started {
				t.Errorf("started_at = %d, want set %v", st.GetStartedAt(), tc.started)
			}
			if st.GetExitCode() != tc.exitCode || st.GetReason() != tc.reason || st.GetMessage() != tc.message || st.GetFinishedAt() != tc.finished {
				t.Errorf("exit = %d %q %q at %d; want %d %q %q at %d", st.GetExitCode(), st.GetReason(), st.GetMessage(), st.GetFinishedAt(),
					tc.exitCode, tc.reason, tc.message, tc.finished)
			}
			if st.GetStopSignal() != tc.signal {
				t.Errorf("stop_signal = %s, want %s", st.GetStopSignal(), tc.signal)
			}
			if got := st.GetResources().GetLinux().GetCpuShares(); got != tc.cpuShares || (tc.cpuShares == 0) != (st.GetResources() == nil) {
				t.Errorf("resources = %v, want cpu_shares %d", st.GetResources(), tc.cpuShares)
			}
			if st.GetCreatedAt() != c.CreatedAt.UnixNano() || st.GetImage().GetImage() != "busybox" ||
				st.GetImageRef() != c.ImageRef || st.GetImageId() != "img-busybox" || st.GetLogPath() != c.LogPath {
				t.Errorf("created, image, image ref, image id, log = %d %q %q %q %q", st.GetCreatedAt(), st.GetImage().GetImage(),
					st.GetImageRef(), st.GetImageId(), st.GetLogPath())
			}
			if st.GetMetadata().GetAttempt() != 2 || st.GetLabels()["app"] != c.Config.GetMetadata().GetName() ||
				st.GetAnnotations()["note"] != "n-"+c.Config.GetMetadata().GetName() {
				t.Errorf("metadata, labels, annotations = %v %v %v", st.GetMetadata(), st.GetLabels(), st.GetAnnotations())
			}
			if len(st.GetMounts()) != 1 || st.GetMounts()[0].GetHostPath() != "/srv/"+tc.id || st.GetUser().GetLinux().GetUid() != 1000 {
				t.Errorf("mounts, user = %v, %v", st.GetMounts(), st.GetUser())
			}
			if resp.GetInfo() != nil {
				t.Errorf("info without verbose: %v", resp.GetInfo())
			}
		})
	}
}

func TestContainerStatusBadRequests(t *testing.T) {
	s, _, _ := statusFixture(t)
	for _, tc := range []struct {
		id    string
		code  codes.Code
		names string
	}{
		{"", codes.InvalidArgument, "container_id"},
		{"nope", codes.NotFound, "nope"},
		{"pod-1", codes.NotFound, "pod-1"}, // a pod's id is not a container's
	} {
		_, err := s.ContainerStatus(context.Background(), &runtime.ContainerStatusRequest{ContainerId: tc.id, Verbose: true})
		wantCode(t, err, tc.code, tc.names)
	}
}

func TestContainerStatusVerbose(t *testing.T) {
	s, _, ctrs := statusFixture(t)
	// run-1 has a spec; new-1 has none written; done-1 is no longer running.
	for _, id := range []string{"run-1", "done-1"} {
		if err := os.MkdirAll(ctrs[id].Bundle, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctrs[id].Bundle, "config.json"), []byte(`{"ociVersion":"1.2.0","hostname":"`+id+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		id      string
		pid     bool
		specFor string // the spec's hostname, "" for none
	}{
		{"run-1", true, "run-1"},
		{"new-1", false, ""},
		{"done-1", false, "done-1"},
	} {
		t.Run(tc.id, func(t *testing.T) {
			resp, err := s.ContainerStatus(context.Background(), &runtime.ContainerStatusRequest{ContainerId: tc.id, Verbose: true})
			if err != nil {
				t.Fatal(err)
			}
			info := decodeInfo(t, resp.GetInfo())
			if info["sandboxID"] != "pod-1" || info["runtimeHandler"] != "crun" || info["bundle"] != ctrs[tc.id].Bundle {
				t.Errorf("sandboxID, runtimeHandler, bundle = %v, %v, %v", info["sandboxID"], info["runtimeHandler"], info["bundle"])
			}
			if pid, ok := info["pid"]; ok != tc.pid || (ok && pid != float64(4242)) {
				t.Errorf("pid = %v (present %v), want present %v as 4242", pid, ok, tc.pid)
			}
			spec, _ := info["runtimeSpec"].(map[string]any)
			if got, _ := spec["hostname"].(string); got != tc.specFor {
				t.Errorf("runtimeSpec = %v, want the spec of %q", info["runtimeSpec"], tc.specFor)
			}
		})
	}
}

// A bundle whose config.json is not JSON is left out of the verbose
// status, which still tells the rest: crictl inspect is how one finds out
// what is wrong.
func TestContainerStatusVerboseWithCorruptSpec(t *testing.T) {
	s, _, ctrs := statusFixture(t)
	b := ctrs["run-1"].Bundle
	if err := os.MkdirAll(b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "config.json"), []byte(`{"ociVersion":`), 0o644); err != nil {
		t.Fatal(err)
	}
	resp, err := s.ContainerStatus(context.Background(), &runtime.ContainerStatusRequest{ContainerId: "run-1", Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(resp.GetInfo()["info"]), &info); err != nil {
		t.Fatalf("verbose info %q: %v", resp.GetInfo()["info"], err)
	}
	if _, ok := info["runtimeSpec"]; ok || info["sandboxID"] != "pod-1" || info["bundle"] != b {
		t.Errorf("verbose info = %v; want the rest without the spec", info)
	}
}

// podStatusFixture is a server with a ready pod "pod-a" of two addresses and
// two containers, a ready pod "pod-b" with an infra container, and a
// stopped pod "pod-c".
func podStatusFixture(t *testing.T) *Server {
	t.Helper()
	s, _ := fakeServer(t)
	cfg := hostNetworkPod("web")
	cfg.Labels = map[string]string{"app": "web"}
	cfg.Annotations = map[string]string{"owner": "team-a"}
	a := addReadyPod(t, s, "pod-a", cfg)
	if err := a.SetNetwork(true, []string{"10.88.0.7", "fd00::7"}); err != nil {
		t.Fatal(err)
	}
	addContainer(t, s, "ctr-a1", "pod-a", container.StateRunning)
	addContainer(t, s, "ctr-a2", "pod-a", container.StateExited)
	b := addReadyPod(t, s, "pod-b", hostNetworkPod("db"))
	b.InfraID, b.InfraPid = "infra-b", 4343
	addContainer(t, s, "ctr-b1", "pod-b", container.StateCreated)
	c := addReadyPod(t, s, "pod-c", hostNetworkPod("old"))
	if err := c.SetState(sandbox.StateNotReady); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPodSandboxStatus(t *testing.T) {
	s := podStatusFixture(t)
	for _, tc := range []struct {
		query, id  string
		state      runtime.PodSandboxState
		ip         string
		more       []string
		containers []string
	}{
		{"pod-a", "pod-a", runtime.PodSandboxState_SANDBOX_READY, "10.88.0.7", []string{"fd00::7"}, []string{"ctr-a1", "ctr-a2"}},
		{"pod-b", "pod-b", runtime.PodSandboxState_SANDBOX_READY, "", nil, []string{"ctr-b1"}},
		{"pod-c", "pod-c", runtime.PodSandboxState_SANDBOX_NOTREADY, "", nil, nil},
	} {
		t.Run(tc.query, func(t *testing.T) {
			resp, err := s.PodSandboxStatus(context.Background(), &runtime.PodSandboxStatusRequest{PodSandboxId: tc.query})
			if err != nil {
				t.Fatal(err)
			}
			st := resp.GetStatus()
			sb, _ := s.sandboxes.Get(tc.id)
			if st.GetId() != tc.id || st.GetState() != tc.state || st.GetCreatedAt() != sb.CreatedAt.UnixNano() || resp.GetTimestamp() != sb.CreatedAt.UnixNano() {
				t.Errorf("id, state, created, timestamp = %s %s %d %d", st.GetId(), st.GetState(), st.GetCreatedAt(), resp.GetTimestamp())
			}
			if st.GetMetadata().GetName() != sb.Config.GetMetadata().GetName() || st.GetRuntimeHandler() != "" {
				t.Errorf("metadata, runtime handler = %v, %q", st.GetMetadata(), st.GetRuntimeHandler())
			}
			if (tc.ip == "") != (st.GetNetwork() == nil) || st.GetNetwork().GetIp() != tc.ip {
				t.Errorf("network = %v, want ip %q", st.GetNetwork(), tc.ip)
			}
			var more []string
			for _, ip := range st.GetNetwork().GetAdditionalIps() {
				more = append(more, ip.GetIp())
			}
			if strings.Join(more, ",") != strings.Join(tc.more, ",") {
				t.Errorf("additional ips = %v, want %v", more, tc.more)
			}
			ns := st.GetLinux().GetNamespaces().GetOptions()
			if ns.GetNetwork() != runtime.NamespaceMode_NODE || ns.GetPid() != runtime.NamespaceMode_CONTAINER || ns.GetIpc() != runtime.NamespaceMode_POD {
				t.Errorf("namespace options = %v", ns)
			}
			var ids []string
			for _, c := range resp.GetContainersStatuses() {
				ids = append(ids, c.GetId())
			}
			if strings.Join(sortedCopy(ids), ",") != strings.Join(tc.containers, ",") {
				t.Errorf("container statuses = %v, want %v", ids, tc.containers)
			}
			if resp.GetInfo() != nil {
				t.Errorf("info without verbose: %v", resp.GetInfo())
			}
		})
	}
	resp, _ := s.PodSandboxStatus(context.Background(), &runtime.PodSandboxStatusRequest{PodSandboxId: "pod-a"})
	if st := resp.GetStatus(); st.GetLabels()["app"] != "web" || st.GetAnnotations()["owner"] != "team-a" {
		t.Errorf("labels, annotations = %v, %v", st.GetLabels(), st.GetAnnotations())
	}
	for _, c := range resp.GetContainersStatuses() {
		want := map[string]runtime.ContainerState{"ctr-a1": runtime.ContainerState_CONTAINER_RUNNING, "ctr-a2": runtime.ContainerState_CONTAINER_EXITED}[c.GetId()]
		if c.GetState() != want {
			t.Errorf("status of %s in the pod's status = %s, want %s", c.GetId(), c.GetState(), want)
		}
	}
}

func TestPodSandboxStatusVerbose(t *testing.T) {
	s := podStatusFixture(t)
	for _, tc := range []struct {
		id    string
		infra string
		pid   float64
	}{
		{"pod-a", "", 0},
		{"pod-b", "infra-b", 4343},
	} {
		t.Run(tc.id, func(t *testing.T) {
			resp, err := s.PodSandboxStatus(context.Background(), &runtime.PodSandboxStatusRequest{PodSandboxId: tc.id, Verbose: true})
			if err != nil {
				t.Fatal(err)
			}
			sb, _ := s.sandboxes.Get(tc.id)
			info := decodeInfo(t, resp.GetInfo())
			if info["id"] != tc.id || info["name"] != sb.Name || info["runtimeHandler"] != "crun" {
				t.Errorf("id, name, runtimeHandler = %v, %v, %v", info["id"], info["name"], info["runtimeHandler"])
			}
			if info["resolvPath"] != filepath.Join(sb.Dir, "resolv.conf") || info["hostsPath"] != filepath.Join(sb.Dir, "hosts") {
				t.Errorf("resolvPath, hostsPath = %v, %v", info["resolvPath"], info["hostsPath"])
			}
			if info["netns"] != "" { // the host's network
				t.Errorf("netns = %v, want the host's (\"\")", info["netns"])
			}
			md, _ := info["config"].(map[string]any)["metadata"].(map[string]any)
			if md["name"] != sb.Config.GetMetadata().GetName() {
				t.Errorf("config = %v", info["config"])
			}
			infra, hasInfra := info["infraContainerId"]
			if (tc.infra != "") != hasInfra || (hasInfra && (infra != tc.infra || info["pid"] != tc.pid)) {
				t.Errorf("infraContainerId, pid = %v, %v; want %q, %v", infra, info["pid"], tc.infra, tc.pid)
			}
			if len(resp.GetContainersStatuses()) == 0 {
				t.Error("verbose status lost the container statuses")
			}
		})
	}
}

func TestPodSandboxStatusBadRequests(t *testing.T) {
	s := podStatusFixture(t)
	for _, tc := range []struct {
		id    string
		code  codes.Code
		names string
	}{
		{"", codes.InvalidArgument, "pod_sandbox_id"},
		{"nope", codes.NotFound, "pod_sandbox_id"},
		{"pod-", codes.InvalidArgument, "pod_sandbox_id"}, // ambiguous: pod-a, pod-b, pod-c
		{"ctr-a1", codes.NotFound, "ctr-a1"},
	} {
		_, err := s.PodSandboxStatus(context.Background(), &runtime.PodSandboxStatusRequest{PodSandboxId: tc.id})
		wantCode(t, err, tc.code, tc.names)
	}
}
