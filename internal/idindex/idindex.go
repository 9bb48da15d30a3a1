// Package idindex resolves unique id prefixes to full ids, as crictl users
// type them ("crictl stopp 3f2a").
package idindex

import (
	"fmt"
	"strings"
	"sync"

	"github.com/berth-dev/berth/errdefs"
)

// Index holds a set of ids.
type Index struct {
	mu  sync.RWMutex
	ids map[string]struct{}
}

// New returns an empty index.
func New() *Index { return &Index{ids: map[string]struct{}{}} }

// Add records id.
func (x *Index) Add(id string) {
	x.mu.Lock()
	x.ids[id] = struct{}{}
	x.mu.Unlock()
}

// Delete forgets id.
func (x *Index) Delete(id string) {
	x.mu.Lock()
	delete(x.ids, id)
	x.mu.Unlock()
}

// Get returns the one id that equals or starts with prefix. An empty prefix
// is invalid, no match is ErrNotFound and several matches are ambiguous
// (ErrInvalidArgument), each naming the prefix.
func (x *Index) Get(prefix string) (string, error) {
	if prefix == "" {
		return "", fmt.Errorf("empty id: %w", errdefs.ErrInvalidArgument)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if _, ok := x.ids[prefix]; ok {
		return prefix, nil
	}
	found := ""
	for id := range x.ids {
		if strings.HasPrefix(id, prefix) {
			if found != "" {
				return "", fmt.Errorf("id prefix %q matches more than one id: %w", prefix, errdefs.ErrInvalidArgument)
			}
			found = id
		}
	}
	if found == "" {
		return "", fmt.Errorf("id %q: %w", prefix, errdefs.ErrNotFound)
	}
	return found, nil
}
