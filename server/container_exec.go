package server

import (
	"context"
	"fmt"
	"time"

	runtime "k8s.io/cri-api/pkg/apis/runtime/v1"
	utilexec "k8s.io/utils/exec"

	"github.com/berth-dev/berth/oci"
)

// Exec prepares a streaming exec of a command in a running container and
// returns the URL the client connects to. The container is checked again
// when the client connects.
func (s *Server) Exec(ctx context.Context, req *runtime.ExecRequest) (*runtime.ExecResponse, error) {
	c, err := s.getContainer(req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := validateStreams(req.GetCmd(), true, req.GetTty(), req.GetStdin(), req.GetStdout(), req.GetStderr()); err != nil {
		return nil, err
	}
	if err := s.requireRunning(c); err != nil {
		return nil, err
	}
	st, err := s.streamer()
	if err != nil {
		return nil, err
	}
	resp, err := st.GetExec(&runtime.ExecRequest{
		ContainerId: c.ID, Cmd: req.GetCmd(), Tty: req.GetTty(),
		Stdin: req.GetStdin(), Stdout: req.GetStdout(), Stderr: req.GetStderr(),
	})
	if err != nil {
		return nil, fmt.Errorf("exec in container %s: %w", c.ID, err)
	}
	return resp, nil
}

// validateStreams checks the streams a streaming request asks for; needCmd
// is set for exec.
func validateStreams(cmd []string, needCmd, tty, stdin, stdout, stderr bool) error {
	switch {
	case needCmd && len(cmd) == 0:
		return invalidf("cmd", "required")
	case tty && stderr:
		return invalidf("stderr", "a terminal has no separate stderr: ask for tty or stderr, not both")
	case !stdin && !stdout && !stderr:
		return invalidf("stdin", "one of stdin, stdout and stderr is required")
	}
	return nil
}

// execSession runs an exec whose client has connected. A non-zero exit code
// is returned as utilexec.CodeExitError, which the streaming library
// reports to the client as the command's exit code.
func (s *Server) execSession(ctx context.Context, id string, cmd []string, streams oci.Streams) error {
	c, err := s.getContainer(id)
	if err != nil {
		return err
	}
	if err := s.requireRunning(c); err != nil {
		return err
	}
	log := s.log.With("container", c.ID, "cmd", cmd[0], "tty", streams.TTY)
	log.Debug("exec session started")
	start := time.Now()
	code, err := s.runtimeFor(c.Handler).ExecStream(ctx, s.ociContainer(c), cmd, streams)
	if err != nil {
		return err // the streaming library logs it and tells the client
	}
	log.Info("exec session ended", "exit", code, "duration", time.Since(start))
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command terminated with exit code %d", code), Code: int(code)}
	}
	return nil
}
