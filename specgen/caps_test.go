package specgen

import (
	"reflect"
	"testing"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

func TestCapabilities(t *testing.T) {
	defaults := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE"}
	var grantable []string // every capability but CAP_SYS_RESOURCE
	for i, n := range capNames {
		if i != 24 {
			grantable = append(grantable, n)
		}
	}
	without := func(list []string, drop string) []string {
		var out []string
		for _, x := range list {
			if x != drop {
				out = append(out, x)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		add, drop  []string
		ambient    []string
		privileged bool
		want       []string
		wantAmb    []string
		errField   string
		errSentry  error
	}{
		{name: "defaults", want: defaults},
		{name: "add without prefix", add: []string{"NET_ADMIN"}, want: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_ADMIN"}},
		{name: "add with prefix", add: []string{"cap_sys_admin"}, want: append(append([]string(nil), defaults...), "CAP_SYS_ADMIN")},
		{name: "drop one", drop: []string{"CHOWN"}, want: defaults[1:]},
		{name: "drop all add one", drop: []string{"ALL"}, add: []string{"NET_ADMIN"}, want: []string{"CAP_NET_ADMIN"}},
		{name: "drop all", drop: []string{"ALL"}, want: nil},
		{name: "add all drop one", add: []string{"ALL"}, drop: []string{"CHOWN"}, want: without(grantable, "CAP_CHOWN")},
		{name: "ambient", ambient: []string{"NET_RAW"}, want: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"}, wantAmb: []string{"CAP_NET_RAW"}},
		{name: "privileged", privileged: true, drop: []string{"ALL"}, want: grantable},
		{name: "unknown add", add: []string{"FLY"}, errField: scField + ".capabilities.add_capabilities[0]", errSentry: errdefs.ErrInvalidArgument},
		{name: "unknown drop", drop: []string{"CHOWN", "CAP_NOPE"}, errField: scField + ".capabilities.drop_capabilities[1]", errSentry: errdefs.ErrInvalidArgument},
		{name: "not grantable here", add: []string{"SYS_RESOURCE"}, errField: "add_capabilities[0]", errSentry: errdefs.ErrFailedPrecondition},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(t)
			s := sc(&in)
			s.Capabilities = &runtime.Capability{AddCapabilities: tc.add, DropCapabilities: tc.drop, AddAmbientCapabilities: tc.ambient}
			s.Privileged = tc.privileged
			in.Sandbox.SecurityContext = &runtime.LinuxSandboxSecurityContext{Privileged: tc.privileged}
			res, err := Generate(in)
			if tc.errField != "" {
				wantErr(t, err, tc.errSentry, tc.errField)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := res.Spec.Process.Capabilities
			sorted := func(l []string) []string { // compare as sets in kernel order
				var out []string
				for _, n := range capNames {
					if contains(l, n) {
						out = append(out, n)
					}
				}
				return out
			}
			want := sorted(tc.want)
			if !reflect.DeepEqual(c.Bounding, want) || !reflect.DeepEqual(c.Effective, want) || !reflect.DeepEqual(c.Permitted, want) {
				t.Fatalf("caps\n bounding  %v\n effective %v\n permitted %v\nwant %v", c.Bounding, c.Effective, c.Permitted, want)
			}
			if !reflect.DeepEqual(c.Ambient, tc.wantAmb) || !reflect.DeepEqual(c.Inheritable, tc.wantAmb) {
				t.Fatalf("ambient %v inheritable %v, want %v", c.Ambient, c.Inheritable, tc.wantAmb)
			}
		})
	}
}

func TestPrivilegedNeedsPrivilegedPod(t *testing.T) {
	in := baseInput(t)
	sc(&in).Privileged = true
	_, err := Generate(in)
	wantErr(t, err, errdefs.ErrInvalidArgument, scField+".privileged")
}
