// Package objstore indexes Berth's objects (sandboxes, containers) by id and
// unique id prefix. Each kind has one store; nothing else touches its map.
package objstore

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/idindex"
)

// Object is what a store holds.
type Object interface {
	comparable
	GetID() string
	Created() time.Time
}

// Store indexes objects of one kind.
type Store[T Object] struct {
	kind  string // "pod sandbox", "container": named in errors
	mu    sync.RWMutex
	byID  map[string]T
	index *idindex.Index
}

// New returns an empty store of kind.
func New[T Object](kind string) *Store[T] {
	return &Store[T]{kind: kind, byID: map[string]T{}, index: idindex.New()}
}

// Add records o.
func (st *Store[T]) Add(o T) {
	st.mu.Lock()
	st.byID[o.GetID()] = o
	st.mu.Unlock()
	st.index.Add(o.GetID())
}

// Delete forgets the object with id.
func (st *Store[T]) Delete(id string) {
	st.index.Delete(id)
	st.mu.Lock()
	delete(st.byID, id)
	st.mu.Unlock()
}

// Get returns the object whose id is or starts with idOrPrefix; errors wrap
// errdefs.ErrNotFound or ErrInvalidArgument and name the kind and id.
func (st *Store[T]) Get(idOrPrefix string) (T, error) {
	var zero T
	id, err := st.index.Get(idOrPrefix)
	if err != nil {
		return zero, fmt.Errorf("%s: %w", st.kind, err)
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	o, ok := st.byID[id]
	if !ok {
		return zero, fmt.Errorf("%s %q: %w", st.kind, idOrPrefix, errdefs.ErrNotFound)
	}
	return o, nil
}

// List returns every object, oldest first.
func (st *Store[T]) List() []T {
	st.mu.RLock()
	out := make([]T, 0, len(st.byID))
	for _, o := range st.byID {
		out = append(out, o)
	}
	st.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created().Before(out[j].Created()) })
	return out
}
