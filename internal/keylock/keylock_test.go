package keylock

import (
	"sync"
	"testing"
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
