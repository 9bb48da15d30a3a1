package specgen

import (
	"testing"

	imagespec "github.com/opencontainers/image-spec/specs-go/v1"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

// Every entry point needs the host it builds for: none reads this machine
// behind the caller's back.
func TestHostRequired(t *testing.T) {
	in := baseInput(t)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"Generate", func() error {
			in := in
			in.Host = nil
			_, err := Generate(in)
			return err
		}},
		{"InfraSpec", func() error {
			_, err := InfraSpec(InfraInput{ID: "infra1", Sandbox: in.Sandbox, Rootfs: in.Rootfs, Image: &imagespec.ImageConfig{Cmd: []string{"/pause"}}})
			return err
		}},
		{"Resources", func() error {
			_, err := Resources(&runtime.LinuxContainerResources{}, 0, nil)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.call(), errdefs.ErrInvalidArgument, "host")
		})
	}
}

// ProbeHost reads this machine, whose mount table is the daemon's own.
func TestProbeHost(t *testing.T) {
	h := ProbeHost()
	if h.nofile == 0 || h.lastCap == 0 || h.mountinfo != "/proc/self/mountinfo" {
		t.Errorf("host %+v", h)
	}
	if _, _, err := mountOf(h.mountinfo, "/"); err != nil {
		t.Errorf("mount of /: %v", err)
	}
}
