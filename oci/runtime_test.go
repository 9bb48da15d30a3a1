package oci

import (
	"slices"
	"testing"
)

func TestGlobalArgs(t *testing.T) {
	for _, tc := range []struct {
		name, manager string
		want          []string
	}{
		{"cgroupfs", CgroupfsManager, []string{"--root", "/run/crun", "state", "c1"}},
		{"systemd", SystemdManager, []string{"--root", "/run/crun", "--systemd-cgroup", "state", "c1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Runtime{cfg: Config{Root: "/run/crun", CgroupManager: tc.manager}}
			if got := r.globalArgs("state", "c1"); !slices.Equal(got, tc.want) {
				t.Errorf("globalArgs = %q, want %q", got, tc.want)
			}
		})
	}
}
