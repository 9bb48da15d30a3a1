package sandbox

import (
	"sort"
	"sync"

	"github.com/berth-dev/berth/internal/idindex"
)

// Store indexes sandboxes by id (and unique id prefix).
type Store struct {
	mu    sync.RWMutex
	byID  map[string]*Sandbox
	index *idindex.Index
}

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{byID: map[string]*Sandbox{}, index: idindex.New()}
}

// Add records sb.
func (st *Store) Add(sb *Sandbox) {
	st.mu.Lock()
	st.byID[sb.ID] = sb
	st.mu.Unlock()
	st.index.Add(sb.ID)
}

// Delete forgets the sandbox with id.
func (st *Store) Delete(id string) {
	st.index.Delete(id)
	st.mu.Lock()
	delete(st.byID, id)
	st.mu.Unlock()
}

// Get returns the sandbox whose id is or starts with idOrPrefix.
func (st *Store) Get(idOrPrefix string) (*Sandbox, error) {
	id, err := st.index.Get(idOrPrefix)
	if err != nil {
		return nil, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	sb, ok := st.byID[id]
	if !ok {
		return nil, ErrNotFound(idOrPrefix)
	}
	return sb, nil
}

// List returns every sandbox, oldest first.
func (st *Store) List() []*Sandbox {
	st.mu.RLock()
	out := make([]*Sandbox, 0, len(st.byID))
	for _, sb := range st.byID {
		out = append(out, sb)
	}
	st.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}
