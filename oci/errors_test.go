package oci

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

func TestClassifyRuntimeErrors(t *testing.T) {
	for _, tc := range []struct {
		name, stderr string
		want         error
	}{
		{"runc unknown", `time="2024-01-01T00:00:00Z" level=error msg="container does not exist"`, errdefs.ErrNotFound},
		{"crun unknown", "error opening file `/run/crun/x/status`: No such file or directory", errdefs.ErrNotFound},
		{"crun not running", "the container `x` is not running", errdefs.ErrFailedPrecondition},
		{"runc exec stopped", "exec failed: cannot exec in a stopped container", errdefs.ErrFailedPrecondition},
		{"already exists", "container with id exists: x: already exists", errdefs.ErrAlreadyExists},
		{"other", "invalid rootfs", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := classify(runtimeMessage(tc.stderr))
			if (tc.want == nil && got != nil) || (tc.want != nil && !errors.Is(got, tc.want)) {
				t.Errorf("classify(%q) = %v, want %v", tc.stderr, got, tc.want)
			}
		})
	}
}

func TestRuntimeMessage(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"  plain error \n", "plain error"},
		{`time="2024-01-01T00:00:00Z" level=error msg="runc create failed: \"x\" not found"`, `runc create failed: "x" not found`},
		{"line one\n\nline two\n", "line one; line two"},
	} {
		if got := runtimeMessage(tc.in); got != tc.want {
			t.Errorf("runtimeMessage(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestContainerValidate(t *testing.T) {
	for _, id := range []string{"", ".", "..", "a/b", "a\x00b"} {
		if err := (&Container{ID: id}).validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("id %q: err = %v, want ErrInvalidArgument", id, err)
		}
	}
	if err := (&Container{ID: "abc123"}).validate(); err != nil {
		t.Errorf("valid id: %v", err)
	}
	var nilC *Container
	if err := nilC.validate(); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("nil container: err = %v", err)
	}
}
