package inflight

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/errdefs"
)

func TestRetryGetsTheFirstCallsResult(t *testing.T) {
	var creates atomic.Int32
	release := make(chan struct{})
	tr := New("pod sandbox", time.Minute, func(string) { t.Error("a collected result was cleaned up") })
	create := func(ctx context.Context) (string, error) {
		creates.Add(1)
		SetStage(ctx, "network")
		<-release
		return "id-1", nil
	}

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := tr.Do(ctx, "pod-a", create)
	if !errors.Is(err, errdefs.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "network") {
		t.Fatalf("first call past its deadline = %v, want DeadlineExceeded naming the stage", err)
	}
	close(release)
	id, err := tr.Do(context.Background(), "pod-a", create)
	if err != nil || id != "id-1" || creates.Load() != 1 {
		t.Fatalf("retry = %q, %v after %d creates; want the first call's id and one create", id, err, creates.Load())
	}
	// Collected: a later call with the name creates anew.
	tr.Do(context.Background(), "pod-a", func(context.Context) (string, error) { creates.Add(1); return "id-2", nil })
	if creates.Load() != 2 {
		t.Errorf("creates = %d, want a new creation after collection", creates.Load())
	}
}

func TestAbandonedResultIsCleanedUp(t *testing.T) {
	cleaned := make(chan string, 1)
	tr := New("container", 20*time.Millisecond, func(id string) { cleaned <- id })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller is already gone
	tr.Do(ctx, "c", func(context.Context) (string, error) {
		time.Sleep(10 * time.Millisecond) // finish after the caller left
		return "id-x", nil
	})
	select {
	case id := <-cleaned:
		if id != "id-x" {
			t.Errorf("cleaned %q", id)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("an uncollected result was never cleaned up")
	}
}

func TestFailureIsNotKept(t *testing.T) {
	tr := New("pod sandbox", time.Minute, func(string) { t.Error("a failure was cleaned up") })
	boom := errors.New("boom")
	if _, err := tr.Do(context.Background(), "p", func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("Do = %v", err)
	}
	if id, err := tr.Do(context.Background(), "p", func(context.Context) (string, error) { return "ok", nil }); err != nil || id != "ok" {
		t.Errorf("after a failure a retry must create anew: %q %v", id, err)
	}
}
