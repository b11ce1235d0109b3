package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/store"
)

func TestToStatus(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		message string
	}{
		{"invalid names the field", fmt.Errorf("wrapped: %w", election.Errorf(election.CodeInvalid, "area", "must be positive")), codes.InvalidArgument, "area: must be positive"},
		{"not found", election.Errorf(election.CodeNotFound, "election_id", "no such election"), codes.NotFound, "no such election"},
		{"too large", election.Errorf(election.CodeTooLarge, "records", "at most 1000"), codes.ResourceExhausted, "at most 1000"},
		{"permission", election.Errorf(election.CodePermissionDenied, "", "no"), codes.PermissionDenied, "no"},
		{"deadline", context.DeadlineExceeded, codes.DeadlineExceeded, "retrying is safe"},
		{"disk full says what to do and keeps the path inside", fmt.Errorf("store commit: %w: %w", store.ErrDiskFull, &fs.PathError{Op: "write", Path: "/var/lib/doorstep/tally.db", Err: syscall.ENOSPC}),
			codes.ResourceExhausted, "the server is out of disk space; your ballots are kept on this device and will be sent again"},
		{"internal details stay inside", errors.New("bolt: page 4242 corrupt at /var/lib/x"), codes.Internal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(toStatus(context.Background(), log, "/m", tt.err))
			if st.Code() != tt.code || !strings.Contains(st.Message(), tt.message) {
				t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), tt.code, tt.message)
			}
			if strings.Contains(st.Message(), "page 4242") || strings.Contains(st.Message(), "/var/lib") {
				t.Fatalf("internal detail leaked: %q", st.Message())
			}
		})
	}
	st := status.Convert(toStatus(context.Background(), log, "/m", election.Errorf(election.CodeInvalid, "owner_key", "is required")))
	var found bool
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok && br.FieldViolations[0].Field == "owner_key" {
			found = true
		}
	}
	if !found {
		t.Errorf("no BadRequest detail naming the field: %v", st.Details())
	}
	// Every domain code has a row in the table.
	for c := election.CodeInvalid; c <= election.CodeResourceExhausted; c++ {
		if _, ok := grpcCodes[c]; !ok {
			t.Errorf("domain code %v has no gRPC code", c)
		}
	}
}
