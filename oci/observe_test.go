package oci

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestObserverSeesRuntimeInvocations(t *testing.T) {
	type call struct {
		op     string
		failed bool
	}
	for _, tc := range []struct {
		name, binary string
		observe      bool
		want         []call
	}{
		{"success", "/bin/true", true, []call{{"runtime_state", false}}},
		{"failure", "/bin/false", true, []call{{"runtime_state", true}}},
		{"no observer", "/bin/true", false, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []call
			cfg := Config{Name: "fake", Path: tc.binary, Root: t.TempDir(), ConmonPath: "/bin/false", RunDir: t.TempDir()}
			if tc.observe {
				cfg.Observe = func(op string, d time.Duration, err error) {
					if d <= 0 {
						t.Errorf("%s: duration %v", op, d)
					}
					calls = append(calls, call{op, err != nil})
				}
			}
			r, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			r.runtimeCmd(context.Background(), "c1", nil, "state", "c1")
			if !slices.Equal(calls, tc.want) {
				t.Errorf("observed %+v, want %+v", calls, tc.want)
			}
		})
	}
}

// Two runtimes of one process report to their own observers only.
func TestObserverIsPerRuntime(t *testing.T) {
	var a, b int
	newRT := func(n *int) *Runtime {
		r, err := New(Config{Name: "fake", Path: "/bin/true", Root: t.TempDir(), ConmonPath: "/bin/false", RunDir: t.TempDir(),
			Observe: func(string, time.Duration, error) { *n++ }})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	ra, _ := newRT(&a), newRT(&b)
	ra.runtimeCmd(context.Background(), "c1", nil, "state", "c1")
	if a != 1 || b != 0 {
		t.Errorf("observers saw %d and %d calls, want 1 and 0", a, b)
	}
}
