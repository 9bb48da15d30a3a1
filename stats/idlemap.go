package stats

import "time"

// idleAfter is how long an entry of Rates, LayerCache or CgroupPaths may go
// unused before it is dropped: objects are removed without telling this
// package, and the kubelet asks for stats every 10 to 15 seconds.
const idleAfter = 5 * time.Minute

// sweepEvery is how often, at most, an idleMap looks for idle entries.
const sweepEvery = time.Minute

// idleMap holds values by id and drops each once it has gone unused for
// idleAfter. The zero value is empty and ready. Not safe for concurrent
// use: its owner's mutex guards it.
type idleMap[V any] struct {
	m     map[string]idleEntry[V]
	swept time.Time
}

type idleEntry[V any] struct {
	v    V
	used time.Time
}

// get sweeps, then returns key's value and marks it used at now.
func (m *idleMap[V]) get(key string, now time.Time) (V, bool) {
	m.sweep(now)
	e, ok := m.m[key]
	if ok {
		e.used = now
		m.m[key] = e
	}
	return e.v, ok
}

// put sets key's value, used at now.
func (m *idleMap[V]) put(key string, v V, now time.Time) {
	if m.m == nil {
		m.m = map[string]idleEntry[V]{}
	}
	m.m[key] = idleEntry[V]{v: v, used: now}
}

// forget drops key.
func (m *idleMap[V]) forget(key string) { delete(m.m, key) }

// len is the number of keys held.
func (m *idleMap[V]) len() int { return len(m.m) }

// sweep drops entries unused for idleAfter, at most once every sweepEvery.
func (m *idleMap[V]) sweep(now time.Time) {
	if now.Sub(m.swept) < sweepEvery {
		return
	}
	m.swept = now
	for k, e := range m.m {
		if now.Sub(e.used) > idleAfter {
			delete(m.m, k)
		}
	}
}
