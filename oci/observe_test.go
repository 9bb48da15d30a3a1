package oci

import (
	"context"
	"testing"
	"time"
)

func TestObserverSeesRuntimeInvocations(t *testing.T) {
	type call struct {
		op     string
		failed bool
	}
	var calls []call
	SetObserver(func(op string, d time.Duration, err error) {
		if d <= 0 {
			t.Errorf("%s: duration %v", op, d)
		}
		calls = append(calls, call{op, err != nil})
	})
	t.Cleanup(func() { SetObserver(nil) })

	for _, tc := range []struct {
		name, binary string
		want         call
	}{
		{"success", "/bin/true", call{"runtime_state", false}},
		{"failure", "/bin/false", call{"runtime_state", true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls = nil
			r, err := New(Config{Name: "fake", Path: tc.binary, Root: t.TempDir(), ConmonPath: "/bin/false", RunDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			r.runtimeCmd(context.Background(), "c1", nil, "state", "c1")
			if len(calls) != 1 || calls[0] != tc.want {
				t.Errorf("observed %+v, want [%+v]", calls, tc.want)
			}
		})
	}

	SetObserver(nil)
	calls = nil
	r, _ := New(Config{Name: "fake", Path: "/bin/true", Root: t.TempDir(), ConmonPath: "/bin/false", RunDir: t.TempDir()})
	r.runtimeCmd(context.Background(), "c1", nil, "state", "c1")
	if len(calls) != 0 {
		t.Errorf("observed %v after SetObserver(nil)", calls)
	}
}
