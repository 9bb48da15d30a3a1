package stats

import (
	"sync"
	"time"
)

// CgroupPaths remembers the cgroup path of each container, read once from
// its bundle's runtime spec (the spec is what the runtime was told, so it
// is right whichever cgroup manager made it). Safe for concurrent use.
type CgroupPaths struct {
	mu    sync.Mutex
	paths map[string]pathEntry
	swept time.Time
}

type pathEntry struct {
	path string
	used time.Time
}

// NewCgroupPaths returns an empty cache.
func NewCgroupPaths() *CgroupPaths { return &CgroupPaths{paths: map[string]pathEntry{}} }

// Get returns the cgroup path of container id whose bundle is bundle.
func (c *CgroupPaths) Get(id, bundle string) (string, error) {
	now := time.Now()
	c.mu.Lock()
	c.sweep(now)
	e, ok := c.paths[id]
	if ok {
		e.used = now
		c.paths[id] = e
	}
	c.mu.Unlock()
	if ok {
		return e.path, nil
	}
	path, err := SpecCgroupPath(bundle)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.paths[id] = pathEntry{path: path, used: now}
	c.mu.Unlock()
	return path, nil
}

// Forget drops id's path.
func (c *CgroupPaths) Forget(id string) {
	c.mu.Lock()
	delete(c.paths, id)
	c.mu.Unlock()
}

func (c *CgroupPaths) sweep(now time.Time) {
	if now.Sub(c.swept) < time.Minute {
		return
	}
	c.swept = now
	for id, e := range c.paths {
		if now.Sub(e.used) > idleAfter {
			delete(c.paths, id)
		}
	}
}
