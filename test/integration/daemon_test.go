package integration

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/test/rig"
)

func TestVersionStatusAndRuntimeConfig(t *testing.T) {
	b := startBerth(t)
	ctx := ctxT(t)

	out := b.mustCrictl(t, "version")
	for _, want := range []string{"RuntimeName:  berth", "RuntimeApiVersion:  v1"} {
		if !strings.Contains(out, want) {
			t.Errorf("crictl version: want %q in:\n%s", want, out)
		}
	}

	st, err := b.runtime.Status(ctx, &runtime.StatusRequest{Verbose: true})
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	conds := map[string]*runtime.RuntimeCondition{}
	for _, c := range st.GetStatus().GetConditions() {
		conds[c.GetType()] = c
	}
	if c := conds[runtime.RuntimeReady]; c == nil || !c.GetStatus() {
		t.Errorf("RuntimeReady = %v, want true", c)
	}
	// No CNI yet: the network must be reported not ready, with a reason.
	if c := conds[runtime.NetworkReady]; c == nil || c.GetStatus() || c.GetReason() == "" {
		t.Errorf("NetworkReady = %v, want false with a reason", c)
	}

	rc, err := b.runtime.RuntimeConfig(ctx, &runtime.RuntimeConfigRequest{})
	if err != nil {
		t.Fatalf("RuntimeConfig: %v", err)
	}
	if got := rc.GetLinux().GetCgroupDriver(); got != runtime.CgroupDriver_CGROUPFS {
		t.Errorf("cgroup driver = %v, want CGROUPFS", got)
	}
}

func TestSocketIsPrivate(t *testing.T) {
	b := startBerth(t)
	fi, err := os.Stat(b.Socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want a 0660 socket", fi.Mode())
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
		t.Errorf("socket owner = %d:%d, want root", st.Uid, st.Gid)
	}
}

func TestUnimplementedCallsSayUnimplemented(t *testing.T) {
	b := startBerth(t)
	// Calls of later features must never answer a fake success.
	_, err := b.runtime.CheckpointContainer(ctxT(t), &runtime.CheckpointContainerRequest{ContainerId: "x"})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("CheckpointContainer: got %v, want Unimplemented", err)
	}
}

func TestSecondDaemonOnSameSocketRefuses(t *testing.T) {
	b := startBerth(t)
	root := t.TempDir()
	cmd := exec.Command(env.binary,
		"--listen", b.Socket,
		"--root", filepath.Join(root, "storage"), "--runroot", filepath.Join(root, "runroot"),
		"--state-dir", filepath.Join(root, "state"), "--run-dir", filepath.Join(root, "run"))
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("second berth on %s started; output:\n%s", b.Socket, out)
	}
	if !strings.Contains(string(out), "already serving "+b.Socket) {
		t.Errorf("second berth: want a clear 'already serving' message, got:\n%s", out)
	}
	// The first daemon still serves.
	b.mustCrictl(t, "version")
}

func TestStaleSocketIsReplaced(t *testing.T) {
	root := t.TempDir()
	sock := filepath.Join(root, "berth.sock")
	// A socket file nobody listens on where the daemon will listen, as a
	// crashed daemon leaves it.
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	b := startBerthIn(t, root)
	b.mustCrictl(t, "version")
}

func TestSIGTERMExitsCleanly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := t.TempDir()
	d, err := rig.StartBerth(ctx, env.binary, root)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-d.Exited():
		if err := d.ExitErr(); err != nil {
			log, _ := os.ReadFile(d.LogPath)
			t.Fatalf("berth after SIGTERM: %v, want exit 0; log:\n%s", err, log)
		}
	case <-time.After(waitTimeout):
		d.Kill()
		t.Fatal("berth did not exit after SIGTERM")
	}
	log, _ := os.ReadFile(d.LogPath)
	if !strings.Contains(string(log), "berth stopped") {
		t.Errorf("log lacks the shutdown line:\n%s", log)
	}
	if _, err := os.Stat(d.Socket); !os.IsNotExist(err) {
		t.Errorf("socket %s still exists after shutdown (err %v)", d.Socket, err)
	}
	unmountUnder(t, root) // a clean exit releases the store's mounts

}

