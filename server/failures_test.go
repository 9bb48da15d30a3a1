package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/sandbox"
)

// volumeConfig is a container of busybox with the image "data" as a
// volume, so its creation takes every kind of resource a container has.
func volumeConfig(name string) *runtime.ContainerConfig {
	return &runtime.ContainerConfig{
		Metadata: &runtime.ContainerMetadata{Name: name},
		Image:    &runtime.ImageSpec{Image: "busybox"},
		Mounts:   []*runtime.Mount{{ContainerPath: "/data", Readonly: true, Image: &runtime.ImageSpec{Image: "data"}}},
	}
}

// hostPod is a kubelet-shaped pod on the host's network and IPC: one that
// needs no pinned namespace and no shm mount, so no root.
func hostPod(name string) *runtime.PodSandboxConfig {
	cfg := hostNetworkPod(name)
	cfg.Linux.SecurityContext.NamespaceOptions.Ipc = runtime.NamespaceMode_NODE
	return cfg
}

// createWithFakes creates container name in a ready pod of s.
func createWithFakes(t *testing.T, s *Server, sb *sandbox.Sandbox, name string) (string, error) {
	t.Helper()
	resp, err := s.CreateContainer(context.Background(), &runtime.CreateContainerRequest{
		PodSandboxId: sb.ID, Config: volumeConfig(name), SandboxConfig: sb.Config,
	})
	return resp.GetContainerId(), err
}

// assertFailedAt fails t unless err is the injected failure of step and
// its text has mention.
func assertFailedAt(t *testing.T, f *fakes, err error, step, mention string) {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded with a failure injected at %q", step)
	}
	if !f.j.hasFired(step) {
		t.Fatalf("the call never reached %q; it failed with %v", step, err)
	}
	if !strings.Contains(err.Error(), mention) {
		t.Errorf("error %q does not name the step (%q)", err, mention)
	}
}

// assertNoContainerLeft fails t if anything of the container named name
// in pod sb is left: its name, a record, a store entry, volume dirs.
func assertNoContainerLeft(t *testing.T, s *Server, sb *sandbox.Sandbox, name string) {
	t.Helper()
	full := container.Name(volumeConfig(name).GetMetadata(), sb.Config.GetMetadata())
	if id, ok := s.ctrNames.Get(full); ok {
		t.Errorf("name %s left reserved for %s", full, id)
	}
	if ents, _ := os.ReadDir(string(s.containerRecords())); len(ents) > 0 {
		t.Errorf("%d container records left", len(ents))
	}
	if list := s.containers.List(); len(list) > 0 {
		t.Errorf("%d containers left in the store", len(list))
	}
	if ents, _ := os.ReadDir(filepath.Join(s.config.Runtime.StateDir, "volumes")); len(ents) > 0 {
		t.Errorf("%d volume dirs left", len(ents))
	}
}

// A CreateContainer that fails at any step returns an error naming the
// step and leaves nothing: every acquisition is released, the latest
// first, and no name, record or volume dir is left.
func TestCreateContainerFailureAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		step    string
		nth     int
		mention string // what the error must say
	}{
		{step: "record create", nth: 1, mention: "record create"},
		{step: "runtime launch", nth: 1, mention: "runtime launch"},
		{step: "rootfs create", nth: 1, mention: "rootfs create"},
		{step: "rootfs mount", nth: 1, mention: "rootfs mount"},
		{step: "image mount", nth: 1, mention: "image mount"},
		{step: "spec write", nth: 1, mention: "write runtime spec"},
		{step: "runtime create", nth: 1, mention: "create container"},
		{step: "record save created", nth: 1, mention: "record save created"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			s, f := fakeServer(t)
			sb := addReadyPod(t, s, "pod-a", hostPod("a"))
			f.j.reset()
			f.j.failAt(tc.step, tc.nth)
			_, err := createWithFakes(t, s, sb, "app")
			assertFailedAt(t, f, err, tc.step, tc.mention)
			if tc.step != "spec write" && !errors.Is(err, errInjected) {
				t.Errorf("error %v does not wrap the cause", err)
			}
			assertBalanced(t, f.j)
			assertNoContainerLeft(t, s, sb, "app")
			// The kubelet's retry gets a whole container.
			if _, err := createWithFakes(t, s, sb, "app"); err != nil {
				t.Fatalf("retry: %v", err)
			}
		})
	}
}

// A container made and removed through the fakes gives back all it took.
func TestCreateThenRemoveContainerIsBalanced(t *testing.T) {
	s, f := fakeServer(t)
	sb := addReadyPod(t, s, "pod-a", hostPod("a"))
	f.j.reset()
	id, err := createWithFakes(t, s, sb, "app")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"record create " + id, "rootfs create " + id, "rootfs mount " + id, "image mount img-data", "runtime create " + id} {
		if !strings.Contains(strings.Join(f.j.snapshot(), "\n"), want) {
			t.Errorf("journal has no %q", want)
		}
	}
	if _, err := s.RemoveContainer(context.Background(), &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	waitRemovals(s)
	assertBalanced(t, f.j)
	assertNoContainerLeft(t, s, sb, "app")
}

