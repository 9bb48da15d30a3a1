package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/internal/crashpoint"
	"github.com/berth-dev/berth/internal/lifecycle"
)

// RemoveContainer kills the container if it runs and removes it with all it
// holds. Removing an unknown container succeeds.
//
// The call returns once the container's record is marked removing (saved
// durably) and the container is gone from the store and its name free;
// what it holds (the runtime's container and conmon, image volumes, the
// root filesystem, volume dirs, the record) is released in the background,
// as containerd does. A crash before that is done is finished by start-up
// recovery, which removes every container whose record says removing.
func (s *Server) RemoveContainer(ctx context.Context, req *runtime.RemoveContainerRequest) (*runtime.RemoveContainerResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if errors.Is(err, errdefs.ErrNotFound) {
		s.log.Debug("remove of unknown container", "container", req.GetContainerId())
		return &runtime.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	marked, err := s.markRemoved(ctx, c)
	if err != nil {
		return nil, err
	}
	if marked {
		s.removals.finishLater(s, c)
	}
	return &runtime.RemoveContainerResponse{}, nil
}

// removeContainer releases everything of c before it returns, and only
// then lets c go from the store: a failure leaves it listed, marked
// removing, for the caller's retry. Every step is idempotent, so start-up
// recovery, a pod's removal and the removal of an abandoned creation use
// it, to finish a removal or undo a creation.
func (s *Server) removeContainer(ctx context.Context, c *container.Container) error {
	unlock := s.ctrLocks.Lock(c.ID)
	defer unlock()
	if c.Status().Phase == lifecycle.Removed {
		return nil // a concurrent remove finished it
	}
	if s.removals.has(c.ID) {
		// RemoveContainer returned already; this finishes its release.
		return s.finishRemoveLocked(ctx, c)
	}
	// Marked first: a crash from here on is finished by recovery.
	if err := c.SetPhase(lifecycle.Removing); err != nil {
		return err
	}
	if err := s.stopContainerLocked(ctx, c, 0); err != nil {
		return err
	}
	// While the bundle still says what the container was.
	s.nriRemoveContainer(ctx, c)
	if err := s.finishRemoveLocked(ctx, c); err != nil {
		return err
	}
	s.forget(ctx, c)
	return nil
}

// markRemoved is the part of RemoveContainer its caller waits for: the
// record marked removing, the container stopped, then gone from the store
// and its name free, its release pending until finishRemove. It reports
// whether this call marked it (false: an earlier removal did).
func (s *Server) markRemoved(ctx context.Context, c *container.Container) (bool, error) {
	unlock := s.ctrLocks.Lock(c.ID)
	defer unlock()
	if c.Status().Phase == lifecycle.Removed || s.removals.has(c.ID) {
		return false, nil
	}
	// Marked first, and durably: from here on a crash, even of the node,
	// is finished by recovery.
	if err := c.SetPhase(lifecycle.Removing); err != nil {
		return false, err
	}
	if err := s.stopContainerLocked(ctx, c, 0); err != nil {
		return false, err
	}
	s.removals.add(c)
	s.forget(ctx, c)
	crashpoint.Hit("RemoveContainer:marked")
	return true, nil
}

// forget makes removed container c gone to the CRI: from the store, its
// name free, its deletion announced.
func (s *Server) forget(ctx context.Context, c *container.Container) {
	s.nriRemoveContainer(ctx, c)
	s.containers.Delete(c.ID)
	s.ctrNames.Release(c.Name, c.ID)
	s.log.Info("container removed", "container", c.ID, "name", c.Name)
	s.emit(runtime.ContainerEventType_CONTAINER_DELETED_EVENT, c)
}

// finishRemove releases what c, whose removal is pending, holds and deletes
// its record. Whoever calls it first does the work; a concurrent caller
// waits for it and then finds nothing to do, so at most one release of c
// runs at a time: the background finisher, a pod's removal or a create of
// the same name taking over, recovery.
func (s *Server) finishRemove(ctx context.Context, c *container.Container) error {
	unlock, err := s.ctrLocks.LockContext(ctx, c.ID)
	if err != nil {
		return fmt.Errorf("remove container %s: %w", c.ID, err)
	}
	defer unlock()
	if c.Status().Phase == lifecycle.Removed {
		return nil // finished by whoever held the lock
	}
	return s.finishRemoveLocked(ctx, c)
}

// finishRemoveLocked releases what c holds, in the reverse order of its
// creation, then deletes its record; c's lock is held.
func (s *Server) finishRemoveLocked(ctx context.Context, c *container.Container) error {
	steps := newStepTimes(time.Now())
	if err := s.releaseContainer(ctx, c, steps); err != nil {
		return err
	}
	if err := c.SetPhase(lifecycle.Removed); err != nil {
		return err
	}
	steps.done("record_delete")
	s.removals.done(c.ID)
	s.log.Debug("container released", append([]any{"container", c.ID}, steps.attrs()...)...)
	return nil
}

// releaseContainer gives back what c holds, all but its record.
func (s *Server) releaseContainer(ctx context.Context, c *container.Container, steps *stepTimes) error {
	if err := s.runtimeFor(c.Handler).DeleteContainer(ctx, s.ociContainer(c)); err != nil {
		return fmt.Errorf("delete container %s: %w", c.ID, err)
	}
	steps.done("runtime_delete")
	crashpoint.Hit("RemoveContainer:runtime")
	// The reverse of creation: image volumes were mounted after the rootfs.
	if len(c.ImageMounts) > 0 && !c.Status().ImagesReleased {
		for _, id := range c.ImageMounts {
			if err := s.images.UnmountImage(id); err != nil {
				return err
			}
		}
		if err := c.ReleasedImages(); err != nil {
			return err
		}
	}
	steps.done("image_volumes")
	if err := s.rootfs.RemoveRootfs(c.ID); err != nil {
		return err
	}
	steps.done("rootfs_remove")
	if err := os.RemoveAll(filepath.Join(s.config.Runtime.StateDir, "volumes", c.ID)); err != nil {
		return fmt.Errorf("remove volumes of container %s: %w", c.ID, err)
	}
	return nil
}

// takeOverRemovals finishes, before the caller goes on, the pending
// removals of the containers keep selects, and returns the first error.
// A finisher under way is waited for; one that failed or has not begun is
// done here.
func (s *Server) takeOverRemovals(ctx context.Context, keep func(*container.Container) bool) error {
	var errs []error
	for _, c := range s.removals.list(keep) {
		errs = append(errs, s.finishRemove(ctx, c))
	}
	return errors.Join(errs...)
}

// Shutdown lets the background removals finish until ctx ends, then
// abandons the rest between two of their steps: each such container's
// record still says removing, and the next start-up finishes it.
func (s *Server) Shutdown(ctx context.Context) {
	s.removals.init()
	idle := make(chan struct{})
	go func() { s.removals.wg.Wait(); close(idle) }()
	select {
	case <-idle:
		return
	case <-ctx.Done():
	}
	s.removals.cancel()
	<-idle
}

// Background removals: how many run at once, and how a failed one is
// retried before it is left to a pod's removal or the next start-up.
const (
	maxFinishers      = 4
	finishAttempts    = 5
	finishRetryDelay  = 250 * time.Millisecond
	finishRetryMaxGap = 5 * time.Second
)

// removals are the containers whose removal returned to its caller while
// the release of what they hold is pending. The zero value is ready.
type removals struct {
	once    sync.Once
	ctx     context.Context // ends when Shutdown abandons the finishers
	cancel  context.CancelFunc
	slots   chan struct{}
	wg      sync.WaitGroup // running finishers
	mu      sync.Mutex
	pending map[string]*container.Container

	// attempts and retryDelay override finishAttempts and
	// finishRetryDelay (unit tests).
	attempts   int
	retryDelay time.Duration
}

func (r *removals) init() {
	r.once.Do(func() {
		r.ctx, r.cancel = context.WithCancel(context.Background())
		r.slots = make(chan struct{}, maxFinishers)
	})
}

func (r *removals) add(c *container.Container) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending == nil {
		r.pending = map[string]*container.Container{}
	}
	r.pending[c.ID] = c
}

