package cli_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

// code grants another enrollment and returns its code as text.
func (s *cvServer) code(t *testing.T, label string) string {
	t.Helper()
	token, err := enrollcode.NewToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := &callauth.Signer{ElectionID: cvElection, KeyID: election.CommitteeAuthor, Key: s.committee.Key}
	conn, err := s.srv.Client().New(s.srv.Addr(), grpc.WithDefaultCallOptions(signer.CallOption()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = doorstepv1.NewElectionServiceClient(conn).SubmitCommitteeRecords(context.Background(), &doorstepv1.SubmitCommitteeRecordsRequest{
		ElectionId: cvElection, Records: []*doorstepv1.SignedRecord{s.committee.Committee(t, signedtest.GrantToken(token, label))},
	})
	if err != nil {
		t.Fatal(err)
	}
	return enrollcode.Encode(enrollcode.Code{Server: s.srv.Addr(), ElectionID: cvElection, Token: token, Fingerprint: s.srv.Fingerprint(), TLS: s.srv.Pin()})
}

// TestCanvassWalkShowsOtherCanvassersWork: after a sync, a second
// canvasser's walk counts the unit the first recorded a ballot at as done
// and never offers it, and shows the first one's visit at the door.
func TestCanvassWalkShowsOtherCanvassersWork(t *testing.T) {
	s := startCvServer(t)
	first, second := newCvEnv(t), newCvEnv(t)
	first.vars["DOORSTEP_DEVICE"] = "v1"
	second.vars["DOORSTEP_DEVICE"] = "v2"
	first.mustRun(t, "", "canvass", "join", s.codeText)
	second.mustRun(t, "", "canvass", "join", s.code(t, "v2"))

	first.mustRun(t, "", "canvass", "record", "--unit", "1-1-101", "--choice", "rules=yes")
	first.mustRun(t, "", "canvass", "record", "--unit", "1-1-102", "--visit", "not-home")
	first.mustRun(t, "", "canvass", "sync")

	// Before its own sync, the second canvasser knows nothing of it.
	out := second.mustRun(t, "q\n", "canvass", "walk", "--buildings", "1", "--offline")
	wantContains(t, out, "Progress: 0 done / 3 left", "Unit 1-1-101 ")

	out = second.mustRun(t, "", "canvass", "sync")
	wantContains(t, out, "Walk list: ")
	out = second.mustRun(t, "s\nq\n", "canvass", "walk", "--buildings", "1", "--offline")
	wantContains(t, out,
		"Route: 3 units.",
		"Progress: 1 done / 2 left",
		"Unit 1-1-102 (building 1, 102.25 m²) — visited before: not home",
		"Unit 1-2-201 ",
	)
	if strings.Contains(out, "Unit 1-1-101") {
		t.Errorf("the second canvasser was offered 1-1-101, where the first recorded a ballot:\n%s", out)
	}
}
