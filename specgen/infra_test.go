package specgen

import (
	"reflect"
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

func TestInfraSpec(t *testing.T) {
	pause := &imagespec.ImageConfig{Entrypoint: []string{"/pause"}}
	for _, tc := range []struct {
		name     string
		image    *imagespec.ImageConfig
		sandbox  func(*SandboxInfo)
		check    func(*testing.T, *specs.Spec)
		errField string
	}{
		{name: "defaults", image: pause, check: func(t *testing.T, s *specs.Spec) {
			if !reflect.DeepEqual(s.Process.Args, []string{"/pause"}) || !s.Root.Readonly || !s.Process.NoNewPrivileges {
				t.Fatalf("args %v readonly %v nnp %v", s.Process.Args, s.Root.Readonly, s.Process.NoNewPrivileges)
			}
			if u := s.Process.User; u.UID != 65535 || u.GID != 65535 {
				t.Fatalf("user %+v", u)
			}
			if c := s.Process.Capabilities; len(c.Bounding)+len(c.Effective)+len(c.Permitted) != 0 {
				t.Fatalf("capabilities %+v", c)
			}
			if s.Process.OOMScoreAdj != nil || s.Linux.Seccomp != nil || s.Hostname != "pod1-host" {
				t.Fatalf("oom %v seccomp %v hostname %q", s.Process.OOMScoreAdj, s.Linux.Seccomp, s.Hostname)
			}
			if p, ok := hasNS(s, specs.PIDNamespace); !ok || p.Path != "" {
				t.Fatal("no new pid namespace")
			}
			if n, _ := hasNS(s, specs.NetworkNamespace); n.Path != "/run/berth/ns/net/pod1" {
				t.Fatalf("network namespace %q", n.Path)
			}
			if s.Linux.CgroupsPath != "/kubepods/pod1/berth-infra1" || s.Annotations["io.kubernetes.cri.container-type"] != "sandbox" {
				t.Fatalf("cgroupsPath %q annotations %v", s.Linux.CgroupsPath, s.Annotations)
			}
			if findMount(s, "/proc") == nil || findMount(s, "/dev/shm") != nil || len(s.Linux.MaskedPaths) == 0 {
				t.Fatalf("mounts %v masked %v", s.Mounts, s.Linux.MaskedPaths)
			}
		}},
		{name: "image user and pod run_as_group", image: &imagespec.ImageConfig{Cmd: []string{"/pause"}, User: "alice"},
			sandbox: func(sb *SandboxInfo) {
				sb.SecurityContext = &runtime.LinuxSandboxSecurityContext{RunAsGroup: &runtime.Int64Value{Value: 5}, SupplementalGroups: []int64{7}}
			},
			check: func(t *testing.T, s *specs.Spec) {
				if u := s.Process.User; u.UID != 1000 || u.GID != 5 || !reflect.DeepEqual(u.AdditionalGids, []uint32{5, 7}) {
					t.Fatalf("user %+v", u)
				}
			}},
		{name: "pod run_as_user and seccomp", image: pause,
			sandbox: func(sb *SandboxInfo) {
				sb.SecurityContext = &runtime.LinuxSandboxSecurityContext{RunAsUser: &runtime.Int64Value{Value: 1001}, Seccomp: &runtime.SecurityProfile{}}
			},
			check: func(t *testing.T, s *specs.Spec) {
				if u := s.Process.User; u.UID != 1001 || u.GID != 1001 {
					t.Fatalf("user %+v", u)
				}
				if s.Linux.Seccomp == nil || s.Linux.Seccomp.DefaultAction != specs.ActErrno {
					t.Fatal("no RuntimeDefault seccomp")
				}
			}},
		{name: "host pid and network", image: pause, sandbox: func(sb *SandboxInfo) {
			sb.HostPID, sb.HostNetwork, sb.NetNS, sb.UTSNS = true, true, "", ""
		}, check: func(t *testing.T, s *specs.Spec) {
			for _, k := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.UTSNamespace} {
				if _, ok := hasNS(s, k); ok {
					t.Fatalf("%s namespace in a host pod", k)
				}
			}
			if s.Hostname != "" {
				t.Fatalf("hostname %q set in the host's UTS namespace", s.Hostname)
			}
		}},
		{name: "no entrypoint", image: &imagespec.ImageConfig{}, errField: "pause image"},
		{name: "unknown image user", image: &imagespec.ImageConfig{Cmd: []string{"/pause"}, User: "mallory"}, errField: "image config User"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			sb := in.Sandbox
			if tc.sandbox != nil {
				tc.sandbox(&sb)
			}
			s, err := InfraSpec(InfraInput{ID: "infra1", Sandbox: sb, Image: tc.image, Rootfs: in.Rootfs, CgroupManager: "cgroupfs", Host: in.Host})
			if tc.errField != "" {
				wantErr(t, err, errdefs.ErrInvalidArgument, tc.errField)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, s)
		})
	}
}
