package server

import (
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The pod's cgroup parent is the one it asked for, or the cgroup
// manager's default, the same one specgen builds container paths under.
func TestCgroupParent(t *testing.T) {
	for _, tc := range []struct {
		manager, requested, want string
	}{
		{"cgroupfs", "", "/berth"},
		{"systemd", "", "system.slice"},
		{"cgroupfs", "/kubepods/besteffort/pod1", "/kubepods/besteffort/pod1"},
		{"systemd", "kubepods-besteffort-pod1.slice", "kubepods-besteffort-pod1.slice"},
	} {
		t.Run(tc.manager+" "+tc.requested, func(t *testing.T) {
			s := unitServer(t)
			s.config.Runtime.CgroupManager = tc.manager
			cfg := &runtime.PodSandboxConfig{Linux: &runtime.LinuxPodSandboxConfig{CgroupParent: tc.requested}}
			if got := s.cgroupParent(cfg); got != tc.want {
				t.Errorf("cgroupParent = %q, want %q", got, tc.want)
			}
		})
	}
}
