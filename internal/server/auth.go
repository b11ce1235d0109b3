package server

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// who may call what. Methods not listed need no call signature: pushes and
// committee submissions are signed records, enrollment carries its token,
// server info is public.
type role int

const (
	roleDevice    role = iota + 1 // an enrolled, unrevoked device or the committee
	roleCommittee                 // the committee key only
)

var methodRoles = map[string]role{
	doorstepv1.SyncService_GetElection_FullMethodName:            roleDevice,
	doorstepv1.SyncService_GetDeviceState_FullMethodName:         roleDevice,
	doorstepv1.SyncService_ListUnitStatus_FullMethodName:         roleDevice,
	doorstepv1.ElectionService_GetTally_FullMethodName:           roleCommittee,
	doorstepv1.ElectionService_ListContestedUnits_FullMethodName: roleCommittee,
	doorstepv1.ElectionService_GetCommitteeState_FullMethodName:  roleCommittee,
}

type callerKey struct{}

// callerFrom returns the checked caller of an authenticated method.
func callerFrom(ctx context.Context) (callauth.Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(callauth.Caller)
	return c, ok
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	r, ok := methodRoles[info.FullMethod]
	if !ok {
		return handler(ctx, req)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	claimed, ok := callauth.Claimed(md)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, callauth.ErrMissing.Error())
	}
	if r == roleCommittee && claimed.KeyID != election.CommitteeAuthor {
		return nil, status.Error(codes.PermissionDenied, "only the election committee may do this")
	}
	pub, ok := s.store.AuthorKey(claimed.ElectionID, claimed.KeyID)
	if !ok {
		return nil, status.Errorf(codes.Unauthenticated, "%q is not enrolled in election %q: join with an enrollment code first", claimed.KeyID, claimed.ElectionID)
	}
	caller, err := callauth.Check(md, info.FullMethod, pub, s.now())
	if err != nil {
		code := codes.Unauthenticated
		if errors.Is(err, callauth.ErrExpired) {
			code = codes.Unauthenticated
		}
		return nil, status.Error(code, err.Error())
	}
	if caller.KeyID != election.CommitteeAuthor {
		st, err := s.store.DeviceState(ctx, caller.ElectionID, caller.KeyID)
		if err != nil {
			return nil, err
		}
		if st.Revoked {
			return nil, status.Error(codes.PermissionDenied, "this device was revoked by the committee")
		}
	}
	if er, ok := req.(interface{ GetElectionId() string }); ok && er.GetElectionId() != caller.ElectionID {
		return nil, status.Errorf(codes.PermissionDenied, "the call is signed for election %q, not %q", caller.ElectionID, er.GetElectionId())
	}
	return handler(context.WithValue(ctx, callerKey{}, caller), req)
}
