package storage

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestPullTrackerSharesAndRefcounts(t *testing.T) {
	for _, tc := range []struct {
		name      string
		callers   int
		cancel    int // how many callers cancel before the pull finishes
		wantRuns  int32
		wantAbort bool // the pull's own context was cancelled
	}{
		{name: "one caller", callers: 1, wantRuns: 1},
		{name: "many callers share", callers: 5, wantRuns: 1},
		{name: "some cancel", callers: 3, cancel: 2, wantRuns: 1},
		{name: "all cancel", callers: 3, cancel: 3, wantRuns: 1, wantAbort: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := newPullTracker()
			var runs atomic.Int32
			release := make(chan struct{})
			aborted := make(chan error, 1)
			pull := func(ctx context.Context) (PullResult, error) {
				runs.Add(1)
				select {
				case <-release:
					return PullResult{ImageID: "id"}, nil
				case <-ctx.Done():
					aborted <- context.Cause(ctx)
					return PullResult{}, ctx.Err()
				}
			}
			var wg sync.WaitGroup
			errs := make([]error, tc.callers)
			cancels := make([]context.CancelFunc, tc.callers)
			for i := range tc.callers {
				ctx, cancel := context.WithCancel(context.Background())
				cancels[i] = cancel
				wg.Go(func() { _, _, errs[i] = tr.do(ctx, "k", pull) })
			}
			waitFor(t, "callers to join", func() bool { return tr.waiting("k") == tc.callers })
			for i := range tc.cancel {
				cancels[i]()
			}
			if tc.wantAbort {
				select {
				case cause := <-aborted:
					if !errors.Is(cause, errCallersGone) {
						t.Errorf("pull cancelled with %v, want %v", cause, errCallersGone)
					}
				case <-time.After(time.Minute):
					t.Fatal("pull not cancelled after every caller left")
				}
			} else {
				waitFor(t, "cancelled callers to leave", func() bool { return tr.waiting("k") == tc.callers-tc.cancel })
			}
			close(release)
			wg.Wait()
			for i, err := range errs {
				if wantErr := i < tc.cancel; (err != nil) != wantErr {
					t.Errorf("caller %d: %v (cancelled: %v)", i, err, wantErr)
				}
			}
			if got := runs.Load(); got != tc.wantRuns {
				t.Errorf("%d pulls ran, want %d", got, tc.wantRuns)
			}
			if tr.waiting("k") != 0 {
				t.Error("pull still tracked after it ended")
			}
		})
	}
}
