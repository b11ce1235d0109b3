package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// role is a kind of caller. A method's row in methodRoles is the set of
// roles that may call it.
type role uint8

const (
	// rolePublic: anyone, with no credential.
	rolePublic role = 1 << iota
	// roleDevice: an enrolled device, by a call signed with its key; a
	// revoked device only where roleRevoked is in the row too.
	roleDevice
	// roleRevoked lets a revoked device push: its later records are
	// rejected and logged, as evidence, rather than turned away.
	roleRevoked
	// roleCommittee: the election's committee key.
	roleCommittee
	// roleAuditor: a key the committee granted read access with a signed
	// record, until it revokes it.
	roleAuditor
	// roleOperator: whoever runs tallyd, by the operator token it made on
	// first start.
	roleOperator
)

// methodRoles is the one table of who may call what; the interceptors
// below enforce it and every method of Doorstep's services has a row.
var methodRoles = map[string]role{
	doorstepv1.SyncService_GetServerInfo_FullMethodName:  rolePublic,
	doorstepv1.SyncService_Enroll_FullMethodName:         rolePublic, // the one-time token is the credential
	doorstepv1.SyncService_GetElection_FullMethodName:    roleDevice | roleCommittee | roleAuditor,
	doorstepv1.SyncService_GetDeviceState_FullMethodName: roleDevice | roleCommittee, // a device asks only about itself
	doorstepv1.SyncService_PushRecords_FullMethodName:    roleDevice | roleRevoked,   // its own records only
	doorstepv1.SyncService_ListUnitStatus_FullMethodName: roleDevice | roleCommittee,

	doorstepv1.ElectionService_CreateElection_FullMethodName:         roleOperator,
	doorstepv1.ElectionService_SubmitCommitteeRecords_FullMethodName: roleCommittee,
	doorstepv1.ElectionService_GetTally_FullMethodName:               roleCommittee | roleAuditor,
	doorstepv1.ElectionService_ListContestedUnits_FullMethodName:     roleCommittee | roleAuditor,
	doorstepv1.ElectionService_GetCommitteeState_FullMethodName:      roleCommittee,
	doorstepv1.ElectionService_WatchTally_FullMethodName:             roleCommittee | roleAuditor,
	doorstepv1.ElectionService_ListDevices_FullMethodName:            roleCommittee | roleAuditor,
	doorstepv1.ElectionService_ListComments_FullMethodName:           roleCommittee | roleAuditor,

	doorstepv1.AuditService_GetCheckpoint_FullMethodName:       rolePublic,
	doorstepv1.AuditService_GetInclusionProof_FullMethodName:   rolePublic,
	doorstepv1.AuditService_GetConsistencyProof_FullMethodName: rolePublic,
	doorstepv1.AuditService_LookupReceipt_FullMethodName:       rolePublic, // rate-limited per address
	doorstepv1.AuditService_GetPublishedTally_FullMethodName:   rolePublic, // after the close
	doorstepv1.AuditService_StreamLogEntries_FullMethodName:    roleCommittee | roleAuditor,
}

// doorstepService reports whether method is one of Doorstep's own; the
// others (health, reflection) are public, for load balancers and tools.
func doorstepService(method string) bool { return strings.HasPrefix(method, "/doorstep.") }

type callerKey struct{}

// caller is a checked identity: its role and, for signed calls, who.
type caller struct {
	callauth.Caller
	role role
}

// callerFrom returns the checked caller of a call.
func callerFrom(ctx context.Context) (caller, bool) {
	c, ok := ctx.Value(callerKey{}).(caller)
	return c, ok
}

func (s *Server) authUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c, err := s.authorize(ctx, info.FullMethod, req)
	if err != nil {
		return nil, err
	}
	return handler(context.WithValue(ctx, callerKey{}, c), req)
}

// authStream checks a server-streaming call when its one request
// arrives, as the call signature covers the request.
func (s *Server) authStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &authStream{ServerStream: ss, s: s, method: info.FullMethod, ctx: ss.Context()})
}

type authStream struct {
	grpc.ServerStream
	s      *Server
	method string
	ctx    context.Context
	authed bool
}

func (a *authStream) RecvMsg(m any) error {
	if err := a.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if a.authed {
		return status.Error(codes.InvalidArgument, "a Doorstep stream takes one request")
	}
	c, err := a.s.authorize(a.ctx, a.method, m)
	if err != nil {
		return err
	}
	a.authed, a.ctx = true, context.WithValue(a.ctx, callerKey{}, c)
	return nil
}

func (a *authStream) Context() context.Context { return a.ctx }

