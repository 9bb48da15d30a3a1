// Package keylock serializes work on one object (a pod, a container) while
// letting work on different objects run in parallel.
package keylock

import (
	"context"
	"sync"
)

// entry is one key's lock: a channel that holds one token while locked, so
// a waiter can give up when its context ends.
type entry struct {
	ch   chan struct{}
	refs int // holders and waiters
}

// Locks is a set of locks keyed by id; entries live only while someone
// holds or waits for them.
type Locks struct {
	mu sync.Mutex
	m  map[string]*entry
}

// New returns an empty set.
func New() *Locks { return &Locks{m: map[string]*entry{}} }

// Lock takes the lock of key and returns its unlock.
func (l *Locks) Lock(key string) (unlock func()) {
	unlock, _ = l.LockContext(context.Background(), key) // Background never ends
	return unlock
}

// LockContext waits for the lock of key or for ctx to end; on success it
// returns the unlock, otherwise ctx's error.
func (l *Locks) LockContext(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	e := l.m[key]
	if e == nil {
		e = &entry{ch: make(chan struct{}, 1)}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// Len is how many keys are held or waited for; idle keys are not kept.
func (l *Locks) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.m)
}
