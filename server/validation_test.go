package server

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/sandbox"
)

// Bad input to the lifecycle calls gets the gRPC code the CRI expects,
// naming the field, and makes nothing; stopping and removing what is gone
// succeeds.
func TestLifecycleBadInput(t *testing.T) {
	ctx := context.Background()
	ctr := func(mut func(*runtime.ContainerConfig)) *runtime.ContainerConfig {
		cfg := &runtime.ContainerConfig{Metadata: &runtime.ContainerMetadata{Name: "app"}, Image: &runtime.ImageSpec{Image: "busybox"}}
		if mut != nil {
			mut(cfg)
		}
		return cfg
	}
	create := func(pod string, cfg *runtime.ContainerConfig) func(*Server) error {
		return func(s *Server) error {
			_, err := s.CreateContainer(ctx, &runtime.CreateContainerRequest{PodSandboxId: pod, Config: cfg, SandboxConfig: netPod("a")})
			return err
		}
	}
	runPod := func(cfg *runtime.PodSandboxConfig, handler string) func(*Server) error {
		return func(s *Server) error {
			_, err := s.RunPodSandbox(ctx, &runtime.RunPodSandboxRequest{Config: cfg, RuntimeHandler: handler})
			return err
		}
	}
	podWith := func(mut func(*runtime.PodSandboxConfig)) *runtime.PodSandboxConfig {
		cfg := netPod("b")
		mut(cfg)
		return cfg
	}
	for _, tc := range []struct {
		name    string
		call    func(*Server) error
		code    codes.Code
		mention string
	}{
		{"pod without config", runPod(nil, ""), codes.InvalidArgument, "config"},
		{"pod without metadata", runPod(podWith(func(c *runtime.PodSandboxConfig) { c.Metadata = nil }), ""), codes.InvalidArgument, "config.metadata"},
		{"pod without name", runPod(podWith(func(c *runtime.PodSandboxConfig) { c.Metadata.Name = "" }), ""), codes.InvalidArgument, "config.metadata.name"},
		{"pod without namespace", runPod(podWith(func(c *runtime.PodSandboxConfig) { c.Metadata.Namespace = "" }), ""), codes.InvalidArgument, "config.metadata.namespace"},
		{"pod without uid", runPod(podWith(func(c *runtime.PodSandboxConfig) { c.Metadata.Uid = "" }), ""), codes.InvalidArgument, "config.metadata.uid"},
		{"pod of an unknown handler", runPod(netPod("b"), "kata"), codes.InvalidArgument, `unknown handler "kata" (configured: crun)`},
		{"pod with a host sysctl", runPod(podWith(func(c *runtime.PodSandboxConfig) {
			c.Linux.Sysctls = map[string]string{"kernel.panic": "1"}
		}), ""), codes.InvalidArgument, "config.linux.sysctls"},
		{"pod while the network is not ready", func(s *Server) error {
			s.network.(*fakeNetwork).j.failAt("network status", 1)
			return runPod(netPod("b"), "")(s)
		}, codes.FailedPrecondition, "pod network is not ready"},

		{"container without pod id", create("", ctr(nil)), codes.InvalidArgument, "pod_sandbox_id"},
		{"container without config", create("pod-a", nil), codes.InvalidArgument, "config"},
		{"container without name", create("pod-a", ctr(func(c *runtime.ContainerConfig) { c.Metadata = nil })), codes.InvalidArgument, "config.metadata.name"},
		{"container without image", create("pod-a", ctr(func(c *runtime.ContainerConfig) { c.Image = nil })), codes.InvalidArgument, "config.image.image"},
		{"container with a NUL in a variable", create("pod-a", ctr(func(c *runtime.ContainerConfig) {
			c.Envs = []*runtime.KeyValue{{Key: "A", Value: []byte("ok")}, {Key: "B", Value: []byte("x\x00y")}}
		})), codes.InvalidArgument, "config.envs[1]"},
		{"mount without host path", create("pod-a", ctr(func(c *runtime.ContainerConfig) {
			c.Mounts = []*runtime.Mount{{ContainerPath: "/data"}}
		})), codes.InvalidArgument, "config.mounts[0].host_path"},
		{"mount without container path", create("pod-a", ctr(func(c *runtime.ContainerConfig) {
			c.Mounts = []*runtime.Mount{{HostPath: "/tmp"}}
		})), codes.InvalidArgument, "config.mounts[0].container_path"},
		{"container in an unknown pod", create("pod-x", ctr(nil)), codes.NotFound, "pod_sandbox_id"},
		{"container in a stopped pod", create("pod-stopped", ctr(nil)), codes.FailedPrecondition, "pod sandbox pod-stopped is not ready"},
		{"container of an absent image", create("pod-a", ctr(func(c *runtime.ContainerConfig) { c.Image.Image = "nginx" })), codes.NotFound, `config.image.image: image "nginx" is not present`},

		{"start without id", func(s *Server) error {
			_, err := s.StartContainer(ctx, &runtime.StartContainerRequest{})
			return err
		}, codes.InvalidArgument, "container_id"},
		{"start of an unknown container", func(s *Server) error {
			_, err := s.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: "nope"})
			return err
		}, codes.NotFound, "container_id"},
		{"start of an exited container", func(s *Server) error {
			_, err := s.StartContainer(ctx, &runtime.StartContainerRequest{ContainerId: "exited"})
			return err
		}, codes.FailedPrecondition, "exited"},
		{"stop without id", func(s *Server) error {
			_, err := s.StopContainer(ctx, &runtime.StopContainerRequest{})
			return err
		}, codes.InvalidArgument, "container_id"},
		{"remove without id", func(s *Server) error {
			_, err := s.RemoveContainer(ctx, &runtime.RemoveContainerRequest{})
			return err
		}, codes.InvalidArgument, "container_id"},
		{"pod stop without id", func(s *Server) error {
			_, err := s.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{})
			return err
		}, codes.InvalidArgument, "pod_sandbox_id"},
		{"pod remove without id", func(s *Server) error {
			_, err := s.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{})
			return err
		}, codes.InvalidArgument, "pod_sandbox_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, f := fakeServer(t)
			addReadyPod(t, s, "pod-a", netPod("a"))
			stopped := addReadyPod(t, s, "pod-stopped", netPod("stopped"))
			if err := stopped.SetState(sandbox.StateNotReady); err != nil {
				t.Fatal(err)
			}
			addContainer(t, s, "exited", "pod-a", container.StateExited)
			pods, ctrs := len(s.sandboxes.List()), len(s.containers.List())
			f.j.reset()

			err := tc.call(s)
			if code := grpcCode(err); code != tc.code || !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %v (%s), want %s naming %q", err, code, tc.code, tc.mention)
			}
			if len(s.sandboxes.List()) != pods || len(s.containers.List()) != ctrs {
				t.Errorf("a failed call left objects: %d pods, %d containers", len(s.sandboxes.List()), len(s.containers.List()))
			}
			assertBalanced(t, f.j)
			for _, e := range f.j.snapshot() {
				if op, _ := splitEntry(e); acquisitions[op] {
					t.Errorf("a refused call acquired %q", e)
				}
			}
		})
	}
}