// createdWithFakes is a created container "app" of a ready pod of a fake
// server, the journal holding its creation.
func createdWithFakes(t *testing.T) (*Server, *fakes, *sandbox.Sandbox, string) {
	t.Helper()
	s, f := fakeServer(t)
	sb := addReadyPod(t, s, "pod-a", hostPod("a"))
	f.j.reset()
	id, err := createWithFakes(t, s, sb, "app")
	if err != nil {
		t.Fatal(err)
	}
	return s, f, sb, id
}

// A StartContainer that fails leaves the container created and not
// starting, so the kubelet's retry starts it; the error names the step.
func TestStartContainerFailureAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		name, step string
		nth        int
		mention    string
	}{
		{name: "runtime start", step: "runtime start", nth: 1, mention: "start container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, _, id := createdWithFakes(t)
			f.j.failAt(tc.step, tc.nth)
			_, err := s.StartContainer(context.Background(), &runtime.StartContainerRequest{ContainerId: id})
			assertFailedAt(t, f, err, tc.step, tc.mention)
			if !errors.Is(err, errInjected) {
				t.Errorf("error %v does not wrap the cause", err)
			}
			c, _ := s.containers.Get(id)
			if st := c.Status(); st.State != container.StateCreated || st.Starting {
				t.Errorf("after the failed start: state %s, starting %v; want created, not starting", st.State, st.Starting)
			}
			if f.runtime.state(id) == "running" {
				t.Error("the runtime's container runs after the failed start")
			}
			if _, err := s.StartContainer(context.Background(), &runtime.StartContainerRequest{ContainerId: id}); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if st := c.State(); st != container.StateRunning {
				t.Errorf("after the retry: %s, want running", st)
			}
		})
	}
}

// A start whose "running" cannot be saved kills the process it started: no
// container runs that its record calls created, and the call fails naming
// the step.
func TestStartContainerUnrecordedStartIsKilled(t *testing.T) {
	s, f, _, id := createdWithFakes(t)
	f.j.failAt("record save created", 1) // "running" (the starting mark is not saved)
	_, err := s.StartContainer(context.Background(), &runtime.StartContainerRequest{ContainerId: id})
	assertFailedAt(t, f, err, "record save created", "record start of container")
	if got := f.runtime.state(id); got == "running" {
		t.Errorf("the runtime's container is %s after its start could not be recorded", got)
	}
	c, _ := s.containers.Get(id)
	if st := c.Status(); st.State == container.StateRunning || st.Starting {
		t.Errorf("status %s, starting %v; want not running, not starting", st.State, st.Starting)
	}
}

// A StopContainer whose runtime stop fails reports it and leaves the
// container running; the retry stops it.
func TestStopContainerFailureAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		step    string
		mention string
	}{
		{step: "runtime stop", mention: "stop container"},
	} {
		t.Run(tc.step, func(t *testing.T) {
			s, f, _, id := createdWithFakes(t)
			if _, err := s.StartContainer(context.Background(), &runtime.StartContainerRequest{ContainerId: id}); err != nil {
				t.Fatal(err)
			}
			f.j.failAt(tc.step, 1)
			_, err := s.StopContainer(context.Background(), &runtime.StopContainerRequest{ContainerId: id})
			assertFailedAt(t, f, err, tc.step, tc.mention)
			if !errors.Is(err, errInjected) {
				t.Errorf("error %v does not wrap the cause", err)
			}
			c, _ := s.containers.Get(id)
			if st := c.State(); st != container.StateRunning {
				t.Errorf("after the failed stop: %s, want running", st)
			}
			if _, err := s.StopContainer(context.Background(), &runtime.StopContainerRequest{ContainerId: id}); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if st := c.State(); st != container.StateExited {
				t.Errorf("after the retry: %s, want exited", st)
			}
		})
	}
}

// A RemoveContainer that fails at a step the call waits for (the mark,
// the stop) reports the step and keeps the container listed, marked
// removing, for the kubelet's retry; the retry removes it, and by then all
// its creation took is given back, the latest first.
func TestRemoveContainerFailureAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		name, step string
		nth        int
		mention    string
	}{
		{name: "mark removing", step: "record save removing", nth: 1, mention: "record save removing"},
		{name: "runtime stop", step: "runtime stop", nth: 1, mention: "stop container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, sb, id := createdWithFakes(t)
			f.j.failAt(tc.step, tc.nth)
			_, err := s.RemoveContainer(context.Background(), &runtime.RemoveContainerRequest{ContainerId: id})
			assertFailedAt(t, f, err, tc.step, tc.mention)
			if !errors.Is(err, errInjected) {
				t.Errorf("error %v does not wrap the cause", err)
			}
			if _, gerr := s.containers.Get(id); gerr != nil {
				t.Fatalf("container gone after a failed remove: %v", gerr)
			}
			if _, err := s.RemoveContainer(context.Background(), &runtime.RemoveContainerRequest{ContainerId: id}); err != nil {
				t.Fatalf("retry: %v", err)
			}
			waitRemovals(s)
			assertBalanced(t, f.j)
			assertNoContainerLeft(t, s, sb, "app")
		})
	}
}
