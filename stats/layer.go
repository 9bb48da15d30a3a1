package stats

import (
	"sync"
	"time"
)

// LayerTTL is how long a measured writable layer usage is reused: walking a
// layer costs a stat per file, and the kubelet asks every 10 to 15 seconds.
const LayerTTL = 5 * time.Second

// LayerUsage is the disk use of a container's writable layer.
type LayerUsage struct {
	// Time is when the layer was measured.
	Time   time.Time
	Bytes  uint64
	Inodes uint64
}

// WritableLayers measures containers' writable layers; storage's
// RootfsService is one.
type WritableLayers interface {
	WritableLayerUsage(id string) (bytes, inodes uint64, err error)
}

// WritableLayerUsage measures the writable layer of container id now.
func WritableLayerUsage(layers WritableLayers, id string) (LayerUsage, error) {
	bytes, inodes, err := layers.WritableLayerUsage(id)
	if err != nil {
		return LayerUsage{}, err
	}
	return LayerUsage{Time: time.Now(), Bytes: bytes, Inodes: inodes}, nil
}

// LayerMaxAge is how old a cached usage may be and still be returned while
// a new measurement runs in the background: longer than the kubelet's
// period, so that its calls find one and never wait for a walk of every
// layer (500 of them take tens of milliseconds), as containerd's snapshot
// usages are kept by a background loop.
const LayerMaxAge = time.Minute

// LayerCache keeps measured layer usages. One younger than the TTL is
// returned as it is; one older but younger than the maximum age is
// returned too, and a new measurement starts in the background (one at a
// time), for the next call; without either, the call measures. Concurrent
// requests for one layer share one measurement; failed measurements are
// not cached. Safe for concurrent use.
type LayerCache struct {
	ttl, maxAge time.Duration
	mu          sync.Mutex
	entries     idleMap[*layerEntry]
	// background holds a token while a background measurement runs.
	background chan struct{}
}

type layerEntry struct {
	mu         sync.Mutex // held while measuring in the call
	usage      LayerUsage
	refreshing bool // a background measurement is under way
}

// NewLayerCache returns an empty cache whose entries are fresh for ttl and
// returned while a new one is measured until maxAge.
func NewLayerCache(ttl, maxAge time.Duration) *LayerCache {
	return &LayerCache{ttl: ttl, maxAge: max(ttl, maxAge), background: make(chan struct{}, 1)}
}

// Get returns id's usage, by the rules of LayerCache.
func (c *LayerCache) Get(id string, measure func() (LayerUsage, error)) (LayerUsage, error) {
	now := time.Now()
	c.mu.Lock()
	e, ok := c.entries.get(id, now)
	if !ok {
		e = &layerEntry{}
		c.entries.put(id, e, now)
	}
	c.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.usage.Time.IsZero() {
		age := now.Sub(e.usage.Time)
		if age < c.ttl {
			return e.usage, nil
		}
		if age < c.maxAge {
			if !e.refreshing {
				e.refreshing = true
				go c.refresh(e, measure)
			}
			return e.usage, nil
		}
	}
	u, err := measure()
	if err != nil {
		return LayerUsage{}, err
	}
	e.usage = u
	return u, nil
}

// refresh measures e again in the background.
func (c *LayerCache) refresh(e *layerEntry, measure func() (LayerUsage, error)) {
	c.background <- struct{}{}
	u, err := measure()
	<-c.background
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refreshing = false
	if err == nil && u.Time.After(e.usage.Time) {
		e.usage = u
	}
}

// Forget drops id's entry.
func (c *LayerCache) Forget(id string) {
	c.mu.Lock()
	c.entries.forget(id)
	c.mu.Unlock()
}
