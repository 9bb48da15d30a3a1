package oci

import "time"

// Observer is told of every invocation of the OCI runtime or conmon: the
// operation ("runtime_start", "runtime_kill", ..., "conmon_create",
// "conmon_exec"), how long it took and its error (nil on success). It must
// be quick and must not block: it runs on the calling goroutine.
type Observer func(op string, d time.Duration, err error)

// observe reports one invocation to the runtime's observer, if it has one
// (Config.Observe).
func (r *Runtime) observe(op string, d time.Duration, err error) {
	if r.cfg.Observe != nil {
		r.cfg.Observe(op, d, err)
	}
}
