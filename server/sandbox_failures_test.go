package server

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/sandbox"
)

// hostPod's pods are on the host's network and IPC, with drop_infra off:
// each has an infra container, made through the fakes. netPod's have
// namespaces of their own, pinned by the fake, and no infra container.

// runPodWithFakes runs pod "a" on s.
func runPodWithFakes(t *testing.T, s *Server) (string, error) {
	t.Helper()
	resp, err := s.RunPodSandbox(context.Background(), &runtime.RunPodSandboxRequest{Config: hostPod("a")})
	return resp.GetPodSandboxId(), err
}

// assertNoPodLeft fails t if anything of pod "a" is left: its name, a
// record, a store entry, its dir.
func assertNoPodLeft(t *testing.T, s *Server) {
	t.Helper()
	name := sandbox.Name(hostPod("a").GetMetadata())
	if id, ok := s.podNames.Get(name); ok {
		t.Errorf("pod name %s left reserved for %s", name, id)
	}
	if ents, _ := os.ReadDir(string(s.sandboxRecords())); len(ents) > 0 {
		t.Errorf("%d pod records left", len(ents))
	}
	if list := s.sandboxes.List(); len(list) > 0 {
		t.Errorf("%d pods left in the store", len(list))
	}
	if ents, _ := os.ReadDir(s.config.Runtime.RunDir + "/pods"); len(ents) > 0 {
		t.Errorf("%d pod dirs left", len(ents))
	}
}

// A RunPodSandbox that fails at any step of its infra container reports
// the step and leaves nothing; the retry makes a whole pod.
func TestRunPodSandboxFailureAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		name, step string
		mention    string
	}{
		{name: "pause image pull", step: "image pull", mention: "pull pause image"},
		{name: "infra rootfs create", step: "rootfs create", mention: "rootfs create"},
		{name: "infra rootfs mount", step: "rootfs mount", mention: "rootfs mount"},
		{name: "infra spec write", step: "spec write", mention: "write runtime spec"},
		{name: "infra runtime create", step: "runtime create", mention: "runtime create"},
		{name: "infra runtime start", step: "runtime start", mention: "runtime start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := fakeServer(t)
			s.config.Runtime.DropInfra = false
			if tc.step == "image pull" {
				delete(f.images.images, "pause")
			}
			f.j.failAt(tc.step, 1)
			_, err := runPodWithFakes(t, s)
			assertFailedAt(t, f, err, tc.step, tc.mention)
			assertFailedAt(t, f, err, tc.step, "start infra container of pod")
			if tc.step != "spec write" && !errors.Is(err, errInjected) {
				t.Errorf("error %v does not wrap the cause", err)
			}
			assertBalanced(t, f.j)
			assertNoPodLeft(t, s)
			if _, err := runPodWithFakes(t, s); err != nil {
				t.Fatalf("retry: %v", err)
			}
		})
	}
}

// podWithContainer is a ready pod "a" with namespaces of its own, its
// network, an infra container and a running container "app", all through
// the fakes.
func podWithContainer(t *testing.T) (*Server, *fakes, *sandbox.Sandbox, string) {
	t.Helper()
	s, f := fakeServer(t)
	s.config.Runtime.DropInfra = false
	resp, err := s.RunPodSandbox(context.Background(), &runtime.RunPodSandboxRequest{Config: netPod("a")})
	if err != nil {
		t.Fatal(err)
	}
	sb, err := s.sandboxes.Get(resp.GetPodSandboxId())
	if err != nil {
		t.Fatal(err)
	}
	id, err := createWithFakes(t, s, sb, "app")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartContainer(context.Background(), &runtime.StartContainerRequest{ContainerId: id}); err != nil {
		t.Fatal(err)
	}
	return s, f, sb, id
}

// A StopPodSandbox that fails at a step reports it and leaves the pod
// ready, so the kubelet's retry stops it.
func TestStopPodSandboxFailureAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		name, step string
		nth        int
		mention    string
	}{
		{name: "container stop", step: "runtime stop", nth: 1, mention: "stop container"},
		{name: "infra stop", step: "runtime stop", nth: 2, mention: "stop infra container of pod"},
		{name: "network teardown", step: "network teardown", nth: 1, mention: "tear down network of pod"},
		{name: "network record", step: "pod record save created", nth: 1, mention: "pod record save created"},
		{name: "shm unmount", step: "shm unmount", nth: 1, mention: "shm unmount"},
		{name: "not ready record", step: "pod record save created", nth: 2, mention: "pod record save created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, sb, _ := podWithContainer(t)
			f.j.failAt(tc.step, tc.nth)
			_, err := s.StopPodSandbox(context.Background(), &runtime.StopPodSandboxRequest{PodSandboxId: sb.ID})
			assertFailedAt(t, f, err, tc.step, tc.mention)
			if !errors.Is(err, errInjected) {
				t.Errorf("error %v does not wrap the cause", err)
			}
			if st := sb.State(); st != sandbox.StateReady {
				t.Errorf("after the failed stop: %s, want ready", st)
			}
			if _, err := s.StopPodSandbox(context.Background(), &runtime.StopPodSandboxRequest{PodSandboxId: sb.ID}); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if st := sb.State(); st != sandbox.StateNotReady || sb.NetworkSetUp() {
				t.Errorf("after the retry: %s, network set up %v; want not ready, torn down", st, sb.NetworkSetUp())
			}
			if _, err := s.RemovePodSandbox(context.Background(), &runtime.RemovePodSandboxRequest{PodSandboxId: sb.ID}); err != nil {
				t.Fatal(err)
			}
			assertBalanced(t, f.j)
			assertNoPodLeft(t, s)
		})
	}
}

