package stats

import (
	"testing"
	"time"
)

func TestIdleMap(t *testing.T) {
	type step struct {
		op   string // put, get or forget
		key  string
		at   time.Duration // since the first step
		want bool          // get: key is found
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"kept while used within idleAfter", []step{
			{op: "put", key: "a"},
			{op: "get", key: "a", at: idleAfter, want: true},
		}},
		{"dropped once unused longer than idleAfter", []step{
			{op: "put", key: "a"},
			{op: "get", key: "a", at: idleAfter + time.Second},
		}},
		{"a get keeps it", []step{
			{op: "put", key: "a"},
			{op: "get", key: "a", at: 4 * time.Minute, want: true},
			{op: "get", key: "a", at: 8 * time.Minute, want: true},
		}},
		{"swept at most once every sweepEvery", []step{
			{op: "put", key: "a"},
			{op: "get", key: "b", at: idleAfter - time.Second},
			{op: "get", key: "a", at: idleAfter + sweepEvery/2, want: true},
		}},
		{"a sweep drops only idle keys", []step{
			{op: "put", key: "a"},
			{op: "put", key: "b", at: 4 * time.Minute},
			{op: "get", key: "b", at: 6 * time.Minute, want: true},
			{op: "get", key: "a", at: 6 * time.Minute},
		}},
		{"forgotten", []step{
			{op: "put", key: "a"},
			{op: "forget", key: "a"},
			{op: "get", key: "a"},
		}},
		{"never put", []step{
			{op: "get", key: "a"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m idleMap[int]
			t0 := time.Now()
			for i, s := range tc.steps {
				now := t0.Add(s.at)
				switch s.op {
				case "put":
					m.put(s.key, i, now)
				case "forget":
					m.forget(s.key)
				case "get":
					if _, ok := m.get(s.key, now); ok != s.want {
						t.Errorf("step %d: get(%s) at %v found %v; want %v", i, s.key, s.at, ok, s.want)
					}
				}
			}
		})
	}
}
