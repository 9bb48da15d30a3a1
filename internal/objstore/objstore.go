// Package objstore indexes Berth's objects (sandboxes, containers) by id and
// unique id prefix. Each kind has one store; nothing else touches its map.
package objstore

import (
	"fmt"
	"slices"
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
	kind string // "pod sandbox", "container": named in errors
	mu   sync.RWMutex
	byID map[string]T
	// order holds the objects oldest first, so that List, which the
	// kubelet calls every second, costs a copy and not a sort.
	order []T
	index *idindex.Index
}

// New returns an empty store of kind.
func New[T Object](kind string) *Store[T] {
	return &Store[T]{kind: kind, byID: map[string]T{}, index: idindex.New()}
}

// Add records o; an object of the same id is replaced.
func (st *Store[T]) Add(o T) {
	st.mu.Lock()
	if old, ok := st.byID[o.GetID()]; ok {
		st.removeLocked(old)
	}
	st.byID[o.GetID()] = o
	// After every object created no later: new objects append.
	at := o.Created()
	i := sort.Search(len(st.order), func(i int) bool { return st.order[i].Created().After(at) })
	st.order = slices.Insert(st.order, i, o)
	st.mu.Unlock()
	st.index.Add(o.GetID())
}

// Delete forgets the object with id.
func (st *Store[T]) Delete(id string) {
	st.index.Delete(id)
	st.mu.Lock()
	if o, ok := st.byID[id]; ok {
		st.removeLocked(o)
		delete(st.byID, id)
	}
	st.mu.Unlock()
}

func (st *Store[T]) removeLocked(o T) {
	if i := slices.Index(st.order, o); i >= 0 {
		st.order = slices.Delete(st.order, i, i+1)
	}
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
	defer st.mu.RUnlock()
	return slices.Clone(st.order)
}
