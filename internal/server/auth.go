package server

import (
	"context"

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
	doorstepv1.AuditService_GetCheckpoint_FullMethodName:         roleDevice,
	doorstepv1.AuditService_GetInclusionProof_FullMethodName:     roleDevice,
	doorstepv1.AuditService_GetConsistencyProof_FullMethodName:   roleDevice,
	doorstepv1.AuditService_StreamLogEntries_FullMethodName:      roleCommittee,
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
	caller, err := s.authenticate(ctx, info.FullMethod, r)
	if err != nil {
		return nil, err
	}
	if er, ok := req.(interface{ GetElectionId() string }); ok && er.GetElectionId() != caller.ElectionID {
		return nil, status.Errorf(codes.PermissionDenied, "the call is signed for election %q, not %q", caller.ElectionID, er.GetElectionId())
	}
	return handler(context.WithValue(ctx, callerKey{}, caller), req)
}

// authStream checks streaming calls; handlers compare the request's
// election with the caller's (sameElection).
func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	r, ok := methodRoles[info.FullMethod]
	if !ok {
		return handler(srv, ss)
	}
	caller, err := s.authenticate(ss.Context(), info.FullMethod, r)
	if err != nil {
		return err
	}
	return handler(srv, &callerStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callerKey{}, caller)})
}

type callerStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *callerStream) Context() context.Context { return c.ctx }

// sameElection refuses a request for another election than the caller
// signed for.
func sameElection(ctx context.Context, electionID string) error {
	c, ok := callerFrom(ctx)
	if ok && c.ElectionID != electionID {
		return status.Errorf(codes.PermissionDenied, "the call is signed for election %q, not %q", c.ElectionID, electionID)
	}
	return nil
}

func (s *Server) authenticate(ctx context.Context, method string, r role) (callauth.Caller, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	claimed, ok := callauth.Claimed(md)
	if !ok {
		return callauth.Caller{}, status.Error(codes.Unauthenticated, callauth.ErrMissing.Error())
	}
	none := callauth.Caller{}
	if r == roleCommittee && claimed.KeyID != election.CommitteeAuthor {
		return none, status.Error(codes.PermissionDenied, "only the election committee may do this")
	}
	pub, ok := s.store.AuthorKey(claimed.ElectionID, claimed.KeyID)
	if !ok {
		return none, status.Errorf(codes.Unauthenticated, "%q is not enrolled in election %q: join with an enrollment code first", claimed.KeyID, claimed.ElectionID)
	}
	caller, err := callauth.Check(md, method, pub, s.now())
	if err != nil {
		return none, status.Error(codes.Unauthenticated, err.Error())
	}
	if caller.KeyID != election.CommitteeAuthor {
		revoked, err := s.store.DeviceRevoked(ctx, caller.ElectionID, caller.KeyID)
		if err != nil {
			return none, err
		}
		if revoked {
			return none, status.Error(codes.PermissionDenied, "this device was revoked by the committee")
		}
	}
	return caller, nil
}
