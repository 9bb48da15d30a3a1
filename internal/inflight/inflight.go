// Package inflight lets a create that outlived its client's deadline keep
// working and hand its result to the client's retry, as CRI-O's resource
// store does. The kubelet retries RunPodSandbox and CreateContainer with the
// same name; without this the retry would fail with "name is reserved" for
// as long as the first call runs, and a result nobody collects would leak.
package inflight

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

// maxWork bounds a detached creation: a plugin that hangs must not hold a
// name forever.
const maxWork = 5 * time.Minute

// op is one creation, keyed by the object's name.
type op struct {
	key   string // the request's content: only the same request joins
	done  chan struct{}
	id    string
	err   error
	stage string // what the work is doing, for a caller that gives up
	mu    sync.Mutex
}

func (o *op) setStage(s string) {
	o.mu.Lock()
	o.stage = s
	o.mu.Unlock()
}

func (o *op) getStage() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stage
}

// Tracker runs creations and keeps the results no caller collected.
type Tracker struct {
	kind string // "pod sandbox", "container": named in errors
	// Abandon is how long a finished result waits for a retry before
	// cleanup removes the object.
	abandon time.Duration
	cleanup func(id string)

	mu  sync.Mutex
	ops map[string]*op
}

// New returns a tracker; cleanup removes an object whose result was never
// collected within abandon.
func New(kind string, abandon time.Duration, cleanup func(id string)) *Tracker {
	return &Tracker{kind: kind, abandon: abandon, cleanup: cleanup, ops: map[string]*op{}}
}

// Stage reports progress of the creation running in ctx.
type stageKey struct{}

// SetStage records what the creation in ctx is doing now, so that a caller
// whose deadline passes can say where the work is.
func SetStage(ctx context.Context, stage string) {
	if o, ok := ctx.Value(stageKey{}).(*op); ok {
		o.setStage(stage)
	}
}

// Do runs create for name unless a creation of name by the same request
// (equal key) is already running or finished uncollected, in which case it
// waits for that one instead; a different request for a name under creation
// fails with AlreadyExists. The work runs detached from ctx: when ctx ends
// first, Do returns DeadlineExceeded naming the stage, and the result waits
// for a retry.
func (t *Tracker) Do(ctx context.Context, name, key string, create func(ctx context.Context) (string, error)) (string, error) {
	t.mu.Lock()
	o, running := t.ops[name]
	if running && o.key != key {
		t.mu.Unlock()
		return "", fmt.Errorf("%s name %q is being created by a different request: %w", t.kind, name, errdefs.ErrAlreadyExists)
	}
	if !running {
		o = &op{key: key, done: make(chan struct{}), stage: "starting"}
		t.ops[name] = o
		work, cancel := context.WithTimeout(context.WithValue(context.WithoutCancel(ctx), stageKey{}, o), maxWork)
		go func() {
			defer cancel()
			t.run(work, name, o, create)
		}()
	}
	t.mu.Unlock()

	select {
	case <-o.done:
		t.collect(name, o)
		return o.id, o.err
	case <-ctx.Done():
		return "", fmt.Errorf("%s %q is still being created (stage: %s); retry to get it: %w",
			t.kind, name, o.getStage(), errdefs.ErrDeadlineExceeded)
	}
}

func (t *Tracker) run(ctx context.Context, name string, o *op, create func(context.Context) (string, error)) {
	o.id, o.err = create(ctx)
	close(o.done)
	if o.err != nil {
		// A failure leaves nothing to collect; a retry starts afresh.
		t.collect(name, o)
		return
	}
	time.AfterFunc(t.abandon, func() {
		t.mu.Lock()
		uncollected := t.ops[name] == o
		if uncollected {
			delete(t.ops, name)
		}
		t.mu.Unlock()
		if uncollected {
			t.cleanup(o.id)
		}
	})
}

// collect hands the result over: it is no longer anyone's to clean up.
func (t *Tracker) collect(name string, o *op) {
	t.mu.Lock()
	if t.ops[name] == o {
		delete(t.ops, name)
	}
	t.mu.Unlock()
}
