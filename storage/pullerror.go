package storage

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/docker/distribution/registry/api/errcode"
	v2 "github.com/docker/distribution/registry/api/v2"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/signature"

	"github.com/berth-dev/berth/errdefs"
)

// pullErrorKind is what went wrong with a pull, as far as a CRI client
// cares. Higher kinds win when candidates failed differently.
type pullErrorKind int

const (
	kindOther       pullErrorKind = iota // Internal
	kindUnavailable                      // registry unreachable
	kindDenied                           // credentials refused
	kindNotFound                         // repository or tag unknown
	kindStalled                          // no progress within the pull-progress timeout
	kindPolicy                           // signature policy rejected the image
	kindCancelled                        // the caller went away or ran out of time
)

// notFoundMarkers are how registries say "no such repository or tag" in
// text, which is all c/image keeps of a mirror's error.
var notFoundMarkers = []string{
	"manifest unknown",
	"name unknown",
	"repository name not known to registry",
}

// classifyPullError sorts one candidate's pull error.
func classifyPullError(err error) pullErrorKind {
	switch {
	case err == nil:
		return kindOther
	case errors.As(err, new(*noProgressError)):
		return kindStalled
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kindCancelled
	case isPolicyRejection(err):
		return kindPolicy
	case isAuthError(err):
		return kindDenied
	case isNotFound(err):
		return kindNotFound
	case isNetworkError(err):
		// A mirror that answered "manifest unknown" before the primary
		// turned out to be unreachable still says the image is not there.
		if mentionsNotFound(err) {
			return kindNotFound
		}
		return kindUnavailable
	}
	return kindOther
}

func isPolicyRejection(err error) bool {
	var pre signature.PolicyRequirementError
	return errors.As(err, &pre)
}

func isAuthError(err error) bool {
	var unauth docker.ErrUnauthorizedForCredentials
	if errors.As(err, &unauth) {
		return true
	}
	var ec errcode.ErrorCoder
	if errors.As(err, &ec) {
		code := ec.ErrorCode()
		return code == errcode.ErrorCodeUnauthorized || code == errcode.ErrorCodeDenied
	}
	return false
}

func isNotFound(err error) bool {
	var ec errcode.ErrorCoder
	if errors.As(err, &ec) {
		code := ec.ErrorCode()
		if code == v2.ErrorCodeManifestUnknown || code == v2.ErrorCodeNameUnknown {
			return true
		}
	}
	var status docker.UnexpectedHTTPStatusError
	if errors.As(err, &status) && status.StatusCode == http.StatusNotFound {
		return true
	}
	return mentionsNotFound(err) && !isNetworkError(err)
}

func mentionsNotFound(err error) bool {
	text := strings.ToLower(err.Error())
	for _, m := range notFoundMarkers {
		if strings.Contains(text, m) {
			return true
		}
	}
	return false
}

func isNetworkError(err error) bool {
	for _, errno := range []syscall.Errno{syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT} {
		if errors.Is(err, errno) {
			return true
		}
	}
	if errors.Is(err, docker.ErrTooManyRequests) {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	if errors.As(err, &op) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// candidateError is one candidate's failure.
type candidateError struct {
	name reference.Named
	err  error
}

// pullError builds the error of a failed pull of ref from each candidate's
// failure: its kind is the most telling candidate's, its text names the
// reference, the registry when it could not be reached, and every cause.
func pullError(ref string, failures []candidateError) error {
	if len(failures) == 0 {
		return fmt.Errorf("pull image %q: no candidates", ref)
	}
	best := 0
	kinds := make([]pullErrorKind, len(failures))
	for i, f := range failures {
		kinds[i] = classifyPullError(f.err)
		if kinds[i] > kinds[best] {
			best = i
		}
	}
	kind, cause := kinds[best], failures[best].err
	if len(failures) > 1 {
		parts := make([]string, len(failures))
		for i, f := range failures {
			parts[i] = fmt.Sprintf("[%s: %v]", f.name, f.err)
		}
		// Keep the best cause's type for errors.Is/As; the text lists all.
		cause = fmt.Errorf("%s%.0w", strings.Join(parts, "; "), cause)
	}
	switch kind {
	case kindCancelled, kindStalled:
		return fmt.Errorf("pull image %q: %w", ref, cause)
	case kindPolicy:
		return fmt.Errorf("pull image %q: rejected by signature policy: %w: %w", ref, cause, errdefs.ErrPermissionDenied)
	case kindDenied:
		return fmt.Errorf("pull image %q: access denied by registry: %w: %w", ref, cause, errdefs.ErrPermissionDenied)
	case kindNotFound:
		return fmt.Errorf("pull image %q: repository or tag not found: %w: %w", ref, cause, errdefs.ErrNotFound)
	case kindUnavailable:
		return fmt.Errorf("pull image %q: registry %s unreachable: %w: %w",
			ref, reference.Domain(failures[best].name), cause, errdefs.ErrUnavailable)
	}
	return fmt.Errorf("pull image %q: %w", ref, cause)
}
