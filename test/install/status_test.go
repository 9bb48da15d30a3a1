package install

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/test/rig"
)

// statusArgs point `berth status` at the daemon's socket and its config
// files, not at the node's /etc/berth.
func statusArgs(d *rig.Daemon) []string {
	return []string{"status", "--listen", d.Socket,
		"--config", filepath.Join(d.Root, "berth.toml"), "--config-dir", filepath.Join(d.Root, "berth.toml.d")}
}

// A session as an operator types it: status of a fresh daemon without a
// network, the network appearing, pods running and stopped, the daemon
// gone.
func TestStatus(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs a berth daemon, which needs root")
	}
	root := t.TempDir()
	netd := filepath.Join(root, "cni")
	if err := os.MkdirAll(netd, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	registriesConf := serveBusybox(ctx, t)
	d, err := rig.StartBerth(ctx, berth, root,
		"--cni-config-dir", netd, "--cni-plugin-dir", "/usr/lib/cni",
		"--registries-conf", registriesConf,
		"--signature-policy", filepath.Join(repo, "contrib/containers/policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop berth: %v", err)
		}
		if t.Failed() {
			if log, err := os.ReadFile(d.LogPath); err == nil {
				t.Logf("berth log:\n%s", log)
			}
		}
	})

	status := func(t *testing.T) string {
		t.Helper()
		out, errOut, code := run(t, repo, berth, statusArgs(d)...)
		if code != 0 {
			t.Fatalf("berth status: exit %d\n%s%s", code, out, errOut)
		}
		t.Logf("berth status:\n%s", out)
		return out
	}
	expect := func(t *testing.T, out string, patterns ...string) {
		t.Helper()
		for _, p := range patterns {
			if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
				t.Errorf("status lacks a line matching %s", p)
			}
		}
	}
	storage := regexp.QuoteMeta(filepath.Join(root, "storage"))

	// No CNI config yet: the network condition says why.
	out := status(t)
	expect(t, out,
		`^berth \S+ \(CRI v1\) on `+regexp.QuoteMeta(d.Socket)+`$`,
		`^config: +`+regexp.QuoteMeta(filepath.Join(root, "berth.toml"))+`$`,
		`^profiling: +off \(api.profiling_socket, --profiling-socket\)$`,
		`^runtime: +ready$`,
		`^network: +not ready \(NetworkPluginNotReady\): no cni network config .* in `+regexp.QuoteMeta(netd),
		`^pods: +0$`,
		`^containers: +(0|not available \(the daemon does not list containers yet\))$`,
		`^image storage: +(\d+ bytes|\S+ [KMGTP]iB \(\d+ bytes\)), \d+ inodes in `+storage+`/\S+-images$`,
		`^container storage: +(\d+ bytes|\S+ [KMGTP]iB \(\d+ bytes\)), \d+ inodes in `+storage+`/\S+-containers$`,
	)

	// A network of the test's own: a bridge name and subnet no other test
	// uses. Only host-network pods run below, so the bridge is never made.
	conflist := `{"cniVersion":"1.0.0","name":"status-test","plugins":[
		{"type":"bridge","bridge":"brtstatus0","ipam":{"type":"host-local","ranges":[[{"subnet":"10.197.0.0/24"}]]}},
		{"type":"loopback"}]}`
	if err := os.WriteFile(filepath.Join(netd, "10-status.conflist"), []byte(conflist), 0o644); err != nil {
		t.Fatal(err)
	}
	ready := regexp.MustCompile(`(?m)^network: +ready$`)
	for deadline := time.Now().Add(15 * time.Second); !ready.MatchString(out); out = status(t) {
		if time.Now().After(deadline) {
			t.Fatal("the network never became ready")
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Two host-network pods (no infra container, no image), one stopped.
	conn, err := grpc.NewClient("unix://"+d.Socket, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rt := runtime.NewRuntimeServiceClient(conn)
	var ids []string
	for _, name := range []string{"status-a", "status-b"} {
		resp, err := rt.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: podConfig(name)})
		if err != nil {
			t.Fatalf("RunPodSandbox %s: %v", name, err)
		}
		ids = append(ids, resp.GetPodSandboxId())
	}
	removePods := func() error {
		for _, id := range ids {
			if _, err := rt.StopPodSandbox(context.Background(), &runtime.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
				return fmt.Errorf("stop pod %s: %w", id, err)
			}
			if _, err := rt.RemovePodSandbox(context.Background(), &runtime.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
				return fmt.Errorf("remove pod %s: %w", id, err)
			}
		}
		ids = nil
		return nil
	}
	t.Cleanup(func() { removePods() }) // a test that failed half-way; runs before the daemon stops
	if _, err := rt.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: ids[1]}); err != nil {
		t.Fatalf("StopPodSandbox: %v", err)
	}
	expect(t, status(t), `^pods: +2 \(1 ready, 1 notready\)$`, `^network: +ready$`)

	// Containers by state, where the daemon lists them: one running, one
	// only created; then the running one stopped.
	if _, err := runtime.NewImageServiceClient(conn).PullImage(ctx, &runtime.PullImageRequest{Image: &runtime.ImageSpec{Image: "busybox"}}); err != nil {
		t.Fatalf("PullImage busybox: %v", err)
	}
	if out = status(t); strings.Contains(out, "containers:        not available") {
		t.Log("the daemon does not list containers: counts by state not checked")
	} else {
		var ctrs []string
		for _, name := range []string{"sleeper", "idle"} {
			resp, err := rt.CreateContainer(ctx, &runtime.CreateContainerRequest{
				PodSandboxId: ids[0], SandboxConfig: podConfig("status-a"),
				Config: &runtime.ContainerConfig{
					Metadata: &runtime.ContainerMetadata{Name: name},
					Image:    &runtime.ImageSpec{Image: "busybox"},
					Command:  []string{"sleep", "3600"},
				},
			})
			if err != nil {
				t.Fatalf("CreateContainer %s: %v", name, err)
			}
			ctrs = append(ctrs, resp.GetContainerId())
		}
		if _, err := rt.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: ctrs[0]}); err != nil {
			t.Fatalf("StartContainer: %v", err)
		}
		expect(t, status(t), `^containers: +2 \(1 created, 1 running\)$`)
		if _, err := rt.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: ctrs[0], Timeout: 0}); err != nil {
			t.Fatalf("StopContainer: %v", err)
		}
		expect(t, status(t), `^containers: +2 \(1 created, 1 exited\)$`)
		for _, id := range ctrs {
			if _, err := rt.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
				t.Fatalf("RemoveContainer: %v", err)
			}
		}
	}
	if err := removePods(); err != nil {
		t.Fatal(err)
	}
	expect(t, status(t), `^pods: +0$`)

	// The daemon gone: a clear message and exit 1.
	if err := d.Stop(); err != nil {
		t.Fatalf("stop berth: %v", err)
	}
	out, errOut, code := run(t, repo, berth, statusArgs(d)...)
	if code != 1 {
		t.Errorf("status of a stopped daemon: exit %d, want 1\n%s", code, out)
	}
	want := "berth: berth is not running on " + d.Socket + ": "
	if !strings.HasPrefix(errOut, want) || !strings.Contains(errOut, "; start it with `systemctl start berth`") {
		t.Errorf("status of a stopped daemon says\n%s\nwant %q...; start it with `systemctl start berth`", errOut, want)
	}
}

