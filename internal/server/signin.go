package server

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// The browser dashboard's sign-in: the committee (or an auditor) signs,
// on its own machine, a call to a method no one can call over gRPC, and
// the dashboard exchanges that signature once for a session. The same
// checks as a signed call's apply: the key, callauth's window, the nonce
// used once, and the role.

// SignIn checks a sign-in token, given as the metadata of a signed call
// of callauth.SignInMethod (callauth.ParseSignInToken), and returns who signed it: the election's committee or
// an auditor it granted access and has not revoked. A token is accepted
// once, within callauth.Window of the server's clock.
func (s *Server) SignIn(ctx context.Context, md metadata.MD) (callauth.Caller, error) {
	claimed, ok := callauth.Claimed(md)
	if !ok {
		return callauth.Caller{}, status.Error(codes.Unauthenticated, "the sign-in link is incomplete: copy the whole link, or make a new one with 'doorstep committee dashboard'")
	}
	c, err := s.signedCaller(ctx, md, callauth.SignInMethod, callauth.SignInRequest(claimed.ElectionID))
	if err != nil {
		return callauth.Caller{}, err
	}
	if c.role&(roleCommittee|roleAuditor) == 0 {
		return callauth.Caller{}, status.Errorf(codes.PermissionDenied, "%s may not see the dashboard: only the committee and the auditors it granted may", roleName(c.role))
	}
	return c.Caller, nil
}

// ReadAccess says whether keyID may still read election electionID as
// the committee or an auditor: nil, or why not (an auditor the committee
// revoked, a key the server does not know).
func (s *Server) ReadAccess(electionID, keyID string) error {
	if _, ok := s.store.Definition(electionID); !ok {
		return status.Errorf(codes.NotFound, "there is no election %q on this server", electionID)
	}
	if pub, _ := s.store.AuthorKey(electionID, keyID); pub != nil && keyID == election.CommitteeAuthor {
		return nil
	}
	if _, revoked, known := s.store.AuditorKey(electionID, keyID); known {
		if revoked {
			return status.Error(codes.PermissionDenied, "the committee revoked this auditor's access")
		}
		return nil
	}
	return status.Errorf(codes.PermissionDenied, "%q has no read access to election %q", keyID, electionID)
}

// Overviews is the live overview the WatchTally stream sends, for the
// other watchers of the same elections.
func (s *Server) Overviews() *Overviews { return s.overviews }
