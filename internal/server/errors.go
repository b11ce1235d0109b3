package server

import (
	"context"
	"errors"
	"log/slog"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// grpcCodes is the one table from domain error codes to gRPC status codes.
var grpcCodes = map[election.Code]codes.Code{
	election.CodeInvalid:            codes.InvalidArgument,
	election.CodeNotFound:           codes.NotFound,
	election.CodeConflict:           codes.AlreadyExists,
	election.CodeFailedPrecondition: codes.FailedPrecondition,
	election.CodePermissionDenied:   codes.PermissionDenied,
	election.CodeUnauthenticated:    codes.Unauthenticated,
	election.CodeTooLarge:           codes.ResourceExhausted,
	election.CodeUnavailable:        codes.Unavailable,
	// Not Unavailable: the server is there and answering, and devices
	// say Unavailable means they cannot reach it.
	election.CodeResourceExhausted: codes.ResourceExhausted,
}

// toStatus turns an error into a status a client may see. Domain errors
// keep their message and name the bad field; anything else is logged and
// answered with a generic message, so internals never reach clients.
func toStatus(ctx context.Context, log *slog.Logger, method string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the call ran out of time; the server may still have stored it: retrying is safe")
	}
	var de *election.Error
	if errors.As(err, &de) {
		code, ok := grpcCodes[de.Code]
		if !ok {
			code = codes.Unknown
		}
		st := status.New(code, de.Error())
		if de.Field != "" && code == codes.InvalidArgument {
			if withDetails, derr := st.WithDetails(&errdetails.BadRequest{
				FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: de.Field, Description: de.Msg}},
			}); derr == nil {
				st = withDetails
			}
		}
		return st.Err()
	}
	log.ErrorContext(ctx, "internal error", "method", method, "err", err)
	return status.Error(codes.Internal, "the server hit an internal error and logged it; try again, and tell the operator if it persists")
}
