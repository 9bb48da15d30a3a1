package server

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/events"
)

// eventStream is the server side of a GetContainerEvents call: it tells
// when the headers went out and hands every event sent to the test.
type eventStream struct {
	grpc.ServerStream // not used by the handler beyond what is overridden
	ctx               context.Context
	headerErr         error
	sendErr           error
	header            chan struct{}
	sent              chan *runtime.ContainerEventResponse
	// gate, if set, is waited on by every Send once it has signalled entered.
	gate    chan struct{}
	entered chan struct{}
}

func newEventStream(ctx context.Context) *eventStream {
	return &eventStream{ctx: ctx, header: make(chan struct{}), sent: make(chan *runtime.ContainerEventResponse, 64)}
}

func (e *eventStream) Context() context.Context { return e.ctx }

func (e *eventStream) SendHeader(metadata.MD) error {
	if e.headerErr != nil {
		return e.headerErr
	}
	close(e.header)
	return nil
}

func (e *eventStream) Send(ev *runtime.ContainerEventResponse) error {
	if e.gate != nil {
		e.entered <- struct{}{}
		<-e.gate
	}
	if e.sendErr != nil {
		return e.sendErr
	}
	e.sent <- ev
	return nil
}

// waitTimeout bounds every wait of these tests: reaching it is a failure,
// never the way a test moves on.
const waitTimeout = 10 * time.Second

func nextEvent(t *testing.T, e *eventStream) *runtime.ContainerEventResponse {
	t.Helper()
	select {
	case ev := <-e.sent:
		return ev
	case <-time.After(waitTimeout):
		t.Fatal("no event sent")
		return nil
	}
}

func waitErr(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(waitTimeout):
		t.Fatal("GetContainerEvents did not return")
		return nil
	}
}

// eventsServer is a fake-backed server publishing to a broker of buffer
// events, with container changes published as the daemon's New wires them.
func eventsServer(t *testing.T, buffer int) (*Server, *events.Broker) {
	t.Helper()
	s, _ := fakeServer(t)
	b := events.NewBroker(buffer)
	s.events = b
	s.ctrHooks.Changed = s.containerChanged
	return s, b
}

// subscribe runs GetContainerEvents until ctx ends and returns once its
// headers are out, that is once it is subscribed.
func subscribe(t *testing.T, s *Server, e *eventStream) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.GetContainerEvents(&runtime.GetEventsRequest{}, e) }()
	select {
	case <-e.header:
	case err := <-done:
		t.Fatalf("GetContainerEvents returned before subscribing: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("GetContainerEvents sent no headers")
	}
	return done
}

