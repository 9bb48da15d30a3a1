package network

import (
	"context"
	"sync"
)

// podLocks serializes calls for one pod id and lets different ids run in
// parallel. Entries live only while someone holds or waits for them.
type podLocks struct {
	mu sync.Mutex
	m  map[string]*podLock
}

type podLock struct {
	ch   chan struct{} // holds one token while locked
	refs int
}

// lock waits for id's lock or for ctx to end; the returned func unlocks.
func (l *podLocks) lock(ctx context.Context, id string) (func(), error) {
	l.mu.Lock()
	pl := l.m[id]
	if pl == nil {
		pl = &podLock{ch: make(chan struct{}, 1)}
		l.m[id] = pl
	}
	pl.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		pl.refs--
		if pl.refs == 0 {
			delete(l.m, id)
		}
		l.mu.Unlock()
	}
	select {
	case pl.ch <- struct{}{}:
		return func() { <-pl.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
