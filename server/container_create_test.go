package server

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/namespaces"
	"github.com/berth-dev/berth/sandbox"
	"github.com/berth-dev/berth/storage"
)

// targetConfig is a container config whose pid namespace is that of
// container target (mode TARGET), as kubectl debug --target sends it.
func targetConfig(name, target string) *runtime.ContainerConfig {
	return &runtime.ContainerConfig{
		Metadata: &runtime.ContainerMetadata{Name: name},
		Image:    &runtime.ImageSpec{Image: "busybox"},
		Linux: &runtime.LinuxContainerConfig{SecurityContext: &runtime.LinuxContainerSecurityContext{
			NamespaceOptions: &runtime.NamespaceOption{Network: runtime.NamespaceMode_NODE, Pid: runtime.NamespaceMode_TARGET, TargetId: target},
		}},
	}
}

// targetServer has pod "pod-a" with containers in every state a target
// can be in, and pod "pod-b" with a running container.
func targetServer(t *testing.T) (*Server, *sandbox.Sandbox) {
	t.Helper()
	s := unitServer(t)
	sb := addReadyPod(t, s, "pod-a", hostNetworkPod("a"))
	addReadyPod(t, s, "pod-b", hostNetworkPod("b"))
	addContainer(t, s, "app-running", "pod-a", container.StateRunning)
	writeInitPid(t, s, "app-running", os.Getpid()) // a process that surely runs
	addContainer(t, s, "app-created", "pod-a", container.StateCreated)
	addContainer(t, s, "app-exited", "pod-a", container.StateExited)
	addContainer(t, s, "app-vanished", "pod-a", container.StateRunning) // running by its record, no init pid
	addContainer(t, s, "other-running", "pod-b", container.StateRunning)
	writeInitPid(t, s, "other-running", os.Getpid())
	return s, sb
}

func TestTargetPid(t *testing.T) {
	s, sb := targetServer(t)
	for _, tc := range []struct {
		name    string
		cfg     *runtime.ContainerConfig
		podPid  *runtime.NamespaceOption // the pod's options, when the container names none
		want    int
		err     error
		mention string
	}{
		{name: "not TARGET", cfg: &runtime.ContainerConfig{}, want: 0},
		{name: "running target", cfg: targetConfig("dbg", "app-running"), want: os.Getpid()},
		{name: "running target by id prefix", cfg: targetConfig("dbg", "app-run"), want: os.Getpid()},
		{name: "TARGET from the pod's options", cfg: &runtime.ContainerConfig{},
			podPid: &runtime.NamespaceOption{Pid: runtime.NamespaceMode_TARGET, TargetId: "app-running"}, want: os.Getpid()},
		{name: "empty target id", cfg: targetConfig("dbg", ""), err: errdefs.ErrInvalidArgument, mention: "required"},
		{name: "unknown target", cfg: targetConfig("dbg", "nope"), err: errdefs.ErrInvalidArgument, mention: "nope"},
		{name: "target in another pod", cfg: targetConfig("dbg", "other-running"), err: errdefs.ErrInvalidArgument, mention: "belongs to pod pod-b"},
		{name: "created target", cfg: targetConfig("dbg", "app-created"), err: errdefs.ErrFailedPrecondition, mention: "is created, not running"},
		{name: "exited target", cfg: targetConfig("dbg", "app-exited"), err: errdefs.ErrFailedPrecondition, mention: "is exited, not running"},
		{name: "target whose process is gone", cfg: targetConfig("dbg", "app-vanished"), err: errdefs.ErrFailedPrecondition, mention: "init process is gone"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pod := sb
			if tc.podPid != nil {
				cfg := hostNetworkPod("a")
				cfg.Linux.SecurityContext.NamespaceOptions = tc.podPid
				pod = &sandbox.Sandbox{ID: sb.ID, Config: cfg}
			}
			pid, err := s.targetPid(pod, tc.cfg)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), targetField) || !strings.Contains(err.Error(), tc.mention) {
					t.Fatalf("targetPid = %d, %v; want %v naming %s and %q", pid, err, tc.err, targetField, tc.mention)
				}
				return
			}
			if err != nil || pid != tc.want {
				t.Fatalf("targetPid = %d, %v; want %d", pid, err, tc.want)
			}
		})
	}
}

// A bad target fails CreateContainer with the code that says whose fault
// it is, before anything is made: no name is taken, no record written.
func TestCreateContainerRefusesBadTargets(t *testing.T) {
	s, sb := targetServer(t)
	records := func() int {
		ents, _ := os.ReadDir(string(s.containerRecords()))
		return len(ents)
	}
	before := records()
	for _, tc := range []struct {
		target string
		code   codes.Code
	}{
		{"", codes.InvalidArgument},
		{"nope", codes.InvalidArgument},
		{"other-running", codes.InvalidArgument},
		{"app-created", codes.FailedPrecondition},
		{"app-exited", codes.FailedPrecondition},
	} {
		t.Run("target "+tc.target, func(t *testing.T) {
			_, err := s.CreateContainer(context.Background(), &runtime.CreateContainerRequest{
				PodSandboxId: sb.ID, Config: targetConfig("dbg", tc.target), SandboxConfig: sb.Config,
			})
			err = ToStatus(err)
			if status.Code(err) != tc.code || !strings.Contains(err.Error(), targetField) {
				t.Fatalf("CreateContainer = %v; want %s naming %s", err, tc.code, targetField)
			}
			name := container.Name(targetConfig("dbg", "").GetMetadata(), sb.Config.GetMetadata())
			if id, ok := s.ctrNames.Get(name); ok {
				t.Fatalf("name %s left reserved for %s", name, id)
			}
			if n := records(); n != before {
				t.Fatalf("%d container records, want %d", n, before)
			}
		})
	}
}

