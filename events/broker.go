// Package events fans the CRI container lifecycle events the server
// publishes out to GetContainerEvents subscribers.
//
// Publishing never blocks: every subscriber has a bounded buffer, and a
// subscriber whose buffer is full when an event arrives is dropped, its
// stream ended with ErrOverflow, rather than waited for. A slow or stuck
// client (one that stopped reading its stream) therefore never holds up
// container operations; the kubelet answers a broken event stream by
// relisting, which is how it recovers from missed events anyway.
package events

import (
	"errors"
	"fmt"
	"sync"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
)

// DefaultBuffer is the number of events a subscriber may fall behind by:
// room for a burst of pod starts between two reads of a healthy client.
const DefaultBuffer = 128

var (
	// ErrOverflow ends the subscription of a subscriber that fell behind.
	ErrOverflow = errors.New("container event subscriber fell behind and was dropped; relist")
	// ErrClosed ends every subscription when the broker closes (the
	// daemon shuts down).
	ErrClosed = fmt.Errorf("container event stream closed: the runtime is shutting down: %w", errdefs.ErrUnavailable)
)

// Broker delivers published events to every current subscriber. The zero
// value is not usable; use NewBroker.
type Broker struct {
	buffer int

	mu     sync.Mutex
	subs   map[*Subscription]struct{}
	closed bool
	// dropped counts subscribers dropped for falling behind.
	dropped uint64
}

// NewBroker returns a broker whose subscribers may fall behind by buffer
// events (DefaultBuffer when buffer <= 0).
func NewBroker(buffer int) *Broker {
	if buffer <= 0 {
		buffer = DefaultBuffer
	}
	return &Broker{buffer: buffer, subs: map[*Subscription]struct{}{}}
}

// Subscription is one subscriber's view: the events published since it
// subscribed, in order, until it ends.
type Subscription struct {
	broker *Broker
	ch     chan *runtime.ContainerEventResponse
	err    error // why the channel was closed; guarded by broker.mu
}

// Subscribe starts a subscription. The caller must Close it.
func (b *Broker) Subscribe() *Subscription {
	s := &Subscription{broker: b, ch: make(chan *runtime.ContainerEventResponse, b.buffer)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		s.err = ErrClosed
		close(s.ch)
		return s
	}
	b.subs[s] = struct{}{}
	return s
}

// Publish hands ev to every subscriber without waiting for any: a
// subscriber with a full buffer is dropped instead (see the package doc).
// Subscribers share ev and must not modify it.
func (b *Broker) Publish(ev *runtime.ContainerEventResponse) {
	if ev == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		select {
		case s.ch <- ev:
		default:
			b.dropped++
			b.end(s, fmt.Errorf("%w: %d events unread", ErrOverflow, len(s.ch)))
		}
	}
}

// Close ends every subscription with ErrClosed; later subscriptions end at
// once and later events are discarded.
func (b *Broker) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for s := range b.subs {
		b.end(s, ErrClosed)
	}
}

// Subscribers is the number of current subscribers.
func (b *Broker) Subscribers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

// Dropped is the number of subscribers dropped for falling behind.
func (b *Broker) Dropped() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.dropped
}

// end removes s and closes its channel with err; b.mu is held.
func (b *Broker) end(s *Subscription, err error) {
	if _, ok := b.subs[s]; !ok {
		return
	}
	delete(b.subs, s)
	s.err = err
	close(s.ch)
}

// Events is the subscription's channel. It is closed when the subscription
// ends; Err then says why.
func (s *Subscription) Events() <-chan *runtime.ContainerEventResponse { return s.ch }

// Err is why the subscription ended: ErrOverflow, ErrClosed, or nil while
// it runs or after the subscriber's own Close.
func (s *Subscription) Err() error {
	s.broker.mu.Lock()
	defer s.broker.mu.Unlock()
	return s.err
}

// Close ends the subscription; closing twice is harmless.
func (s *Subscription) Close() {
	s.broker.mu.Lock()
	defer s.broker.mu.Unlock()
	s.broker.end(s, nil)
}
