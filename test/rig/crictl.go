package rig

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// Crictl runs crictl against the CRI socket and returns its stdout. The
// error carries crictl's stderr, which is where it says what the runtime
// answered. The host's /etc/crictl.yaml is ignored (--config /dev/null), so
// a person's settings (debug, pull-image-on-create) cannot change a test.
func Crictl(ctx context.Context, socket string, args ...string) (string, error) {
	endpoint := "unix://" + socket
	full := append([]string{
		"--config", "/dev/null",
		"--runtime-endpoint", endpoint,
		"--image-endpoint", endpoint,
		"--timeout", "60s",
	}, args...)
	cmd := exec.CommandContext(ctx, "crictl", full...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("crictl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}
