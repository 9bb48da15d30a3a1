package events

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

func event(i int) *runtime.ContainerEventResponse {
	return &runtime.ContainerEventResponse{ContainerId: fmt.Sprint(i), CreatedAt: int64(i)}
}

// drain reads what s has buffered without waiting.
func drain(s *Subscription) (ids []string, closed bool) {
	for {
		select {
		case ev, ok := <-s.Events():
			if !ok {
				return ids, true
			}
			ids = append(ids, ev.GetContainerId())
		default:
			return ids, false
		}
	}
}

func TestBrokerFanOut(t *testing.T) {
	for _, tc := range []struct {
		name      string
		buffer    int
		readers   int
		published int
		want      int // events each reader sees
	}{
		{"one subscriber", 8, 1, 5, 5},
		{"three subscribers see every event in order", 8, 3, 8, 8},
		{"no subscribers", 8, 0, 3, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBroker(tc.buffer)
			var subs []*Subscription
			for range tc.readers {
				subs = append(subs, b.Subscribe())
			}
			for i := range tc.published {
				b.Publish(event(i))
			}
			for n, s := range subs {
				ids, closed := drain(s)
				if closed || len(ids) != tc.want {
					t.Fatalf("subscriber %d got %v (closed %v), want %d events", n, ids, closed, tc.want)
				}
				for i, id := range ids {
					if id != fmt.Sprint(i) {
						t.Fatalf("subscriber %d event %d is %s: out of order", n, i, id)
					}
				}
				s.Close()
			}
			if b.Subscribers() != 0 {
				t.Errorf("subscribers after Close = %d", b.Subscribers())
			}
		})
	}
}

func TestBrokerOverflowDropsOnlyTheSlowSubscriber(t *testing.T) {
	b := NewBroker(4)
	slow, fast := b.Subscribe(), b.Subscribe()
	var fastGot []string
	for i := range 10 {
		b.Publish(event(i)) // must never block
		ids, _ := drain(fast)
		fastGot = append(fastGot, ids...)
	}
	ids, closed := drain(slow)
	if !closed || len(ids) != 4 {
		t.Fatalf("slow subscriber: %v closed %v; want its 4 buffered events, then the end", ids, closed)
	}
	if err := slow.Err(); !errors.Is(err, ErrOverflow) {
		t.Errorf("slow subscriber's error = %v, want ErrOverflow", err)
	}
	if len(fastGot) != 10 || fast.Err() != nil {
		t.Errorf("fast subscriber got %d events, err %v; want all 10", len(fastGot), fast.Err())
	}
	if b.Subscribers() != 1 || b.Dropped() != 1 {
		t.Errorf("subscribers %d dropped %d, want 1 and 1", b.Subscribers(), b.Dropped())
	}
	slow.Close() // after the drop: harmless
	fast.Close()
	fast.Close()
}

func TestBrokerPublishNeverBlocks(t *testing.T) {
	b := NewBroker(1)
	for range 20 {
		b.Subscribe() // never read
	}
	done := make(chan struct{})
	go func() {
		for i := range 1000 {
			b.Publish(event(i))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("Publish blocked on subscribers that never read")
	}
	if b.Subscribers() != 0 || b.Dropped() != 20 {
		t.Errorf("subscribers %d dropped %d, want 0 and 20", b.Subscribers(), b.Dropped())
	}
}

func TestBrokerClose(t *testing.T) {
	b := NewBroker(4)
	s := b.Subscribe()
	b.Publish(event(0))
	b.Close()
	ids, closed := drain(s)
	if len(ids) != 1 || !closed || !errors.Is(s.Err(), errdefs.ErrUnavailable) {
		t.Errorf("after Close: %v closed %v err %v; want the buffered event, then Unavailable", ids, closed, s.Err())
	}
	late := b.Subscribe()
	b.Publish(event(1))
	if _, closed := drain(late); !closed || !errors.Is(late.Err(), ErrClosed) {
		t.Errorf("subscription after Close: closed %v err %v", closed, late.Err())
	}
	late.Close()
}

func TestBrokerConcurrent(t *testing.T) {
	// Room for every event: readers may be scheduled late under -race.
	b := NewBroker(1000)
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for n := range counts {
		s := b.Subscribe()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range s.Events() {
				counts[n]++
			}
		}()
	}
	var pub sync.WaitGroup
	for p := range 4 {
		pub.Add(1)
		go func() {
			defer pub.Done()
			for i := range 50 {
				b.Publish(event(p*100 + i))
			}
		}()
	}
	pub.Wait()
	b.Close()
	wg.Wait()
	for n, c := range counts {
		if c != 200 {
			t.Errorf("reader %d saw %d events, want 200", n, c)
		}
	}
}
