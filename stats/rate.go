package stats

import (
	"sync"
	"time"
)

// Rates turns cumulative CPU usage into a usage rate (nano-cores) by
// keeping each object's previous sample. Safe for concurrent use.
type Rates struct {
	mu   sync.Mutex
	last idleMap[cpuSample]
}

type cpuSample struct {
	usage uint64
	at    time.Time
}

// NewRates returns an empty tracker.
func NewRates() *Rates { return &Rates{} }

// Update records usage (cumulative core-nanoseconds) of key read at at, and
// returns the rate since the key's previous sample. ok is false for the
// first sample of a key, and when the previous sample is not older or its
// usage not lower (a counter reset, or a cgroup made anew under the id).
func (r *Rates) Update(key string, usage uint64, at time.Time) (nanoCores uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	prev, seen := r.last.get(key, now)
	r.last.put(key, cpuSample{usage: usage, at: at}, now)
	if !seen {
		return 0, false
	}
	return Rate(prev.usage, prev.at, usage, at)
}

// Forget drops key's sample.
func (r *Rates) Forget(key string) {
	r.mu.Lock()
	r.last.forget(key)
	r.mu.Unlock()
}

// Len is the number of keys tracked.
func (r *Rates) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last.len()
}

// Rate is the average CPU usage in nano-cores (core-nanoseconds per second)
// between two cumulative samples; ok is false when they cannot give one.
func Rate(prevUsage uint64, prevAt time.Time, usage uint64, at time.Time) (nanoCores uint64, ok bool) {
	dt := at.Sub(prevAt)
	if dt <= 0 || usage < prevUsage {
		return 0, false
	}
	// In float64: the product in integers overflows after 18 s of CPU.
	return uint64(float64(usage-prevUsage) / float64(dt) * float64(time.Second)), true
}