func TestContainerEventsFollowALife(t *testing.T) {
	s, b := eventsServer(t, 0)
	addReadyPod(t, s, "pod-ev", hostNetworkPod("ev"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEventStream(ctx)
	done := subscribe(t, s, e)

	// A created container changes no state: no event until it starts.
	c := addContainer(t, s, "ctr-ev", "pod-ev", container.StateCreated)
	if err := c.SetResources(&runtime.LinuxContainerResources{CpuShares: 2}); err != nil {
		t.Fatal(err)
	}
	if err := c.Started(time.Now()); err != nil {
		t.Fatal(err)
	}
	s.recordExit(c, container.Exit{Code: 3, FinishedAt: time.Now(), Reason: "Error"})
	// One whose pod is unknown goes out without pod status.
	addContainer(t, s, "ctr-orphan", "no-such-pod", container.StateRunning)

	for _, want := range []struct {
		typ   runtime.ContainerEventType
		id    string
		pod   string
		state runtime.ContainerState
		code  int32
	}{
		{runtime.ContainerEventType_CONTAINER_STARTED_EVENT, "ctr-ev", "pod-ev", runtime.ContainerState_CONTAINER_RUNNING, 0},
		{runtime.ContainerEventType_CONTAINER_STOPPED_EVENT, "ctr-ev", "pod-ev", runtime.ContainerState_CONTAINER_EXITED, 3},
		{runtime.ContainerEventType_CONTAINER_STARTED_EVENT, "ctr-orphan", "", 0, 0},
	} {
		ev := nextEvent(t, e)
		if ev.GetContainerEventType() != want.typ || ev.GetContainerId() != want.id || ev.GetCreatedAt() == 0 {
			t.Fatalf("event = %s of %s at %d, want %s of %s", ev.GetContainerEventType(), ev.GetContainerId(), ev.GetCreatedAt(), want.typ, want.id)
		}
		if ev.GetPodSandboxStatus().GetId() != want.pod {
			t.Errorf("%s: pod status of %q, want %q", want.typ, ev.GetPodSandboxStatus().GetId(), want.pod)
		}
		if want.pod == "" {
			if len(ev.GetContainersStatuses()) != 0 {
				t.Errorf("%s: container statuses of an unknown pod: %v", want.typ, ev.GetContainersStatuses())
			}
			continue
		}
		sts := ev.GetContainersStatuses()
		if len(sts) != 1 || sts[0].GetId() != want.id || sts[0].GetState() != want.state || sts[0].GetExitCode() != want.code {
			t.Errorf("%s: container statuses = %v, want %s %s exit %d", want.typ, sts, want.id, want.state, want.code)
		}
	}
	select {
	case ev := <-e.sent:
		t.Errorf("unexpected event %s of %s", ev.GetContainerEventType(), ev.GetContainerId())
	default:
	}

	cancel()
	if err := waitErr(t, done); err != nil {
		t.Errorf("GetContainerEvents after the client went away = %v, want nil", err)
	}
	if n := b.Subscribers(); n != 0 {
		t.Errorf("%d subscribers left after the stream ended", n)
	}
}

// A sandbox event carries the sandbox's own id, as in containerd.
func TestContainerEventsOfASandbox(t *testing.T) {
	s, _ := eventsServer(t, 0)
	sb := addReadyPod(t, s, "pod-sb", hostNetworkPod("sb"))
	addContainer(t, s, "ctr-sb", "pod-sb", container.StateCreated)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEventStream(ctx)
	done := subscribe(t, s, e)
	s.emitSandbox(runtime.ContainerEventType_CONTAINER_CREATED_EVENT, sb)
	ev := nextEvent(t, e)
	if ev.GetContainerId() != "pod-sb" || ev.GetContainerEventType() != runtime.ContainerEventType_CONTAINER_CREATED_EVENT ||
		ev.GetPodSandboxStatus().GetState() != runtime.PodSandboxState_SANDBOX_READY ||
		len(ev.GetContainersStatuses()) != 1 || ev.GetContainersStatuses()[0].GetId() != "ctr-sb" {
		t.Errorf("sandbox event = %v", ev)
	}
	cancel()
	if err := waitErr(t, done); err != nil {
		t.Error(err)
	}
}

func TestContainerEventsEndings(t *testing.T) {
	errBroken := errors.New("transport is closing")
	for _, tc := range []struct {
		name string
		// setup prepares the stream before the call.
		setup func(e *eventStream)
		// act ends the stream once it is subscribed (nil: it never subscribes).
		act   func(s *Server, b *events.Broker)
		code  codes.Code
		cause error
	}{
		{
			name:  "headers cannot be sent",
			setup: func(e *eventStream) { e.headerErr = errBroken },
			code:  codes.Internal, cause: errBroken,
		},
		{
			name:  "an event cannot be sent",
			setup: func(e *eventStream) { e.sendErr = errBroken },
			act: func(s *Server, b *events.Broker) {
				b.Publish(&runtime.ContainerEventResponse{ContainerId: "x"})
			},
			code: codes.Internal, cause: errBroken,
		},
		{
			name: "the daemon shuts down",
			act:  func(s *Server, b *events.Broker) { b.Close() },
			code: codes.Unavailable, cause: events.ErrClosed,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, b := eventsServer(t, 0)
			e := newEventStream(context.Background())
			if tc.setup != nil {
				tc.setup(e)
			}
			var err error
			if tc.act == nil {
				err = s.GetContainerEvents(&runtime.GetEventsRequest{}, e)
			} else {
				done := subscribe(t, s, e)
				tc.act(s, b)
				err = waitErr(t, done)
			}
			if !errors.Is(err, tc.cause) || status.Code(ToStatus(err)) != tc.code {
				t.Errorf("error = %v, want %s wrapping %v", err, tc.code, tc.cause)
			}
			if n := b.Subscribers(); n != 0 {
				t.Errorf("%d subscribers left", n)
			}
		})
	}
}

// A client too slow for the events is dropped with ResourceExhausted once
// it has been sent what it was buffered; container operations never wait
// for it.
func TestContainerEventsDropASlowClient(t *testing.T) {
	s, b := eventsServer(t, 1)
	sb := addReadyPod(t, s, "pod-slow", hostNetworkPod("slow"))
	e := newEventStream(context.Background())
	e.gate, e.entered = make(chan struct{}), make(chan struct{}, 4)
	done := subscribe(t, s, e)

	s.emitSandbox(runtime.ContainerEventType_CONTAINER_CREATED_EVENT, sb) // taken, its Send held at the gate
	select {
	case <-e.entered:
	case <-time.After(waitTimeout):
		t.Fatal("the first event was not sent")
	}
	s.emitSandbox(runtime.ContainerEventType_CONTAINER_STARTED_EVENT, sb) // fills the buffer
	s.emitSandbox(runtime.ContainerEventType_CONTAINER_STOPPED_EVENT, sb) // overflows it: dropped
	if b.Dropped() != 1 || b.Subscribers() != 0 {
		t.Fatalf("dropped %d, subscribers %d; want the slow client dropped", b.Dropped(), b.Subscribers())
	}
	close(e.gate)
	err := waitErr(t, done)
	if !errors.Is(err, events.ErrOverflow) || status.Code(ToStatus(err)) != codes.ResourceExhausted {
		t.Errorf("error = %v, want ResourceExhausted wrapping %v", err, events.ErrOverflow)
	}
	var got []runtime.ContainerEventType
	for len(e.sent) > 0 {
		got = append(got, (<-e.sent).GetContainerEventType())
	}
	want := []runtime.ContainerEventType{runtime.ContainerEventType_CONTAINER_CREATED_EVENT, runtime.ContainerEventType_CONTAINER_STARTED_EVENT}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("sent %v before the drop, want %v", got, want)
	}
}

// Without a broker (Deps.Events nil) there is nothing to subscribe to.
func TestContainerEventsWithoutPublisher(t *testing.T) {
	s, _ := fakeServer(t) // events: noEvents
	err := s.GetContainerEvents(&runtime.GetEventsRequest{}, newEventStream(context.Background()))
	if !errors.Is(err, errdefs.ErrNotImplemented) || status.Code(ToStatus(err)) != codes.Unimplemented {
		t.Errorf("error = %v, want Unimplemented", err)
	}
	noEvents{}.Publish(&runtime.ContainerEventResponse{ContainerId: "dropped"}) // and publishing to it is harmless
}
