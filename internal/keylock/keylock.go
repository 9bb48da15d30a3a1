// Package keylock serializes work on one object (a pod, a container) while
// letting work on different objects run in parallel.
package keylock

import "sync"

type entry struct {
	mu   sync.Mutex
	refs int
}

// Locks is a set of mutexes keyed by id; entries live only while in use.
type Locks struct {
	mu sync.Mutex
	m  map[string]*entry
}

// New returns an empty set.
func New() *Locks { return &Locks{m: map[string]*entry{}} }

// Lock takes the lock of key and returns its unlock.
func (l *Locks) Lock(key string) (unlock func()) {
	l.mu.Lock()
	e := l.m[key]
	if e == nil {
		e = &entry{}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}