// SIGHUP re-reads the configuration: the log level changes at once, a
// change that needs a restart is named, and running containers are untouched.
func TestSIGHUPReloadsLogLevel(t *testing.T) {
	tn := newTestNetwork(t)
	b := startBerth(t, append(tn.args(), "--log-level", "info")...)
	podID, podFile := b.runPod(t, "reload", nil, "busybox")
	ctr := b.runContainer(t, podID, podFile, "keeps-running", "busybox", map[string]any{"command": []string{"sleep", "3600"}})

	dropIn := filepath.Join(b.Root, "berth.toml.d", "50-reload.toml")
	// --log-level on the command line would win over files; this daemon got
	// it, so the drop-in's level must not apply, but its other keys do.
	writeFile(t, dropIn, "[log]\nlevel = \"debug\"\n[image]\npinned_images = [\"docker.io/library/busybox:latest\"]\n[storage]\ndriver = \"vfs\"\n")
	if err := b.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The reload logs what needs a restart last.
	var log string
	waitFor(func() bool {
		raw, _ := os.ReadFile(b.LogPath)
		log = string(raw)
		return strings.Contains(log, "reload: these changes need a restart")
	})
	for _, want := range []string{"reload: applied", "image.pinned_images", "need a restart of berth", "storage.driver"} {
		if !strings.Contains(log, want) {
			t.Errorf("log after SIGHUP lacks %q:\n%s", want, log)
		}
	}
	if img := imageStatus(t, b, "busybox"); !img.GetPinned() {
		t.Errorf("busybox not pinned after reload: %v", img)
	}
	if ci := b.inspect(t, ctr); ci.Status.State != "CONTAINER_RUNNING" {
		t.Errorf("container after SIGHUP: %s", ci.Status.State)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
	b.assertNoPodLeftovers(t, tn)
}

// Without a --log-level flag the drop-in's level applies on SIGHUP, and a
// running container is untouched by the reload.
func TestSIGHUPChangesLogLevel(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "berth.toml.d", "10-level.toml"), "[log]\nlevel = \"info\"\n")
	// Not startBerth: its --log-level flag would win over the files.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := rig.StartBerth(ctx, env.binary, root, "--cni-config-dir", filepath.Join(root, "cni"),
		"--registries-conf", filepath.Join(env.confDir, "registries.conf"),
		"--signature-policy", filepath.Join(env.confDir, "policy.json"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Stop(); err != nil {
			t.Errorf("stop berth: %v", err)
		}
		unmountUnder(t, root)
	})
	b := &berth{Daemon: d}
	b.mustCrictl(t, "version")
	// A pod on the node's network: this daemon has no CNI config.
	podID, podFile := b.runPod(t, "hup", map[string]any{
		"linux": map[string]any{"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}}},
	}, "busybox")
	ctr := b.runContainer(t, podID, podFile, "keeps-running", "busybox", map[string]any{"command": []string{"sleep", "3600"}})
	pid := b.inspect(t, ctr).Info.Pid
	before, _ := os.ReadFile(b.LogPath)
	if strings.Contains(string(before), "level=DEBUG") {
		t.Fatalf("debug lines at info level:\n%s", before)
	}
	writeFile(t, filepath.Join(root, "berth.toml.d", "10-level.toml"), "[log]\nlevel = \"debug\"\n")
	if err := b.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	// The new level applies before the reload logs it: a call may log at
	// debug before "reload: applied" is written.
	var log string
	waitFor(func() bool {
		b.mustCrictl(t, "version") // a call logs at debug
		raw, _ := os.ReadFile(b.LogPath)
		log = string(raw)
		return strings.Contains(log, "reload: applied") && strings.Contains(log, "level=DEBUG")
	})
	if !strings.Contains(log, "reload: applied") || !strings.Contains(log, "level=DEBUG") {
		t.Errorf("log level did not change on SIGHUP:\n%s", log)
	}
	if ci := b.inspect(t, ctr); ci.Status.State != "CONTAINER_RUNNING" || ci.Info.Pid != pid {
		t.Errorf("container after SIGHUP: %s pid %d, want the same process (%d) running", ci.Status.State, ci.Info.Pid, pid)
	}
	b.mustCrictl(t, "rmp", "-f", podID)
}