// authorize finds who makes the call and whether methodRoles lets them.
func (s *Server) authorize(ctx context.Context, method string, req any) (caller, error) {
	if !doorstepService(method) {
		return caller{role: rolePublic}, nil
	}
	allowed, ok := methodRoles[method]
	if !ok {
		return caller{}, status.Error(codes.Unimplemented, "this method is not open to anyone")
	}
	if allowed&rolePublic != 0 {
		return caller{role: rolePublic}, nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if allowed&roleOperator != 0 {
		if s.operator != nil && s.checkOperator(md) {
			return caller{role: roleOperator}, nil
		}
		return caller{}, status.Error(codes.PermissionDenied, "only the operator of this tallyd may do this: give the operator token tallyd made on first start (DOORSTEP_OPERATOR_TOKEN)")
	}
	c, err := s.signedCaller(ctx, md, method, req)
	if err != nil {
		return caller{}, err
	}
	if allowed&c.role == 0 {
		return caller{}, status.Errorf(codes.PermissionDenied, "%s may not call %s", roleName(c.role), shortMethod(method))
	}
	if er, ok := req.(interface{ GetElectionId() string }); ok && er.GetElectionId() != c.ElectionID {
		return caller{}, status.Errorf(codes.PermissionDenied, "the call is signed for election %q, not %q", c.ElectionID, er.GetElectionId())
	}
	return c, nil
}

func (s *Server) checkOperator(md metadata.MD) bool {
	v := md.Get(callauth.OperatorTokenKey)
	if len(v) != 1 {
		return false
	}
	h := sha256.Sum256([]byte(v[0]))
	return subtle.ConstantTimeCompare(h[:], s.operator) == 1
}

// signedCaller checks a call signature, once, and says whose it is.
func (s *Server) signedCaller(ctx context.Context, md metadata.MD, method string, req any) (caller, error) {
	claimed, ok := callauth.Claimed(md)
	if !ok {
		return caller{}, status.Error(codes.Unauthenticated, callauth.ErrMissing.Error())
	}
	if err := election.CheckID("election_id", claimed.ElectionID); err != nil {
		return caller{}, err
	}
	if _, ok := s.store.Definition(claimed.ElectionID); !ok {
		return caller{}, status.Errorf(codes.NotFound, "there is no election %q on this server: check the election id and the server address", claimed.ElectionID)
	}
	c := caller{Caller: claimed}
	pub, _ := s.store.AuthorKey(claimed.ElectionID, claimed.KeyID)
	revoked := false
	switch {
	case claimed.KeyID == election.CommitteeAuthor:
		c.role = roleCommittee
	case strings.HasPrefix(claimed.KeyID, "au-"):
		var known bool
		pub, revoked, known = s.store.AuditorKey(claimed.ElectionID, claimed.KeyID)
		if !known {
			pub = nil
		}
		c.role = roleAuditor
	default:
		c.role = roleDevice
	}
	if pub == nil {
		return caller{}, status.Errorf(codes.Unauthenticated, "%q has no access to election %q: a device joins with an enrollment code, an auditor is granted by the committee", claimed.KeyID, claimed.ElectionID)
	}
	h, err := callauth.RequestHash(req)
	if err != nil {
		return caller{}, err
	}
	checked, nonce, err := callauth.Check(md, method, h, pub, s.now())
	if err != nil {
		return caller{}, status.Error(codes.Unauthenticated, err.Error())
	}
	if err := s.replays.Use(checked.KeyID, nonce, s.now()); err != nil {
		code := codes.Unauthenticated
		if err == callauth.ErrBusy {
			code = codes.ResourceExhausted
		}
		return caller{}, status.Error(code, err.Error())
	}
	switch c.role {
	case roleAuditor:
		if revoked {
			return caller{}, status.Error(codes.PermissionDenied, "the committee revoked this auditor's access")
		}
	case roleDevice:
		if revoked, err = s.store.DeviceRevoked(ctx, checked.ElectionID, checked.KeyID); err != nil {
			return caller{}, err
		}
		if revoked {
			if methodRoles[method]&roleRevoked == 0 {
				return caller{}, status.Error(codes.PermissionDenied, "this device was revoked by the committee")
			}
			c.role = roleRevoked
		}
	}
	return c, nil
}

func roleName(r role) string {
	switch r {
	case roleDevice:
		return "a device"
	case roleRevoked:
		return "a revoked device"
	case roleCommittee:
		return "the committee"
	case roleAuditor:
		return "an auditor"
	case roleOperator:
		return "the operator"
	}
	return "anyone"
}

func shortMethod(m string) string {
	if i := strings.LastIndexByte(m, '/'); i >= 0 {
		return m[i+1:]
	}
	return m
}
