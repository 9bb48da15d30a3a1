// Package undo records how to release each resource right after it is
// acquired, so a multi-step create that fails half-way releases everything
// it made, in reverse order, and leaves nothing half-made behind.
package undo

import (
	"log/slog"
)

type step struct {
	what string
	fn   func() error
}

// Stack is the list of undos of one operation. The zero value is ready.
type Stack struct {
	steps []step
	done  bool
}

// Add registers the undo of the resource just acquired.
func (s *Stack) Add(what string, fn func() error) {
	s.steps = append(s.steps, step{what, fn})
}

// Commit keeps everything: the operation succeeded.
func (s *Stack) Commit() { s.done = true }

// Run releases, in reverse order, everything acquired so far unless the
// operation committed. Meant for a defer. Each failure is logged, not
// returned: the caller is already returning the error that caused the undo.
func (s *Stack) Run(log *slog.Logger) {
	if s.done {
		return
	}
	s.done = true
	for i := len(s.steps) - 1; i >= 0; i-- {
		st := s.steps[i]
		if err := st.fn(); err != nil {
			log.Warn("undo failed", "step", st.what, "error", err)
		} else {
			log.Debug("undone", "step", st.what)
		}
	}
}
