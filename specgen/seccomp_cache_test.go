package specgen

import (
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The filter of a profile is made once per set of bounding capabilities;
// a default profile file is read on every create, so an edit applies to
// the next container.
func TestSeccompFiltersAreCached(t *testing.T) {
	withCaps := func(caps ...string) *specs.Spec {
		return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	}
	a, err := defaultSeccomp("", withCaps("CAP_KILL", "CAP_CHOWN"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := defaultSeccomp("", withCaps("CAP_CHOWN", "CAP_KILL"))
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("the same capabilities in another order made the default filter again")
	}
	c, err := defaultSeccomp("", withCaps("CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	if c == a || len(c.Syscalls) == len(a.Syscalls) {
		t.Error("CAP_SYS_ADMIN got the filter of a container without it")
	}

	file := filepath.Join(t.TempDir(), "default.json")
	for _, action := range []specs.LinuxSeccompAction{specs.ActErrno, specs.ActLog} {
		if err := os.WriteFile(file, []byte(`{"defaultAction":"`+string(action)+`"}`), 0o644); err != nil {
			t.Fatal(err)
		}
		f, err := defaultSeccomp(file, withCaps("CAP_KILL"))
		if err != nil {
			t.Fatal(err)
		}
		if f.DefaultAction != action {
			t.Errorf("default action %s after the file said %s", f.DefaultAction, action)
		}
	}
}
