package committee_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
	"github.com/doorstep-vote/doorstep/internal/tallyd/tallydtest"
)

// startServer runs a real tallyd on a free loopback port until the test
// ends.
func startServer(t *testing.T) *tallyd.Server {
	t.Helper()
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("stop tallyd: %v", err)
		}
	})
	return srv
}

// TestSession runs the committee's part of an election through a Session
// against a real tallyd: create, roster, open, a refused record, and the
// reads.
func TestSession(t *testing.T) {
	srv := startServer(t)
	dir, pub := newDir(t)
	def := tallydtest.Definition(pub)
	def.SyncDeadline = timestamppb.New(time.Now().Add(24 * time.Hour))
	id := def.GetElectionId()
	ctx := context.Background()

	s, err := committee.OpenSession(context.Background(), dir, id, srv.Addr(), srv.Pin(), 10*time.Second, time.Now, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.ElectionID() != id {
		t.Errorf("ElectionID = %q; want %q", s.ElectionID(), id)
	}

	info, err := s.ServerInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.GetFingerprint() != srv.Fingerprint() || ballotlog.Fingerprint(info.GetServerPublicKey()) != srv.Fingerprint() {
		t.Errorf("ServerInfo fingerprint %s, key %x; the server's is %s", info.GetFingerprint(), info.GetServerPublicKey(), srv.Fingerprint())
	}

	recs, err := s.Signer().Sign(&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: def}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(ctx, recs[0], srv.OperatorToken()); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if st := s.Signer().State(); st.Acked != 1 || len(st.Pending) != 0 {
		t.Errorf("after Create: acked %d, %d pending; want 1 and 0", st.Acked, len(st.Pending))
	}

	roster, err := election.NewRoster(tallydtest.Units)
	if err != nil {
		t.Fatal(err)
	}
	r, chunks := committee.RosterActions(roster)
	results, err := s.SignAndSend(ctx, func() ([]*doorstepv1.SignedRecord, error) { return s.Signer().SignRoster(r, chunks...) })
	if err != nil {
		t.Fatalf("send the roster: %v", err)
	}
	if len(results) != len(chunks) {
		t.Errorf("%d answers to %d roster records", len(results), len(chunks))
	}
	if err := committee.CheckAccepted(results); err != nil {
		t.Errorf("roster refused: %v", err)
	}
	before := s.Checkpoint()
	if before == nil {
		t.Fatal("no checkpoint after an answer")
	}

	open := &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: r.SHA256}}}
	results, err = s.SignAndSend(ctx, func() ([]*doorstepv1.SignedRecord, error) { return s.Signer().Sign(open) })
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if err := committee.CheckAccepted(results); err != nil {
		t.Errorf("open refused: %v", err)
	}
	if after := s.Checkpoint(); after.GetSize() <= before.GetSize() {
		t.Errorf("the log did not grow: checkpoint %d, then %d", before.GetSize(), after.GetSize())
	}

	cs, err := s.CommitteeState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st := s.Signer().State(); cs.GetHighSeq() != st.Seq || st.Acked != st.Seq {
		t.Errorf("server holds committee records to %d; the chain signed %d and has answers to %d", cs.GetHighSeq(), st.Seq, st.Acked)
	}

	// A second open is refused; the refusal is an answer like any other.
	results, err = s.SignAndSend(ctx, func() ([]*doorstepv1.SignedRecord, error) {
		return s.Signer().Sign(proto.Clone(open).(*doorstepv1.CommitteeAction))
	})
	if err != nil {
		t.Fatalf("second open: %v", err)
	}
	err = committee.CheckAccepted(results)
	if err == nil || !strings.Contains(err.Error(), "the server rejected committee record "+results[0].GetRecordId()) {
		t.Errorf("CheckAccepted = %v; want the refusal of record %s", err, results[0].GetRecordId())
	}
	if st := s.Signer().State(); len(st.Pending) != 0 {
		t.Errorf("%d records still pending after the server answered them", len(st.Pending))
	}

	tl, err := s.Tally(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tl.GetElectionId() != id || tl.GetRosterUnits() != uint64(len(tallydtest.Units)) {
		t.Errorf("tally of %q with %d units; want %q with %d", tl.GetElectionId(), tl.GetRosterUnits(), id, len(tallydtest.Units))
	}
	units, owners, err := s.Contested(ctx)
	if err != nil || len(units) != 0 || len(owners) != 0 {
		t.Errorf("Contested = %d units, %d owners, %v; want none", len(units), len(owners), err)
	}

	// A read-only client needs the key only, not the chain's lock.
	key, err := committee.LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := committee.Dial(srv.Addr(), srv.Pin(), id, key, 10*time.Second, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tl2, err := c.Tally(ctx); err != nil || !proto.Equal(tl2, tl) {
		t.Errorf("the read-only client's tally differs (%v)", err)
	}
	// The errors of calls are the server's statuses, for callers to explain.
	other, err := committee.Dial(srv.Addr(), srv.Pin(), "no-such-election", key, 10*time.Second, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := other.Tally(ctx); err == nil {
		t.Error("a tally of an unknown election")
	} else if _, ok := status.FromError(err); !ok {
		t.Errorf("error %v is not a gRPC status", err)
	}
}

// TestCreateRefused: the server refuses an invalid definition with a
// status, which Create returns as it is; nothing counts as answered, so
// the committee may discard the chain (Signer.DiscardUncreated).
func TestCreateRefused(t *testing.T) {
	srv := startServer(t)
	dir, pub := newDir(t)
	def := tallydtest.Definition(pub)
	def.Items = nil // a ballot sheet with nothing on it
	s, err := committee.OpenSession(context.Background(), dir, def.GetElectionId(), srv.Addr(), srv.Pin(), 10*time.Second, time.Now, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, err := s.Signer().Sign(&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: def}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Create(context.Background(), recs[0], srv.OperatorToken())
	if code := status.Code(err); code != codes.InvalidArgument {
		t.Fatalf("Create of a definition with no items = %v (%v); want InvalidArgument", err, code)
	}
	if st := s.Signer().State(); st.Acked != 0 || len(st.Pending) != 1 {
		t.Errorf("after the refusal: acked %d, %d pending; want 0 and 1", st.Acked, len(st.Pending))
	}
	if err := s.Signer().DiscardUncreated(); err != nil {
		t.Errorf("DiscardUncreated after the refusal: %v", err)
	}
}

func TestRosterActions(t *testing.T) {
	tests := []struct {
		units, wantChunks int
	}{
		{1, 1},
		{committee.RosterChunkUnits, 1},
		{committee.RosterChunkUnits + 1, 2},
		{2*committee.RosterChunkUnits + 7, 3},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.units), func(t *testing.T) {
			us := make([]election.Unit, tt.units)
			for i := range us {
				us[i] = election.Unit{ID: fmt.Sprintf("1-1-%05d", i), Area: 9000 + int64(i%7), OwnerKey: fmt.Sprintf("o-%d", i/2), Building: "1"}
			}
			roster, err := election.NewRoster(us)
			if err != nil {
				t.Fatal(err)
			}
			r, chunks := committee.RosterActions(roster)
			if len(chunks) != tt.wantChunks {
				t.Errorf("%d chunks; want %d", len(chunks), tt.wantChunks)
			}
			var got []election.Unit
			for i, c := range chunks {
				if committee.ActionKind(c) != committee.KindRoster {
					t.Fatalf("chunk %d is a %q action", i, committee.ActionKind(c))
				}
				n := len(c.GetRoster().GetUnits())
				if n == 0 || n > committee.RosterChunkUnits {
					t.Errorf("chunk %d has %d units", i, n)
				}
				got = append(got, rules.Units(c.GetRoster().GetUnits())...)
			}
			if !slices.Equal(got, roster.Units()) {
				t.Error("the chunks do not hold the roster's units in its order")
			}
			h := roster.Hash()
			want := committee.Roster{SHA256: h[:], Units: tt.units, AreaCenti: roster.TotalArea(), Owners: roster.Headcount()}
			if string(r.SHA256) != string(want.SHA256) || r.Units != want.Units || r.AreaCenti != want.AreaCenti || r.Owners != want.Owners {
				t.Errorf("Roster = %+v; want %+v", r, want)
			}
		})
	}
}

// TestCheckAccepted: one error per answer that is not an acceptance,
// none for acceptances.
func TestCheckAccepted(t *testing.T) {
	ok := &doorstepv1.RecordResult{RecordId: "r1", Status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED}
	bad := &doorstepv1.RecordResult{RecordId: "r2", Status: doorstepv1.RecordStatus_RECORD_STATUS_REJECTED,
		Reason: doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, Message: "the election is already open"}
	dup := &doorstepv1.RecordResult{RecordId: "r3", Status: doorstepv1.RecordStatus_RECORD_STATUS_DUPLICATE}
	tests := []struct {
		name    string
		results []*doorstepv1.RecordResult
		want    []string // each refusal's message; none for nil
	}{
		{"none", nil, nil},
		{"all accepted", []*doorstepv1.RecordResult{ok, ok}, nil},
		{"one refused", []*doorstepv1.RecordResult{ok, bad}, []string{"the server rejected committee record r2 (invalid action): the election is already open"}},
		{"not accepted is refused", []*doorstepv1.RecordResult{dup, bad}, []string{"committee record r3 (unspecified)", "committee record r2 (invalid action)"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := committee.CheckAccepted(tt.results)
			if (err == nil) != (len(tt.want) == 0) {
				t.Fatalf("CheckAccepted = %v; want %d refusals", err, len(tt.want))
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
			var joined interface{ Unwrap() []error }
			if len(tt.want) > 0 && (!errors.As(err, &joined) || len(joined.Unwrap()) != len(tt.want)) {
				t.Errorf("CheckAccepted = %v; want %d joined errors", err, len(tt.want))
			}
		})
	}
}