// What the spec takes from the daemon and the pod: the host's AppArmor
// switch and facts as read at start-up, the infra pid kept on the pod (no
// pid file is read), and the pod's cgroup parent.
func TestSpecInput(t *testing.T) {
	for _, tc := range []struct {
		name     string
		appArmor bool
		infraPid int
	}{
		{"apparmor off, no infra", false, 0},
		{"apparmor on", true, 0},
		{"infra pid from the pod", false, 4242},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := unitServer(t)
			s.appArmor = tc.appArmor
			sb := sandbox.New("pod-a", "a", hostNetworkPod("a"), "", "crun", t.TempDir(), s.sandboxRecords())
			sb.NS = &namespaces.Pinned{PodID: sb.ID}
			sb.CgroupParent = s.cgroupParent(sb.Config)
			if tc.infraPid != 0 {
				sb.InfraID, sb.InfraPid = sb.ID, tc.infraPid
				writeInitPid(t, s, sb.ID, 1) // a stale pid file must not be read
			}
			in := s.specInput("c1", sb, targetConfig("c", "x"))
			if in.AppArmorEnabled != tc.appArmor || in.Sandbox.InfraPid != tc.infraPid {
				t.Errorf("AppArmorEnabled %v, InfraPid %d; want %v, %d", in.AppArmorEnabled, in.Sandbox.InfraPid, tc.appArmor, tc.infraPid)
			}
			if in.Sandbox.CgroupParent != "/berth" || in.CgroupManager != "cgroupfs" || in.ID != "c1" || in.Sandbox.ID != sb.ID || in.Host != s.host {
				t.Errorf("input %+v", in)
			}
		})
	}
}

// The image a container reports is the one the pod spec names, whatever
// the kubelet created it from.
func TestImageName(t *testing.T) {
	img := &storage.Image{ID: "cfc64f657131607a1701026cccf7bc28b311b20e3720411f7c6ef50c0823a4b7", RepoTags: []string{"registry.k8s.io/e2e-test-images/busybox:1.37.0-2"}}
	for _, tc := range []struct {
		name string
		spec *runtime.ImageSpec
		want string
	}{
		{"kubelet: the id, and the pod spec's name", &runtime.ImageSpec{Image: img.ID, UserSpecifiedImage: "busybox:1.37.0-2"}, "busybox:1.37.0-2"},
		{"crictl: a name", &runtime.ImageSpec{Image: "busybox"}, "busybox"},
		{"an id alone", &runtime.ImageSpec{Image: img.ID}, img.RepoTags[0]},
		{"a digest id", &runtime.ImageSpec{Image: "sha256:" + img.ID}, img.RepoTags[0]},
		{"a short id", &runtime.ImageSpec{Image: img.ID[:12]}, img.RepoTags[0]},
		{"an id of an untagged image", &runtime.ImageSpec{Image: "abc"}, "abc"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := imageName(tc.spec, img); got != tc.want {
				t.Errorf("imageName = %q, want %q", got, tc.want)
			}
		})
	}
}

// ContainerStatus and ListContainers name the image as the pod spec does,
// keeping the rest of the config's image spec.
func TestStatusNamesThePodSpecImage(t *testing.T) {
	s, _ := fakeServer(t)
	sb := addReadyPod(t, s, "pod-a", hostPod("a"))
	img, _ := s.images.Image(context.Background(), "busybox")
	resp, err := s.CreateContainer(context.Background(), &runtime.CreateContainerRequest{
		PodSandboxId: sb.ID, SandboxConfig: sb.Config,
		Config: &runtime.ContainerConfig{
			Metadata: &runtime.ContainerMetadata{Name: "app"},
			// The fakes look images up by name only; the kubelet sends the id.
			Image: &runtime.ImageSpec{Image: "busybox", UserSpecifiedImage: "example.test/busybox:2", RuntimeHandler: "crun"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.ContainerStatus(context.Background(), &runtime.ContainerStatusRequest{ContainerId: resp.GetContainerId()})
	if got := st.GetStatus().GetImage(); err != nil || got.GetImage() != "example.test/busybox:2" || got.GetRuntimeHandler() != "crun" {
		t.Errorf("ContainerStatus image %v, %v; want example.test/busybox:2 with the config's runtime handler", got, err)
	}
	if st.GetStatus().GetImageId() != img.ID {
		t.Errorf("image id %q, want %q", st.GetStatus().GetImageId(), img.ID)
	}
	list, err := s.ListContainers(context.Background(), &runtime.ListContainersRequest{})
	if err != nil || len(list.GetContainers()) != 1 || list.GetContainers()[0].GetImage().GetImage() != "example.test/busybox:2" {
		t.Errorf("ListContainers = %v, %v", list.GetContainers(), err)
	}
}
