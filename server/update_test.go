package server

import (
	"context"
	"errors"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/oci"
)

func TestUpdateContainerResources(t *testing.T) {
	s, _, rt := scriptedServer(t)
	s.config.Runtime.PidsLimit = 100
	var got *specs.LinuxResources
	rt.update = func(c *oci.Container, res *specs.LinuxResources) error {
		got = res
		return nil
	}
	linux := &runtime.LinuxContainerResources{CpuShares: 1024, CpuQuota: 50000, CpuPeriod: 100000, MemoryLimitInBytes: 64 << 20}
	for _, id := range []string{"run-1", "new-1"} { // a created container's cgroup exists already
		t.Run(id, func(t *testing.T) {
			got = nil
			if _, err := s.UpdateContainerResources(context.Background(), &runtime.UpdateContainerResourcesRequest{ContainerId: id, Linux: linux}); err != nil {
				t.Fatal(err)
			}
			if got == nil || got.CPU == nil || got.Memory == nil || got.Pids == nil {
				t.Fatalf("runtime got %+v", got)
			}
			if *got.CPU.Shares != 1024 || *got.CPU.Quota != 50000 || *got.CPU.Period != 100000 || *got.Memory.Limit != 64<<20 || got.Pids.Limit == nil || *got.Pids.Limit != 100 {
				t.Errorf("runtime got cpu %+v, memory %+v, pids %+v", *got.CPU, *got.Memory, *got.Pids)
			}
			resp, err := s.ContainerStatus(context.Background(), &runtime.ContainerStatusRequest{ContainerId: id})
			if err != nil {
				t.Fatal(err)
			}
			if r := resp.GetStatus().GetResources().GetLinux(); r.GetCpuShares() != 1024 || r.GetMemoryLimitInBytes() != 64<<20 {
				t.Errorf("status reports resources %v, want the applied ones", r)
			}
		})
	}
	// The same update again is applied again: it is idempotent.
	if _, err := s.UpdateContainerResources(context.Background(), &runtime.UpdateContainerResourcesRequest{ContainerId: "run-1", Linux: linux}); err != nil {
		t.Errorf("repeated update: %v", err)
	}
}

func TestUpdateContainerResourcesRefusals(t *testing.T) {
	errCgroup := errors.New("cgroup: write cpu.max: device or resource busy")
	for _, tc := range []struct {
		name    string
		req     *runtime.UpdateContainerResourcesRequest
		update  func(*oci.Container, *specs.LinuxResources) error
		code    codes.Code
		names   string
		applied bool // the runtime was asked
	}{
		{name: "empty container id", req: &runtime.UpdateContainerResourcesRequest{Linux: &runtime.LinuxContainerResources{}},
			code: codes.InvalidArgument, names: "container_id"},
		{name: "unknown container", req: &runtime.UpdateContainerResourcesRequest{ContainerId: "nope", Linux: &runtime.LinuxContainerResources{}},
			code: codes.NotFound, names: "nope"},
		{name: "no linux resources", req: &runtime.UpdateContainerResourcesRequest{ContainerId: "run-1"},
			code: codes.InvalidArgument, names: "linux"},
		{name: "bad page size", req: &runtime.UpdateContainerResourcesRequest{ContainerId: "run-1", Linux: &runtime.LinuxContainerResources{
			HugepageLimits: []*runtime.HugepageLimit{{PageSize: "huge", Limit: 1 << 21}},
		}}, code: codes.InvalidArgument, names: "linux: hugepage_limits[0].page_size"},
		{name: "negative shares", req: &runtime.UpdateContainerResourcesRequest{ContainerId: "run-1", Linux: &runtime.LinuxContainerResources{CpuShares: -1}},
			code: codes.InvalidArgument, names: "cpu_shares"},
		{name: "runtime fails", req: &runtime.UpdateContainerResourcesRequest{ContainerId: "run-1", Linux: &runtime.LinuxContainerResources{CpuShares: 2}},
			update: func(*oci.Container, *specs.LinuxResources) error { return errCgroup },
			code:   codes.Internal, names: "update resources of container run-1: cgroup", applied: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, rt := scriptedServer(t)
			rt.update = tc.update
			_, err := s.UpdateContainerResources(context.Background(), tc.req)
			wantCode(t, err, tc.code, tc.names)
			if got := len(rt.callList()) > 0; got != tc.applied {
				t.Errorf("runtime asked: %v, want %v", got, tc.applied)
			}
			// The status still reports what the container was created with: none.
			if c, err := s.containers.Get("run-1"); err != nil || c.Status().Resources != nil {
				t.Errorf("resources recorded after a refused update: %v", c.Status().Resources)
			}
		})
	}
}

// Resources the runtime applied but that could not be recorded fail the
// call, so the kubelet retries it; the status keeps the old ones.
func TestUpdateContainerResourcesUnrecorded(t *testing.T) {
	s, f, rt := scriptedServer(t)
	f.j.failAt("record save created", 1)
	_, err := s.UpdateContainerResources(context.Background(), &runtime.UpdateContainerResourcesRequest{
		ContainerId: "run-1", Linux: &runtime.LinuxContainerResources{CpuShares: 2},
	})
	wantCode(t, err, codes.Internal, "record resources of container run-1")
	if !errors.Is(err, errInjected) || len(rt.callList()) != 1 {
		t.Errorf("error %v, runtime calls %v", err, rt.callList())
	}
	if c, _ := s.containers.Get("run-1"); c.Status().Resources != nil {
		t.Errorf("resources %v reported although unrecorded", c.Status().Resources)
	}
}
