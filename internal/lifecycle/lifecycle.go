// Package lifecycle is what pods and containers share about their status:
// the phase of their creation and removal, and Box, the one way a status
// changes. A Box runs one update at a time; each is checked, saved and only
// then made visible, and its observer hears of it before the next update
// begins, so events leave in the order the changes happened. containerd's
// store/container UpdateSync is the model.
package lifecycle

import (
	"errors"
	"fmt"
	"sync"

	"github.com/berth-dev/berth/errdefs"
)

// Phase says how far an object's creation or removal got; start-up recovery
// finishes or undoes whatever a crash interrupted.
type Phase string

const (
	// Creating: the create call has begun; recovery undoes it.
	Creating Phase = "creating"
	// Created: the object exists whole, whatever its state.
	Created Phase = "created"
	// Removing: the remove call has begun; recovery finishes it.
	Removing Phase = "removing"
	// Removed: the record is gone; no update can follow.
	Removed Phase = "removed"
)

// phaseNext is the table of legal phase changes; staying put is always legal
// except for a removed object, which takes no more updates at all.
var phaseNext = map[Phase][]Phase{
	Creating: {Created, Removing, Removed},
	Created:  {Removing},
	Removing: {Removed},
}

// CheckPhase returns nil if from may become to, else an error that names
// both and wraps errdefs.ErrFailedPrecondition.
func CheckPhase(kind, id string, from, to Phase) error {
	if from == to && from != Removed {
		return nil
	}
	for _, p := range phaseNext[from] {
		if p == to {
			return nil
		}
	}
	return &TransitionError{Kind: kind, ID: id, What: "phase", From: string(from), To: string(to)}
}

// TransitionError is an illegal change of state or phase.
type TransitionError struct {
	Kind, ID, What string // "container", its id, "state" or "phase"
	From, To       string
}

func (e *TransitionError) Error() string {
	if e.From == string(Removed) {
		return fmt.Sprintf("%s %s is removed", e.Kind, e.ID)
	}
	return fmt.Sprintf("%s %s cannot go from %s %s to %s", e.Kind, e.ID, e.What, e.From, e.To)
}

func (e *TransitionError) Unwrap() error { return errdefs.ErrFailedPrecondition }

// Unchanged, returned by an update function, ends the update without a
// save or a notification: the status already says what the caller wanted.
var Unchanged = errors.New("status unchanged")

// Hooks are what a Box does with each change: Check vets it against the
// transition table, Save persists it, Changed (optional) hears of it once
// it is visible. Save and Changed run with the Box's update lock held and
// must not update the same Box.
type Hooks[S any] struct {
	Check   func(old, next S) error
	Save    func(old, next S) error
	Changed func(old, next S)
}

// Box holds one object's status S. S is copied by value: an update function
// must replace, never modify in place, anything S points to.
type Box[S any] struct {
	update sync.Mutex // one update at a time, through its save and notification
	mu     sync.RWMutex
	s      S
	hooks  Hooks[S]
}

// NewBox returns a box holding s.
func NewBox[S any](s S, hooks Hooks[S]) *Box[S] {
	return &Box[S]{s: s, hooks: hooks}
}

// Get returns the status as last committed.
func (b *Box[S]) Get() S {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.s
}

// Update runs fn on a copy of the status. If fn succeeds and the change is
// legal, the copy is saved, made visible and reported, in that order. An
// error from fn, Check or Save leaves the status as it was and is returned;
// Unchanged from fn is a success that changes nothing.
func (b *Box[S]) Update(fn func(*S) error) error {
	b.update.Lock()
	defer b.update.Unlock()
	old := b.Get()
	next := old
	if err := fn(&next); err != nil {
		if errors.Is(err, Unchanged) {
			return nil
		}
		return err
	}
	if err := b.hooks.Check(old, next); err != nil {
		return err
	}
	if err := b.hooks.Save(old, next); err != nil {
		return err
	}
	b.mu.Lock()
	b.s = next
	b.mu.Unlock()
	if b.hooks.Changed != nil {
		b.hooks.Changed(old, next)
	}
	return nil
}
