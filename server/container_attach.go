package server

import (
	"context"
	"fmt"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/berth-dev/berth/container"
	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/oci"
)

// Attach prepares a streaming attach to a container's stdio and returns the
// URL the client connects to. Stdin can only be attached to a container
// created with stdin. The container is checked again when the client
// connects.
func (s *Server) Attach(ctx context.Context, req *runtime.AttachRequest) (*runtime.AttachResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := validateStreams(nil, false, req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	if err := s.requireAttachable(c, req.GetStdin()); err != nil {
		return nil, err
	}
	st, err := s.streamer()
	if err != nil {
		return nil, err
	}
	resp, err := st.GetAttach(&runtime.AttachRequest{
		ContainerId: c.ID, Tty: req.GetTty(),
		Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(),
	})
	if err != nil {
		return nil, fmt.Errorf("attach to container %s: %w", c.ID, err)
	}
	return resp, nil
}

// requireAttachable fails with FailedPrecondition naming c unless it is
// created or running (conmon serves its stdio from creation on, as in
// CRI-O) and, for stdin, was created with stdin.
func (s *Server) requireAttachable(c *container.Container, stdin bool) error {
	s.checkExit(c)
	if st := c.State(); st != container.StateRunning && st != container.StateCreated {
		return fmt.Errorf("container %s is %s, not running: %w", c.ID, st, errdefs.ErrFailedPrecondition)
	}
	if stdin && !c.Config.GetStdin() {
		return fmt.Errorf("attach stdin to container %s: it was created without stdin: %w", c.ID, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// attachSession runs an attach whose client has connected.
func (s *Server) attachSession(ctx context.Context, id string, streams oci.Streams) error {
	c, err := s.getContainer(id)
	if err != nil {
		return err
	}
	if err := s.requireAttachable(c, streams.Stdin != nil); err != nil {
		return err
	}
	log := s.log.With("container", c.ID, "tty", streams.TTY, "stdin", streams.Stdin != nil)
	log.Debug("attach session started")
	start := time.Now()
	if err := s.runtimeFor(c.Handler).Attach(ctx, s.ociContainer(c), streams); err != nil {
		return err // the streaming library logs it and tells the client
	}
	log.Info("attach session ended", "duration", time.Since(start))
	return nil
}
