package storage

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errCallersGone is the cancel cause of a shared pull every caller left.
var errCallersGone = errors.New("every caller of the pull went away")

// lastCallerWait bounds how long the last caller to leave waits for its
// cancelled pull to clean up, so that "nothing partial stays" holds when its
// call returns without letting a stuck extraction hold the call forever.
const lastCallerWait = 30 * time.Second

// pullTracker deduplicates concurrent pulls: callers asking for the same key
// share one pull, which runs on its own context and is cancelled only when
// every caller waiting for it has gone.
type pullTracker struct {
	mu  sync.Mutex
	ops map[string]*pullOp
}

type pullOp struct {
	cancel context.CancelCauseFunc
	refs   int // callers waiting; guarded by pullTracker.mu
	done   chan struct{}
	result PullResult
	err    error
}

func newPullTracker() *pullTracker {
	return &pullTracker{ops: map[string]*pullOp{}}
}

// do runs pull for key, or joins the pull of key already running, and waits
// for it or for ctx. The second result tells whether the call joined a pull
// in progress.
func (t *pullTracker) do(ctx context.Context, key string, pull func(context.Context) (PullResult, error)) (PullResult, bool, error) {
	op, joined := t.join(key, pull)
	select {
	case <-op.done:
		return op.result, joined, op.err
	case <-ctx.Done():
	}
	if t.leave(key, op) {
		timer := time.NewTimer(lastCallerWait)
		defer timer.Stop()
		select {
		case <-op.done:
		case <-timer.C:
		}
	}
	return PullResult{}, joined, context.Cause(ctx)
}

func (t *pullTracker) join(key string, pull func(context.Context) (PullResult, error)) (*pullOp, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if op, ok := t.ops[key]; ok {
		op.refs++
		return op, true
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	op := &pullOp{cancel: cancel, refs: 1, done: make(chan struct{})}
	t.ops[key] = op
	go func() {
		defer cancel(nil)
		op.result, op.err = pull(ctx)
		t.mu.Lock()
		if t.ops[key] == op {
			delete(t.ops, key)
		}
		t.mu.Unlock()
		close(op.done)
	}()
	return op, false
}

// leave drops one caller of op and cancels op if it was the last; it reports
// whether it was.
func (t *pullTracker) leave(key string, op *pullOp) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	op.refs--
	if op.refs > 0 {
		return false
	}
	// A later caller must start afresh, not join a dying pull.
	if t.ops[key] == op {
		delete(t.ops, key)
	}
	op.cancel(errCallersGone)
	return true
}

// waiting is the number of callers waiting for key's pull (for tests).
func (t *pullTracker) waiting(key string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if op, ok := t.ops[key]; ok {
		return op.refs
	}
	return 0
}
