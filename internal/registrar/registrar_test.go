package registrar

import (
	"errors"
	"testing"

	"github.com/berth-dev/berth/errdefs"
)

func TestReserve(t *testing.T) {
	r := New()
	for _, tc := range []struct {
		name, pod, id string
		want          error
	}{
		{"first reservation", "pod-a", "1", nil},
		{"same holder again", "pod-a", "1", nil},
		{"other holder", "pod-a", "2", errdefs.ErrAlreadyExists},
		{"other name", "pod-b", "2", nil},
		{"empty name", "", "3", errdefs.ErrInvalidArgument},
		{"empty id", "pod-c", "", errdefs.ErrInvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := r.Reserve(tc.pod, tc.id)
			if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
				t.Fatalf("Reserve(%q, %q) = %v, want %v", tc.pod, tc.id, err, tc.want)
			}
		})
	}
	r.Release("pod-a", "2") // not the holder: no effect
	if id, _ := r.Get("pod-a"); id != "1" {
		t.Fatalf("release by a non-holder freed the name")
	}
	r.Release("pod-a", "1")
	if err := r.Reserve("pod-a", "2"); err != nil {
		t.Fatalf("reserve after release: %v", err)
	}
	if id, ok := r.Get("pod-a"); !ok || id != "2" {
		t.Fatalf("Get = %q, %v", id, ok)
	}
}
