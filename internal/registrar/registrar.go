// Package registrar reserves unique names (pod and container names) for the
// ids that hold them, so two objects can never share a name.
package registrar

import (
	"fmt"
	"sync"

	"github.com/berth-dev/berth/errdefs"
)

// Registrar maps names to the id holding each.
type Registrar struct {
	mu     sync.Mutex
	byName map[string]string
}

// New returns an empty registrar.
func New() *Registrar { return &Registrar{byName: map[string]string{}} }

// Reserve gives name to id. Reserving a name again for the id that holds it
// succeeds; a name held by another id fails with ErrAlreadyExists naming it.
func (r *Registrar) Reserve(name, id string) error {
	if name == "" || id == "" {
		return fmt.Errorf("reserve name %q for %q: %w", name, id, errdefs.ErrInvalidArgument)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if holder, ok := r.byName[name]; ok && holder != id {
		return fmt.Errorf("name %q is reserved for %s: %w", name, holder, errdefs.ErrAlreadyExists)
	}
	r.byName[name] = id
	return nil
}

// Release frees name if id holds it. A late release by an object that lost
// the name must not free it under its new holder; releasing a free name is a
// no-op.
func (r *Registrar) Release(name, id string) {
	r.mu.Lock()
	if r.byName[name] == id {
		delete(r.byName, name)
	}
	r.mu.Unlock()
}

// Get returns the id holding name.
func (r *Registrar) Get(name string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.byName[name]
	return id, ok
}
