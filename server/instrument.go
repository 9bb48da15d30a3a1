package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/berth-dev/berth/errdefs"
	"github.com/berth-dev/berth/events"
)

// requestSeq numbers CRI calls, so the log lines of one call can be told apart.
var requestSeq atomic.Uint64

// CallObserver records the outcome of CRI calls (the daemon's metrics).
// It must be quick and must not block.
type CallObserver interface {
	ObserveCall(method string, code codes.Code, d time.Duration)
}

// UnaryInterceptor is the one boundary between Berth's errors and gRPC: it
// numbers every call, logs it at debug with that number and its latency,
// turns panics into Internal errors, maps sentinel errors to status codes
// and reports each call's method, code and latency to the observers.
func UnaryInterceptor(log *slog.Logger, observers ...CallObserver) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		id := requestSeq.Add(1)
		method := info.FullMethod[strings.LastIndex(info.FullMethod, "/")+1:]
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in CRI call", "method", method, "request", id, "panic", r)
				err = status.Errorf(codes.Internal, "%s: internal error: %v", method, r)
			}
			err = ToStatus(err)
			if err != nil {
				log.Debug("CRI call failed", "method", method, "request", id, "duration", time.Since(start), "error", err)
			} else {
				log.Debug("CRI call", "method", method, "request", id, "duration", time.Since(start))
			}
			for _, o := range observers {
				o.ObserveCall(method, status.Code(err), time.Since(start))
			}
		}()
		return handler(ctx, req)
	}
}

// StreamInterceptor gives streaming calls the same panic and error handling.
func StreamInterceptor(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				log.Error("panic in CRI stream", "method", info.FullMethod, "panic", r)
				err = status.Errorf(codes.Internal, "internal error: %v", r)
			}
			err = ToStatus(err)
		}()
		return handler(srv, ss)
	}
}

var codeOf = []struct {
	err  error
	code codes.Code
}{
	{errdefs.ErrInvalidArgument, codes.InvalidArgument},
	{errdefs.ErrNotFound, codes.NotFound},
	{errdefs.ErrAlreadyExists, codes.AlreadyExists},
	{errdefs.ErrFailedPrecondition, codes.FailedPrecondition},
	{errdefs.ErrUnavailable, codes.Unavailable},
	{errdefs.ErrDeadlineExceeded, codes.DeadlineExceeded},
	{errdefs.ErrPermissionDenied, codes.PermissionDenied},
	{errdefs.ErrNotImplemented, codes.Unimplemented},
	{events.ErrOverflow, codes.ResourceExhausted},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
}

// ToStatus maps an error to a gRPC status error. Errors that already carry a
// status pass through; unclassified errors become Internal, never Unknown.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	for _, c := range codeOf {
		if errors.Is(err, c.err) {
			return status.Error(c.code, err.Error())
		}
	}
	return status.Error(codes.Internal, err.Error())
}

// invalidf returns an InvalidArgument error naming the offending field.
func invalidf(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}
