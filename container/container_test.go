package container

import (
	"errors"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

func TestLifecycleTransitions(t *testing.T) {
	c := New("id", "name", "pod", &runtime.ContainerConfig{})
	if c.State() != StateCreated {
		t.Fatalf("new container is %s", c.State())
	}
	if err := c.SetRunning(time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRunning(time.Now()); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("starting a running container: %v, want FailedPrecondition", err)
	}
	if !c.SetExited(Exit{Code: 3, Reason: "Error"}) {
		t.Fatal("first exit not recorded")
	}
	if c.SetExited(Exit{Code: 0}) || c.Snapshot().Exit.Code != 3 {
		t.Error("a second exit report replaced the first")
	}
	if err := c.SetRunning(time.Now()); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("starting an exited container: %v, want FailedPrecondition", err)
	}
}

func TestExitReason(t *testing.T) {
	for _, tc := range []struct {
		code int32
		oom  bool
		want string
	}{
		{0, false, "Completed"},
		{1, false, "Error"},
		{137, true, "OOMKilled"},
	} {
		if got := ExitReason(tc.code, tc.oom); got != tc.want {
			t.Errorf("ExitReason(%d, %v) = %s, want %s", tc.code, tc.oom, got, tc.want)
		}
	}
}

func TestName(t *testing.T) {
	got := Name(&runtime.ContainerMetadata{Name: "app", Attempt: 2}, &runtime.PodSandboxMetadata{Name: "web", Namespace: "ns", Uid: "u1"})
	if want := "k8s_app_web_ns_u1_2"; got != want {
		t.Errorf("Name = %s, want %s", got, want)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	cfg := &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: "app", Attempt: 1}, Labels: map[string]string{"a": "b"}}
	c := New("id1", "k8s_app", "pod1", cfg)
	c.ImageRef, c.LogPath, c.VolumeDirs = "busybox@sha256:x", "/var/log/pods/x/app/0.log", []string{"/v/1"}
	c.Mounts = []*runtime.Mount{{ContainerPath: "/data", HostPath: "/srv", Readonly: true}}
	c.User = &runtime.ContainerUser{Linux: &runtime.LinuxContainerUser{Uid: 1000, Gid: 1000}}
	c.SetRunning(time.Unix(100, 0))
	c.SetExited(Exit{Code: 2, FinishedAt: time.Unix(200, 0), Reason: "Error"})
	c.SetResources(&runtime.LinuxContainerResources{MemoryLimitInBytes: 1 << 26})

	c.SetPhase(PhaseCreated)
	rec, err := c.Record()
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if back.Config.GetMetadata().GetName() != "app" || back.Config.GetLabels()["a"] != "b" ||
		back.LogPath != c.LogPath || back.Mounts[0].GetHostPath() != "/srv" || back.User.GetLinux().GetUid() != 1000 {
		t.Errorf("round trip lost fields: %+v", back)
	}
	snap := back.Snapshot()
	if snap.Phase != PhaseCreated || snap.State != StateExited || snap.Exit.Code != 2 || !snap.StartedAt.Equal(time.Unix(100, 0)) || snap.Resources.GetMemoryLimitInBytes() != 1<<26 {
		t.Errorf("round trip lost lifecycle: %+v", snap)
	}
}
