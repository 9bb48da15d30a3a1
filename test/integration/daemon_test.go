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
	case <-time.After(40 * time.Second):
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
