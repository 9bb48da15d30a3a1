package oci

import (
	"sync/atomic"
	"time"
)

// Observer is told of every invocation of the OCI runtime or conmon: the
// operation ("runtime_start", "runtime_kill", ..., "conmon_create",
// "conmon_exec"), how long it took and its error (nil on success). It must
// be quick and must not block: it runs on the calling goroutine.
type Observer func(op string, d time.Duration, err error)

var observer atomic.Pointer[Observer]

// SetObserver installs fn for every Runtime of the process (nil removes
// it); the daemon's metrics use it. Without one nothing is recorded.
func SetObserver(fn Observer) {
	if fn == nil {
		observer.Store(nil)
		return
	}
	observer.Store(&fn)
}

// observe reports one invocation to the observer, if any.
func observe(op string, d time.Duration, err error) {
	if fn := observer.Load(); fn != nil {
		(*fn)(op, d, err)
	}
}