func (r *removals) done(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.pending, id)
}

func (r *removals) has(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.pending[id]
	return ok
}

// list returns the pending removals keep selects, the latest created
// first, the order in which they are released.
func (r *removals) list(keep func(*container.Container) bool) []*container.Container {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*container.Container
	for _, c := range r.pending {
		if keep(c) {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *container.Container) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out
}

// finishLater runs finishRemove of c in the background, at most
// maxFinishers at once, retrying a failure a few times with a growing
// pause. One that still fails stays pending: a removal of its pod or a
// create of its name takes it over, and otherwise the next start-up
// finishes it from its record.
func (r *removals) finishLater(s *Server, c *container.Container) {
	r.init()
	attempts, delay := r.attempts, r.retryDelay
	if attempts <= 0 {
		attempts = finishAttempts
	}
	if delay <= 0 {
		delay = finishRetryDelay
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		log := s.log.With("container", c.ID, "name", c.Name)
		for n := 1; ; n++ {
			select {
			case r.slots <- struct{}{}:
			case <-r.ctx.Done():
				return
			}
			err := s.finishRemove(r.ctx, c)
			<-r.slots
			switch {
			case err == nil:
				return
			case r.ctx.Err() != nil:
				return // abandoned at shutdown: start-up recovery finishes it
			case n == attempts:
				log.Error("background removal failed; left to the pod's removal or the next start-up", "attempts", n, "error", err)
				return
			}
			log.Warn("background removal failed; retrying", "attempt", n, "in", delay, "error", err)
			select {
			case <-time.After(delay):
			case <-r.ctx.Done():
				return
			}
			delay = min(2*delay, finishRetryMaxGap)
		}
	}()
}
