package server

import (
	"fmt"

	"google.golang.org/grpc/metadata"
	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/events"
)

// eventSource is an EventPublisher that can also be subscribed to: the
// events.Broker the daemon passes in Deps.Events.
type eventSource interface {
	Subscribe() *events.Subscription
}

// GetContainerEvents streams the lifecycle events the server publishes
// (containers and sandboxes created, started, stopped, deleted), each with
// its pod's status and the statuses of the pod's containers, until the
// client goes away. A client that falls too far behind is dropped with
// ResourceExhausted rather than allowed to hold up container operations
// (see package events); the kubelet then relists.
func (s *Server) GetContainerEvents(req *runtime.GetEventsRequest, stream runtime.RuntimeService_GetContainerEventsServer) error {
	src, ok := s.events.(eventSource)
	if !ok {
		return fmt.Errorf("container events: this daemon publishes none: %w", errdefs.ErrNotImplemented)
	}
	sub := src.Subscribe()
	defer sub.Close()
	// Headers go out once subscribed: a client that waits for them
	// (stream.Header()) knows it will see every later event.
	if err := stream.SendHeader(metadata.MD{}); err != nil {
		return fmt.Errorf("container events: %w", err)
	}
	ctx := stream.Context()
	for {
		select {
		case <-ctx.Done():
			return nil // the client went away
		case ev, ok := <-sub.Events():
			if !ok {
				if err := sub.Err(); err != nil {
					return fmt.Errorf("container events: %w", err)
				}
				return nil
			}
			if err := stream.Send(ev); err != nil {
				return fmt.Errorf("container events: send: %w", err)
			}
		}
	}
}
