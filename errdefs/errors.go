// Package errdefs holds the sentinel errors shared by Berth's packages.
// Packages wrap them with context (fmt.Errorf("image %q: %w", ref, ErrNotFound))
// and the gRPC boundary in server/ maps them to status codes with errors.Is,
// so no handler has to build gRPC statuses by hand.
package errdefs

import "errors"

var (
	// ErrInvalidArgument: the request is malformed (empty id, bad reference, ...).
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotFound: the named object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: a name or id is already taken.
	ErrAlreadyExists = errors.New("already exists")
	// ErrFailedPrecondition: the object is in a state that forbids the call.
	ErrFailedPrecondition = errors.New("failed precondition")
	// ErrUnavailable: a dependency (a registry, a runtime) cannot be reached.
	ErrUnavailable = errors.New("unavailable")
	// ErrDeadlineExceeded: the work did not finish in its allotted time.
	ErrDeadlineExceeded = errors.New("deadline exceeded")
	// ErrPermissionDenied: credentials or a signature policy refused the call.
	ErrPermissionDenied = errors.New("permission denied")
	// ErrNotImplemented: the call is part of the CRI but not (yet) served.
	ErrNotImplemented = errors.New("not implemented")
)