// Stopping and removing what is gone succeeds, for containers and pods,
// however many times.
func TestStopRemoveWhatIsGone(t *testing.T) {
	ctx := context.Background()
	s, _ := fakeServer(t)
	for i := range 2 {
		for _, call := range []struct {
			name string
			do   func() error
		}{
			{"StopContainer", func() error {
				_, err := s.StopContainer(ctx, &runtime.StopContainerRequest{ContainerId: "gone"})
				return err
			}},
			{"RemoveContainer", func() error {
				_, err := s.RemoveContainer(ctx, &runtime.RemoveContainerRequest{ContainerId: "gone"})
				return err
			}},
			{"StopPodSandbox", func() error {
				_, err := s.StopPodSandbox(ctx, &runtime.StopPodSandboxRequest{PodSandboxId: "gone"})
				return err
			}},
			{"RemovePodSandbox", func() error {
				_, err := s.RemovePodSandbox(ctx, &runtime.RemovePodSandboxRequest{PodSandboxId: "gone"})
				return err
			}},
		} {
			if err := call.do(); err != nil {
				t.Errorf("%s of what is gone (call %d): %v", call.name, i+1, err)
			}
		}
	}
	if len(s.sandboxes.List()) != 0 || len(s.containers.List()) != 0 {
		t.Errorf("objects appeared: %d pods, %d containers", len(s.sandboxes.List()), len(s.containers.List()))
	}
}
