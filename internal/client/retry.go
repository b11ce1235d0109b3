package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Class is what a failed call's error says about trying the call again.
type Class int

const (
	// Permanent: the server answered and refused, or the failure is this
	// machine's own (not a gRPC status). The same call gets the same
	// answer; never retried.
	Permanent Class = iota
	// Transient: the call failed on the way or the server could not serve
	// it just now. The server may or may not have acted; since every
	// Doorstep call is idempotent, trying again with backoff is safe.
	Transient
	// Stopped: the caller's own context ended (cancelled, or past its
	// deadline): the caller is stopping, so nothing is retried. As with
	// Transient, the server may or may not have acted.
	Stopped
)

func (c Class) String() string {
	switch c {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Stopped:
		return "stopped"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// classes is the one table from gRPC codes to what they mean for a retry;
// every code has a row (a test checks). Classify applies it.
var classes = map[codes.Code]Class{
	// Not a failure: there is nothing to try again.
	codes.OK: Permanent,
	// The caller's own cancellation never reaches this table (Classify
	// answers Stopped first). A Canceled while the caller goes on came from
	// the server or a proxy dropping the call, e.g. on shutdown.
	codes.Canceled: Transient,
	// A non-status error from a handler, or a broken response: may be
	// passing.
	codes.Unknown: Transient,
	// The request is wrong; it stays wrong.
	codes.InvalidArgument: Permanent,
	// This attempt ran out of time (the caller's deadline is Stopped):
	// the link or the server was slow.
	codes.DeadlineExceeded: Transient,
	// The election, device or entry is not there; asking again will not
	// make it so.
	codes.NotFound:      Permanent,
	codes.AlreadyExists: Permanent,
	// The key is not allowed to do this.
	codes.PermissionDenied: Permanent,
	// The server is busy or rate-limiting. (tallyd also says this of a
	// batch over its limits, which a retry does not fix; a caller's retry
	// budget bounds that case.)
	codes.ResourceExhausted: Transient,
	// The election is not in a state for this (not open, already
	// closed): a person has to act first.
	codes.FailedPrecondition: Permanent,
	// The server gave up on a conflict; the call is idempotent, so the
	// same bytes again are safe.
	codes.Aborted:    Transient,
	codes.OutOfRange: Permanent,
	// This server does not have the call: an older tallyd.
	codes.Unimplemented: Permanent,
	// The server hit a bug and logged it; it may be passing.
	codes.Internal: Transient,
	// No connection, a dropped link, or a server shutting down.
	codes.Unavailable: Transient,
	// Lost or corrupt data wants a person, not a loop.
	codes.DataLoss: Permanent,
	// The call's signature or enrollment was refused.
	codes.Unauthenticated: Permanent,
}

// Classify says whether the call that failed with err is worth trying
// again. ctx is the caller's context, the one that outlives its attempts,
// not a per-attempt timeout: once it has ended, or its deadline has
// passed, the answer is Stopped whatever err says. A gRPC status anywhere
// in err's chain (%w) is looked up in the table; a context error without
// one is Stopped; any other error is this machine's own and Permanent, as
// is nil.
func Classify(ctx context.Context, err error) Class {
	if err == nil {
		return Permanent
	}
	if ended(ctx) {
		return Stopped
	}
	if s, ok := status.FromError(err); ok {
		if c, ok := classes[s.Code()]; ok {
			return c
		}
		return Permanent // a code newer than this table
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Stopped
	}
	return Permanent
}

// ended reports whether ctx has ended or its deadline has passed. The
// second catches a call the server timed out (it enforces the caller's
// deadline too, and its answer can arrive a moment before ctx's own timer
// fires).
func ended(ctx context.Context) bool {
	if ctx == nil {
		return false
	}
	if ctx.Err() != nil {
		return true
	}
	d, ok := ctx.Deadline()
	return ok && !time.Now().Before(d)
}

// Retryable reports whether trying the call that failed with err again,
// after a backoff, may succeed: Classify(ctx, err) == Transient.
func Retryable(ctx context.Context, err error) bool {
	return Classify(ctx, err) == Transient
}

// Unreachable reports whether err means no answer came from the server:
// it could not be reached (Unavailable: no connection, a dropped link) or
// did not answer in time (DeadlineExceeded). Such a call is Transient
// while the caller's context lives; whatever was to be sent is still to be
// sent. An *UnreachableError anywhere in err's chain counts too.
func Unreachable(err error) bool {
	if err == nil {
		return false
	}
	var u *UnreachableError
	if errors.As(err, &u) {
		return true
	}
	s, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch s.Code() {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return false
}

// UnreachableError is an Unreachable error for people: it names the
// server and gives the gRPC message without the code.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the server at %s: %v", e.Server, status.Convert(e.Err).Message())
}

func (e *UnreachableError) Unwrap() error { return e.Err }
