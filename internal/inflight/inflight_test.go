package inflight

import (
	"context"
	"errors"
	"runtime"
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
	inNetwork := make(chan struct{})
	create := func(ctx context.Context) (string, error) {
		creates.Add(1)
		SetStage(ctx, "network")
		close(inNetwork)
		<-release
		return "id-1", nil
	}

	// The client gives up once the work is in its network stage (its
	// deadline, as kubelet's, passes): a deadline of its own could pass
	// before the work even started on a busy machine.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-inNetwork; cancel() }()
	_, err := tr.Do(ctx, "pod-a", "req", create)
	if !errors.Is(err, errdefs.ErrDeadlineExceeded) || !strings.Contains(err.Error(), "network") {
		t.Fatalf("first call past its deadline = %v, want DeadlineExceeded naming the stage", err)
	}
	close(release)
	id, err := tr.Do(context.Background(), "pod-a", "req", create)
	if err != nil || id != "id-1" || creates.Load() != 1 {
		t.Fatalf("retry = %q, %v after %d creates; want the first call's id and one create", id, err, creates.Load())
	}
	// Collected: a later call with the name creates anew.
	tr.Do(context.Background(), "pod-a", "req", func(context.Context) (string, error) { creates.Add(1); return "id-2", nil })
	if creates.Load() != 2 {
		t.Errorf("creates = %d, want a new creation after collection", creates.Load())
	}
}

func TestAbandonedResultIsCleanedUp(t *testing.T) {
	cleaned := make(chan string, 1)
	tr := New("container", 20*time.Millisecond, func(id string) { cleaned <- id })
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the caller is already gone
	callerLeft := make(chan struct{})
	tr.Do(ctx, "c", "req", func(context.Context) (string, error) {
		<-callerLeft // finish after the caller left
		return "id-x", nil
	})
	close(callerLeft)
	select {
	case id := <-cleaned:
		if id != "id-x" {
			t.Errorf("cleaned %q", id)
		}
	case <-time.After(time.Minute):
		t.Fatal("an uncollected result was never cleaned up")
	}
}

func TestFailureIsNotKept(t *testing.T) {
	tr := New("pod sandbox", time.Minute, func(string) { t.Error("a failure was cleaned up") })
	boom := errors.New("boom")
	if _, err := tr.Do(context.Background(), "p", "req", func(context.Context) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("Do = %v", err)
	}
	if id, err := tr.Do(context.Background(), "p", "req", func(context.Context) (string, error) { return "ok", nil }); err != nil || id != "ok" {
		t.Errorf("after a failure a retry must create anew: %q %v", id, err)
	}
}

// TestDifferentRequestIsRefused: only a retry of the same request joins a
// creation under way; another request for the name gets AlreadyExists.
func TestDifferentRequestIsRefused(t *testing.T) {
	tr := New("container", time.Hour, func(string) {})
	release := make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := tr.Do(context.Background(), "c", "config-a", func(context.Context) (string, error) { <-release; return "id-a", nil })
		first <- err
	}()
	// Wait until the first creation is registered.
	for {
		tr.mu.Lock()
		_, ok := tr.ops["c"]
		tr.mu.Unlock()
		if ok {
			break
		}
		runtime.Gosched()
	}
	if _, err := tr.Do(context.Background(), "c", "config-b", func(context.Context) (string, error) { return "id-b", nil }); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("different request: err = %v, want AlreadyExists", err)
	}
	joined := make(chan string, 1)
	go func() {
		id, _ := tr.Do(context.Background(), "c", "config-a", func(context.Context) (string, error) { return "id-dup", nil })
		joined <- id
	}()
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if id := <-joined; id != "id-a" && id != "id-dup" {
		t.Errorf("same request got %q", id)
	}
}
