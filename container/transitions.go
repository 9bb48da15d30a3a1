package container

import (
	"fmt"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/lifecycle"
)

// The named changes the server makes, each one Update.

// Checkpoint saves the record as it is now; creation uses it for the
// fields it has filled in so far.
func (c *Container) Checkpoint() error { return c.Update(func(*Status) error { return nil }) }

// SetPhase moves the container to phase p.
func (c *Container) SetPhase(p lifecycle.Phase) error {
	return c.Update(func(st *Status) error { st.Phase = p; return nil })
}

// BeginStart marks a created container as starting; anything else cannot
// start and fails with FailedPrecondition.
func (c *Container) BeginStart() error {
	return c.Update(func(st *Status) error {
		if st.State != StateCreated || st.Starting {
			what := string(st.State)
			if st.Starting {
				what = "starting"
			}
			return fmt.Errorf("container %s is %s, only a created container can start: %w", c.ID, what, errdefs.ErrFailedPrecondition)
		}
		st.Starting = true
		return nil
	})
}

// Started records that the runtime's start succeeded; at is when it was
// asked to start. The runtime's word stands even if the container has
// already exited: it ran.
func (c *Container) Started(at time.Time) error {
	return c.Update(func(st *Status) error {
		st.Starting = false
		switch st.State {
		case StateCreated:
			st.State, st.StartedAt = StateRunning, at
		case StateExited:
			if st.StartedAt.IsZero() {
				st.StartedAt = minTime(at, st.Exit.FinishedAt)
			}
		}
		return nil
	})
}

// AbortStart clears the starting mark after a failed start.
func (c *Container) AbortStart() error {
	return c.Update(func(st *Status) error {
		if !st.Starting {
			return lifecycle.Unchanged
		}
		st.Starting = false
		return nil
	})
}

// Exited records how the container ended. The first report wins; a report
// that comes while a start is under way is left to the start, which looks
// again once the container is running; a removed container takes none.
// It reports whether this call recorded the exit.
func (c *Container) Exited(e Exit) (recorded bool, err error) {
	err = c.Update(func(st *Status) error {
		if st.State == StateExited || st.Starting || st.Phase == lifecycle.Removed {
			return lifecycle.Unchanged
		}
		// conmon's exit time is the exit file's mtime, from the kernel's
		// coarse clock: it may read a tick before a start that came first.
		if e.FinishedAt.Before(st.StartedAt) {
			e.FinishedAt = st.StartedAt
		}
		st.State, st.Exit = StateExited, e
		recorded = true
		return nil
	})
	return recorded, err
}

// SetResources records the limits last applied by UpdateContainerResources.
func (c *Container) SetResources(r *runtime.LinuxContainerResources) error {
	return c.Update(func(st *Status) error { st.Resources = r; return nil })
}

// ReleasedImages records that a removal released the image volume mounts.
func (c *Container) ReleasedImages() error {
	return c.Update(func(st *Status) error { st.ImagesReleased = true; return nil })
}

func minTime(a, b time.Time) time.Time {
	if b.IsZero() || a.Before(b) {
		return a
	}
	return b
}