// podConfig is a host-network pod without an infra container.
func podConfig(name string) *runtime.PodSandboxConfig {
	return &runtime.PodSandboxConfig{
		Metadata: &runtime.PodSandboxMetadata{Name: name, Namespace: "default", Uid: name + "-uid"},
		Linux: &runtime.LinuxPodSandboxConfig{SecurityContext: &runtime.LinuxSandboxSecurityContext{
			// Pid CONTAINER: POD, the zero value, would need a pause image.
			NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE, Pid: runtime.NamespaceMode_CONTAINER},
		}},
	}
}

// serveBusybox serves the rig's busybox from a local registry for the
// test's lifetime and returns a registries.conf that mirrors docker.io to it.
func serveBusybox(ctx context.Context, t *testing.T) (registriesConf string) {
	t.Helper()
	images, err := rig.BuildImages(ctx, filepath.Join(os.TempDir(), "berth-rig-images"))
	if err != nil {
		t.Fatalf("build test images: %v", err)
	}
	img, ok := rig.FindImage(images, rig.RefBusybox)
	if !ok {
		t.Fatalf("the rig builds no %s", rig.RefBusybox)
	}
	dir := t.TempDir()
	reg, err := rig.StartRegistry(ctx, filepath.Join(dir, "registry"))
	if err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() { reg.Stop() })
	if err := reg.Push(ctx, img); err != nil {
		t.Fatalf("push busybox: %v", err)
	}
	registriesConf = filepath.Join(dir, "registries.conf")
	if err := rig.WriteRegistriesConf(registriesConf, reg.Addr); err != nil {
		t.Fatal(err)
	}
	return registriesConf
}

// Without a daemon at all (no socket file), the message is the same.
func TestStatusNoDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "berth.sock")
	_, errOut, code := run(t, repo, berth, "status", "--listen", sock, "--config-dir", "")
	if code != 1 || !strings.Contains(errOut, "berth is not running on "+sock) || !strings.Contains(errOut, "systemctl start berth") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}
