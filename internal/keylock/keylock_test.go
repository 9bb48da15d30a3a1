package keylock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestLockSerializesOneKeyAndForgetsIdleKeys(t *testing.T) {
	l := New()
	var wg sync.WaitGroup
	// Pre-made counters: the map is only read, each counter is written under its key's lock.
	counts := map[string]*int{"a": new(int), "b": new(int)}
	for i := 0; i < 100; i++ {
		for _, k := range []string{"a", "b"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				unlock := l.Lock(k)
				*counts[k]++ // a data race (caught by -race) unless the lock of k serializes
				unlock()
			}()
		}
	}
	wg.Wait()
	if *counts["a"] != 100 || *counts["b"] != 100 {
		t.Errorf("counts = %d, %d; want 100 each", *counts["a"], *counts["b"])
	}
	if len(l.m) != 0 {
		t.Errorf("%d idle entries kept", len(l.m))
	}
}

func TestLockContext(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancelExpired := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancelExpired()
	for _, tc := range []struct {
		name string
		held bool // another caller holds the key
		ctx  context.Context
		want error
	}{
		{name: "free key", ctx: context.Background()},
		{name: "held key, context canceled", held: true, ctx: canceled, want: context.Canceled},
		{name: "held key, deadline passes", held: true, ctx: expired, want: context.DeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := New()
			if tc.held {
				defer l.Lock("k")()
			}
			unlock, err := l.LockContext(tc.ctx, "k")
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v; want %v", err, tc.want)
			}
			if err != nil {
				if unlock != nil {
					t.Error("an unlock returned with an error")
				}
				if got := l.Len(); got != 1 {
					t.Errorf("Len = %d after giving up; want 1, the holder", got)
				}
				return
			}
			unlock()
			if got := l.Len(); got != 0 {
				t.Errorf("Len = %d after unlock; want 0", got)
			}
		})
	}
}
