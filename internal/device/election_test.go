package device

import (
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

var verifyUnits = []election.Unit{
	{ID: "1-1-101", Area: 8950, OwnerKey: "a", Building: "1"},
	{ID: "1-1-102", Area: 9000, OwnerKey: "b", Building: "1"},
}

func verifyDefinition(key []byte) *doorstepv1.ElectionDefinition {
	return &doorstepv1.ElectionDefinition{
		ElectionId: "e1", Title: "t", CommitteePublicKey: key,
		Items:        []*doorstepv1.Item{{ItemId: "m", Title: "m", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY}}}},
		SyncDeadline: timestamppb.New(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)),
	}
}

// committeeChain returns signed committee records: definition, then acts.
func committeeChain(t testing.TB, acts ...*doorstepv1.CommitteeAction) (*signedtest.Author, []*doorstepv1.SignedRecord) {
	a := signedtest.NewAuthor("e1", election.CommitteeAuthor, "committee", time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC))
	srs := []*doorstepv1.SignedRecord{a.Committee(t, signedtest.Define(verifyDefinition(a.Public())))}
	for _, act := range acts {
		srs = append(srs, a.Committee(t, act))
	}
	return a, srs
}

func TestVerifyElection(t *testing.T) {
	other := signedtest.NewAuthor("e1", election.CommitteeAuthor, "someone else", time.Now())
	otherUnits := append([]election.Unit{{ID: "9-9-999", Area: 1, OwnerKey: "z"}}, verifyUnits...)
	tests := []struct {
		name    string
		records func(t *testing.T) []*doorstepv1.SignedRecord
		pinned  []byte
		wantErr error // nil: any error is enough when ok is false
		ok      bool
	}{
		{name: "definition only", ok: true, records: func(t *testing.T) []*doorstepv1.SignedRecord {
			_, srs := committeeChain(t)
			return srs
		}},
		{name: "roster, open, close", ok: true, records: func(t *testing.T) []*doorstepv1.SignedRecord {
			_, srs := committeeChain(t, signedtest.Roster(verifyUnits), signedtest.Open(verifyUnits), signedtest.Close())
			return srs
		}},
		{name: "none", records: func(t *testing.T) []*doorstepv1.SignedRecord { return nil }},
		{name: "roster first", records: func(t *testing.T) []*doorstepv1.SignedRecord {
			_, srs := committeeChain(t, signedtest.Roster(verifyUnits))
			return srs[1:]
		}},
		{name: "signed by another key", wantErr: signed.ErrBadSignature, records: func(t *testing.T) []*doorstepv1.SignedRecord {
			_, srs := committeeChain(t)
			return append(srs, other.Committee(t, signedtest.Roster(verifyUnits)))
		}},
		{name: "open names another roster", wantErr: ErrEquivocation, records: func(t *testing.T) []*doorstepv1.SignedRecord {
			_, srs := committeeChain(t, signedtest.Roster(verifyUnits), signedtest.Open(otherUnits))
			return srs
		}},
		{name: "out of order", records: func(t *testing.T) []*doorstepv1.SignedRecord {
			_, srs := committeeChain(t, signedtest.Roster(verifyUnits), signedtest.Close())
			srs[1], srs[2] = srs[2], srs[1]
			return srs
		}},
		{name: "committee key changed", wantErr: ErrEquivocation, records: func(t *testing.T) []*doorstepv1.SignedRecord {
			_, srs := committeeChain(t)
			return srs
		}, pinned: other.Public()},
		{name: "duplicate unit", records: func(t *testing.T) []*doorstepv1.SignedRecord {
			_, srs := committeeChain(t, signedtest.Roster(verifyUnits), signedtest.Roster(verifyUnits[:1]))
			return srs
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := verifyElection("e1", tt.records(t), tt.pinned)
			if tt.ok {
				if err != nil {
					t.Fatalf("verifyElection: %v", err)
				}
				if v.def.ID != "e1" {
					t.Errorf("definition %+v", v.def)
				}
				return
			}
			if err == nil {
				t.Fatal("verifyElection accepted bad records")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("verifyElection: %v; want %v", err, tt.wantErr)
			}
		})
	}
	_, srs := committeeChain(t, signedtest.Roster(verifyUnits), signedtest.Open(verifyUnits), signedtest.Close())
	v, err := verifyElection("e1", srs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !v.state.Opened || v.state.ClosedAt.IsZero() || v.state.RosterUnits != 2 || v.state.CommitteeSeq != 4 || v.roster == nil {
		t.Errorf("state = %+v", v.state)
	}
}

// FuzzVerifyElection feeds arbitrary bodies, properly signed by the
// committee, after a good definition: whatever a server sends, the device
// answers with an error or a consistent view, never a panic.
func FuzzVerifyElection(f *testing.F) {
	a, srs := committeeChain(f, signedtest.Roster(verifyUnits), signedtest.Open(verifyUnits), signedtest.Close())
	for _, sr := range srs[1:] {
		f.Add(sr.GetBody())
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		recs := []*doorstepv1.SignedRecord{srs[0], signed.SignBody(a.Key, body)}
		v, err := verifyElection("e1", recs, nil)
		if err != nil {
			return
		}
		if v.def == nil || v.state.CommitteeSeq < 2 {
			t.Errorf("accepted view %+v", v)
		}
		if v.roster != nil && v.state.RosterUnits != len(v.roster.Units()) {
			t.Errorf("roster has %d units; state says %d", len(v.roster.Units()), v.state.RosterUnits)
		}
	})
}
