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

// LayerCache keeps measured layer usages for LayerTTL; concurrent requests
// for one layer share one measurement. Safe for concurrent use.
type LayerCache struct {
	ttl     time.Duration
	mu      sync.Mutex
	entries idleMap[*layerEntry]
}

type layerEntry struct {
	mu    sync.Mutex // held while measuring
	usage LayerUsage
}

// NewLayerCache returns an empty cache whose entries live ttl.
func NewLayerCache(ttl time.Duration) *LayerCache { return &LayerCache{ttl: ttl} }

// Get returns id's usage, calling measure when the cached one is missing or
// older than the TTL. Failed measurements are not cached.
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
	if !e.usage.Time.IsZero() && now.Sub(e.usage.Time) < c.ttl {
		return e.usage, nil
	}
	u, err := measure()
	if err != nil {
		return LayerUsage{}, err
	}
	e.usage = u
	return u, nil
}

// Forget drops id's entry.
func (c *LayerCache) Forget(id string) {
	c.mu.Lock()
	c.entries.forget(id)
	c.mu.Unlock()
}
