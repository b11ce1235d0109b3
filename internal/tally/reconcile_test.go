package tally_test

import (
	"reflect"
	"slices"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

var (
	yes = election.Marks{{Kind: election.MarkYes}}
	no  = election.Marks{{Kind: election.MarkNo}}
)

func ballot(id, device string, hlc uint64, supersedes string, marks election.Marks) tally.Ballot {
	return tally.Ballot{RecordID: id, DeviceID: device, HLC: hlc, Supersedes: supersedes, Marks: marks}
}

func TestReconcileUnit(t *testing.T) {
	tests := []struct {
		name     string
		policy   election.Policy
		ballots  []tally.Ballot
		decision *tally.UnitDecision
		want     tally.UnitOutcome
	}{
		{
			name: "no ballots",
			want: tally.UnitOutcome{},
		},
		{
			name:    "single ballot counts",
			ballots: []tally.Ballot{ballot("a", "d1", 5, "", yes)},
			want:    tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "a", Live: []string{"a"}},
		},
		{
			name:    "identical doubles count once under the lowest id",
			ballots: []tally.Ballot{ballot("c", "d2", 1, "", yes), ballot("b", "d1", 9, "", yes)},
			want:    tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "b", Live: []string{"b", "c"}, Double: true},
		},
		{
			name:    "the same record twice is one ballot",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("a", "d1", 1, "", yes)},
			want:    tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "a", Live: []string{"a"}},
		},
		{
			name:    "differing ballots are held under hold",
			policy:  election.PolicyHold,
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "", no)},
			want:    tally.UnitOutcome{Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:    "policy 0 means hold",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "", no)},
			want:    tally.UnitOutcome{Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:    "first counts the earliest clock",
			policy:  election.PolicyFirst,
			ballots: []tally.Ballot{ballot("a", "d1", 7, "", yes), ballot("b", "d2", 3, "", no), ballot("c", "d3", 5, "", yes)},
			want:    tally.UnitOutcome{Counted: true, Marks: no, CountedID: "b", Live: []string{"a", "b", "c"}, Contested: true},
		},
		{
			name:    "last counts the latest clock",
			policy:  election.PolicyLast,
			ballots: []tally.Ballot{ballot("a", "d1", 7, "", yes), ballot("b", "d2", 3, "", no), ballot("c", "d3", 5, "", no)},
			want:    tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "a", Live: []string{"a", "b", "c"}, Contested: true},
		},
		{
			name:    "first breaks a clock tie by the lower device id",
			policy:  election.PolicyFirst,
			ballots: []tally.Ballot{ballot("a", "d9", 4, "", yes), ballot("b", "d1", 4, "", no)},
			want:    tally.UnitOutcome{Counted: true, Marks: no, CountedID: "b", Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:    "last breaks a clock tie by the higher device id",
			policy:  election.PolicyLast,
			ballots: []tally.Ballot{ballot("a", "d9", 4, "", yes), ballot("b", "d1", 4, "", no)},
			want:    tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "a", Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:    "last breaks a clock and device tie by the higher record id",
			policy:  election.PolicyLast,
			ballots: []tally.Ballot{ballot("b", "d1", 4, "", yes), ballot("a", "d1", 4, "", no)},
			want:    tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "b", Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:    "a supersede chain leaves its head",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d1", 2, "a", no), ballot("c", "d1", 3, "b", yes)},
			want:    tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "c", Live: []string{"c"}},
		},
		{
			name:    "another device's ballot is not superseded: both stay live",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "a", no)},
			want:    tally.UnitOutcome{Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:    "naming another device's ballot as superseded changes nothing, even when they agree",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "a", yes)},
			want:    tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "a", Live: []string{"a", "b"}, Double: true},
		},
		{
			name:    "a superseded ballot does not contest",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d1", 2, "a", no)},
			want:    tally.UnitOutcome{Counted: true, Marks: no, CountedID: "b", Live: []string{"b"}},
		},
		{
			name:    "superseding an unknown id supersedes nothing yet",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d1", 2, "zz", no)},
			want:    tally.UnitOutcome{Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:    "a ballot naming itself supersedes nothing",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "a", yes)},
			want:    tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "a", Live: []string{"a"}},
		},
		{
			name:    "a cycle leaves no live ballot and is contested",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "b", yes), ballot("b", "d2", 2, "a", no)},
			want:    tally.UnitOutcome{Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:    "a cycle of identical ballots is still contested",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "b", yes), ballot("b", "d1", 2, "a", yes)},
			want:    tally.UnitOutcome{Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:    "a cycle under first counts the earliest",
			policy:  election.PolicyFirst,
			ballots: []tally.Ballot{ballot("a", "d2", 8, "c", yes), ballot("b", "d2", 2, "a", no), ballot("c", "d2", 5, "b", yes)},
			want:    tally.UnitOutcome{Counted: true, Marks: no, CountedID: "b", Live: []string{"a", "b", "c"}, Contested: true},
		},
		{
			name:    "a cycle beside a live ballot leaves the live one",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "b", yes), ballot("b", "d1", 2, "a", no), ballot("c", "d3", 3, "", no)},
			want:    tally.UnitOutcome{Counted: true, Marks: no, CountedID: "c", Live: []string{"c"}},
		},
		{
			name:     "a decision counts the named ballot even if superseded",
			ballots:  []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d1", 2, "a", no)},
			decision: &tally.UnitDecision{Seq: 1, CountedRecordID: "a"},
			want:     tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "a", Live: []string{"b"}, Adjudicated: true},
		},
		{
			name:     "a decision settles a held unit",
			ballots:  []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "", no)},
			decision: &tally.UnitDecision{Seq: 3, CountedRecordID: "b"},
			want:     tally.UnitOutcome{Counted: true, Marks: no, CountedID: "b", Live: []string{"a", "b"}, Contested: true, Adjudicated: true},
		},
		{
			name:     "a decision overrides the policy",
			policy:   election.PolicyFirst,
			ballots:  []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "", no)},
			decision: &tally.UnitDecision{Seq: 3, CountedRecordID: "b"},
			want:     tally.UnitOutcome{Counted: true, Marks: no, CountedID: "b", Live: []string{"a", "b"}, Contested: true, Adjudicated: true},
		},
		{
			name:     "a decision to count none",
			ballots:  []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d1", 2, "", yes)},
			decision: &tally.UnitDecision{Seq: 1},
			want:     tally.UnitOutcome{Live: []string{"a", "b"}, Double: true, Adjudicated: true},
		},
		{
			name:     "a decision to count none on a unit without ballots",
			decision: &tally.UnitDecision{Seq: 1},
			want:     tally.UnitOutcome{Adjudicated: true},
		},
		{
			name:     "a decision naming an unknown record leaves the unit as reconciled",
			ballots:  []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "", no)},
			decision: &tally.UnitDecision{Seq: 1, CountedRecordID: "zz"},
			want:     tally.UnitOutcome{Live: []string{"a", "b"}, Contested: true},
		},
		{
			name:     "a decision naming an unknown record leaves a counted unit counted",
			ballots:  []tally.Ballot{ballot("a", "d1", 1, "", yes)},
			decision: &tally.UnitDecision{Seq: 1, CountedRecordID: "zz"},
			want:     tally.UnitOutcome{Counted: true, Marks: yes, CountedID: "a", Live: []string{"a"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Every rotation and the reverse of the input must give the
			// same outcome: order of arrival never matters.
			for _, bs := range orders(tt.ballots) {
				got := tally.ReconcileUnit(tt.policy, bs, tt.decision)
				if !reflect.DeepEqual(got, tt.want) {
					t.Fatalf("ReconcileUnit(%v)\n got %+v\nwant %+v", ids(bs), got, tt.want)
				}
				if got.Held() != (tt.want.Contested && !tt.want.Counted && !tt.want.Adjudicated) {
					t.Errorf("Held() = %v for %+v", got.Held(), got)
				}
			}
		})
	}
}

