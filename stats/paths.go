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
	paths idleMap[string]
}

// NewCgroupPaths returns an empty cache.
func NewCgroupPaths() *CgroupPaths { return &CgroupPaths{} }

// Get returns the cgroup path of container id whose bundle is bundle.
func (c *CgroupPaths) Get(id, bundle string) (string, error) {
	now := time.Now()
	c.mu.Lock()
	path, ok := c.paths.get(id, now)
	c.mu.Unlock()
	if ok {
		return path, nil
	}
	path, err := SpecCgroupPath(bundle)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.paths.put(id, path, now)
	c.mu.Unlock()
	return path, nil
}

// Lookup returns the cgroup path of container id if it is known, reading
// nothing.
func (c *CgroupPaths) Lookup(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths.get(id, time.Now())
}

// Forget drops id's path.
func (c *CgroupPaths) Forget(id string) {
	c.mu.Lock()
	c.paths.forget(id)
	c.mu.Unlock()
}