// A RemovePodSandbox that fails at a step reports it and keeps the pod
// listed; the retry removes it, and by then everything the pod and its
// container took is given back, the latest first.
func TestRemovePodSandboxFailureAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		name, step string
		nth        int
		mention    string
	}{
		{name: "network teardown", step: "network teardown", nth: 1, mention: "tear down network of pod"},
		{name: "container delete", step: "runtime delete", nth: 1, mention: "delete container"},
		{name: "container rootfs remove", step: "rootfs remove", nth: 1, mention: "rootfs remove"},
		{name: "infra delete", step: "runtime delete", nth: 2, mention: "remove infra container of pod"},
		{name: "infra rootfs remove", step: "rootfs remove", nth: 2, mention: "remove infra container of pod"},
		{name: "mark removing", step: "pod record save removing", nth: 1, mention: "pod record save removing"},
		{name: "namespaces", step: "namespaces remove", nth: 1, mention: "remove namespaces of pod"},
		{name: "shm unmount", step: "shm unmount", nth: 1, mention: "shm unmount"},
		{name: "record delete", step: "pod record delete", nth: 1, mention: "pod record delete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f, sb, _ := podWithContainer(t)
			f.j.failAt(tc.step, tc.nth)
			_, err := s.RemovePodSandbox(context.Background(), &runtime.RemovePodSandboxRequest{PodSandboxId: sb.ID})
			assertFailedAt(t, f, err, tc.step, tc.mention)
			if !errors.Is(err, errInjected) {
				t.Errorf("error %v does not wrap the cause", err)
			}
			if _, gerr := s.sandboxes.Get(sb.ID); gerr != nil {
				t.Fatalf("pod gone after a failed remove: %v", gerr)
			}
			if _, err := s.RemovePodSandbox(context.Background(), &runtime.RemovePodSandboxRequest{PodSandboxId: sb.ID}); err != nil {
				t.Fatalf("retry: %v", err)
			}
			assertBalanced(t, f.j)
			assertNoPodLeft(t, s)
			assertNoContainerLeft(t, s, sb, "app")
		})
	}
}

// netPod is a kubelet-shaped pod with its own network, IPC and UTS
// namespaces and a pid namespace per container: no infra container.
func netPod(name string) *runtime.PodSandboxConfig {
	cfg := hostNetworkPod(name)
	cfg.Linux.SecurityContext.NamespaceOptions.Network = runtime.NamespaceMode_POD
	return cfg
}

// A RunPodSandbox of a pod with namespaces of its own that fails at any
// step before its infra container reports the step and leaves nothing:
// no pin, no shm, no network, no record, no dir, no name. The retry makes
// a whole pod, and removing it gives everything back, the latest first.
func TestRunPodSandboxNamespacesFailureAtEachStep(t *testing.T) {
	for _, tc := range []struct {
		name, step string
		mention    string
	}{
		{name: "pod record", step: "pod record create", mention: "pod record create"},
		{name: "pod dir", step: "pod dir", mention: "create pod dir"},
		{name: "namespaces", step: "namespaces pin", mention: "pin namespaces of pod"},
		{name: "shm", step: "shm mount", mention: "shm mount"},
		{name: "network setup", step: "network setup", mention: "set up network of pod"},
		{name: "network record", step: "pod record save creating", mention: "pod record save creating"},
		{name: "ready record", step: "pod record save created", mention: "pod record save created"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := fakeServer(t)
			req := &runtime.RunPodSandboxRequest{Config: netPod("a")}
			if tc.step == "pod dir" {
				// A file where the pods' dirs go: making the pod's fails.
				if err := os.WriteFile(s.config.Runtime.RunDir+"/pods", nil, 0o644); err != nil {
					t.Fatal(err)
				}
			} else {
				f.j.failAt(tc.step, 1)
			}
			_, err := s.RunPodSandbox(context.Background(), req)
			if tc.step == "pod dir" {
				if err == nil || !strings.Contains(err.Error(), tc.mention) {
					t.Fatalf("error %v does not name the step (%q)", err, tc.mention)
				}
				os.Remove(s.config.Runtime.RunDir + "/pods")
			} else {
				assertFailedAt(t, f, err, tc.step, tc.mention)
				if !errors.Is(err, errInjected) {
					t.Errorf("error %v does not wrap the cause", err)
				}
			}
			assertBalanced(t, f.j)
			assertNoPodLeft(t, s)
			if pins, _ := f.ns.List(); len(pins) > 0 {
				t.Errorf("pins left: %v", pins)
			}

			resp, err := s.RunPodSandbox(context.Background(), req)
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			sb, err := s.sandboxes.Get(resp.GetPodSandboxId())
			if err != nil {
				t.Fatal(err)
			}
			if sb.State() != sandbox.StateReady || !sb.NetworkSetUp() || !f.ns.IsPinned(sb.NS.Net) || !f.ns.IsPinned(sb.NS.IPC) || !f.ns.IsPinned(sb.NS.UTS) {
				t.Errorf("retried pod: state %s, network set up %v, pins %+v; want ready with its namespaces", sb.State(), sb.NetworkSetUp(), sb.NS)
			}
			for _, call := range []func() error{
				func() error {
					_, err := s.StopPodSandbox(context.Background(), &runtime.StopPodSandboxRequest{PodSandboxId: sb.ID})
					return err
				},
				func() error {
					_, err := s.RemovePodSandbox(context.Background(), &runtime.RemovePodSandboxRequest{PodSandboxId: sb.ID})
					return err
				},
			} {
				if err := call(); err != nil {
					t.Fatal(err)
				}
			}
			assertBalanced(t, f.j)
			assertNoPodLeft(t, s)
		})
	}
}