func TestReconcileUnitDoesNotModifyInput(t *testing.T) {
	in := []tally.Ballot{ballot("c", "d1", 3, "a", no), ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "", yes)}
	before := slices.Clone(in)
	tally.ReconcileUnit(election.PolicyLast, in, &tally.UnitDecision{Seq: 1, CountedRecordID: "a"})
	if !reflect.DeepEqual(in, before) {
		t.Errorf("input changed: got %v, want %v", ids(in), ids(before))
	}
}

func TestUnitDecisionAfter(t *testing.T) {
	tests := []struct {
		d, o tally.UnitDecision
		want bool
	}{
		{tally.UnitDecision{Seq: 2}, tally.UnitDecision{Seq: 1, CountedRecordID: "z"}, true},
		{tally.UnitDecision{Seq: 1, CountedRecordID: "z"}, tally.UnitDecision{Seq: 2}, false},
		{tally.UnitDecision{Seq: 2, CountedRecordID: "b"}, tally.UnitDecision{Seq: 2, CountedRecordID: "a"}, true},
		{tally.UnitDecision{Seq: 2, CountedRecordID: "a"}, tally.UnitDecision{Seq: 2, CountedRecordID: "a"}, false},
	}
	for _, tt := range tests {
		if got := tt.d.After(tt.o); got != tt.want {
			t.Errorf("%+v.After(%+v) = %v, want %v", tt.d, tt.o, got, tt.want)
		}
	}
}

// orders returns bs in every rotation and reversed.
func orders(bs []tally.Ballot) [][]tally.Ballot {
	out := [][]tally.Ballot{slices.Clone(bs)}
	for i := 1; i < len(bs); i++ {
		out = append(out, append(slices.Clone(bs[i:]), bs[:i]...))
	}
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	return append(out, rev)
}

func ids(bs []tally.Ballot) []string {
	out := make([]string, len(bs))
	for i, b := range bs {
		out[i] = b.RecordID
	}
	return out
}
