package tally_test

import (
	"reflect"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

func twoItemDef() *election.Definition {
	return &election.Definition{ID: "e", Items: []election.Item{
		{ID: "m", Kind: election.KindMotion, Threshold: election.Ordinary},
		{ID: "c", Kind: election.KindCandidates, Seats: 2, Candidates: []election.Candidate{{ID: "x"}, {ID: "y"}, {ID: "z"}}},
	}}
}

func mk(kind election.MarkKind, picks ...uint16) election.Mark {
	return election.Mark{Kind: kind, Picks: picks}
}

func TestOwnerStateContribution(t *testing.T) {
	var (
		yesXY = election.Marks{mk(election.MarkYes), mk(election.MarkPicks, 0, 1)}
		noY   = election.Marks{mk(election.MarkNo), mk(election.MarkPicks, 1)}
		absIn = election.Marks{mk(election.MarkAbstain), mk(election.MarkInvalid)}
	)
	type unit struct {
		area  int64
		marks election.Marks
	}
	tests := []struct {
		name      string
		add       []unit
		remove    []unit
		decisions []tally.OwnerDecision
		want      tally.Contribution
	}{
		{
			name: "no counted unit contributes nothing",
			want: tally.Contribution{},
		},
		{
			name: "units that agree give one headcount to their mark",
			add:  []unit{{100, yesXY}, {50, yesXY}},
			want: tally.Contribution{Items: []tally.ItemContribution{
				{Participating: c(150, 1), Yes: c(150, 1)},
				{Participating: c(150, 1), Support: []tally.CandidateSupport{{0, c(150, 1)}, {1, c(150, 1)}}},
			}},
		},
		{
			name: "units that disagree make a split owner, held",
			add:  []unit{{100, yesXY}, {50, noY}},
			want: tally.Contribution{Items: []tally.ItemContribution{
				{Participating: c(150, 1), Yes: c(100, 0), No: c(50, 0), Held: 1},
				{Participating: c(150, 1), Support: []tally.CandidateSupport{{0, c(100, 0)}, {1, c(150, 0)}}, Held: 1},
			}, Split: []int{0, 1}},
		},
		{
			name:      "the latest decision settles a split item whatever the order",
			add:       []unit{{100, yesXY}, {50, noY}},
			decisions: []tally.OwnerDecision{{Seq: 9, Item: 1, Mark: mk(election.MarkPicks, 1)}, {Seq: 3, Item: 1, Mark: mk(election.MarkAbstain)}},
			want: tally.Contribution{Items: []tally.ItemContribution{
				{Participating: c(150, 1), Yes: c(100, 0), No: c(50, 0), Held: 1},
				{Participating: c(150, 1), Support: []tally.CandidateSupport{{0, c(100, 0)}, {1, c(150, 1)}}},
			}, Split: []int{0}},
		},
		{
			name:      "a decision matters only while the units disagree",
			add:       []unit{{100, yesXY}},
			decisions: []tally.OwnerDecision{{Seq: 1, Item: 0, Mark: mk(election.MarkNo)}},
			want: tally.Contribution{Items: []tally.ItemContribution{
				{Participating: c(100, 1), Yes: c(100, 1)},
				{Participating: c(100, 1), Support: []tally.CandidateSupport{{0, c(100, 1)}, {1, c(100, 1)}}},
			}},
		},
		{
			name:      "a decision that does not fit the item leaves it held",
			add:       []unit{{100, yesXY}, {50, noY}},
			decisions: []tally.OwnerDecision{{Seq: 1, Item: 0, Mark: mk(election.MarkPicks, 0)}, {Seq: 2, Item: 1, Mark: mk(election.MarkYes)}, {Seq: 3, Item: 5, Mark: mk(election.MarkNo)}},
			want: tally.Contribution{Items: []tally.ItemContribution{
				{Participating: c(150, 1), Yes: c(100, 0), No: c(50, 0), Held: 1},
				{Participating: c(150, 1), Support: []tally.CandidateSupport{{0, c(100, 0)}, {1, c(150, 0)}}, Held: 1},
			}, Split: []int{0, 1}},
		},
		{
			name:   "removing a unit undoes it",
			add:    []unit{{100, yesXY}, {50, noY}, {20, absIn}},
			remove: []unit{{50, noY}},
			want: tally.Contribution{Items: []tally.ItemContribution{
				{Participating: c(120, 1), Yes: c(100, 0), Abstain: c(20, 0), Held: 1},
				{Participating: c(120, 1), Support: []tally.CandidateSupport{{0, c(100, 0)}, {1, c(100, 0)}}, Invalid: c(20, 0), Held: 1},
			}, Split: []int{0, 1}},
		},
		{
			name:   "removing what was never added, or marks of the wrong length, changes nothing",
			add:    []unit{{20, absIn}},
			remove: []unit{{50, noY}, {20, nil}, {20, election.Marks{mk(election.MarkAbstain)}}},
			want: tally.Contribution{Items: []tally.ItemContribution{
				{Participating: c(20, 1), Abstain: c(20, 1)},
				{Participating: c(20, 1), Invalid: c(20, 1)},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := twoItemDef()
			o := tally.NewOwnerState(def)
			for _, u := range tt.add {
				o.AddUnit(u.area, u.marks)
			}
			for _, u := range tt.remove {
				o.RemoveUnit(u.area, u.marks)
			}
			for _, d := range tt.decisions {
				o.SetDecision(d)
			}
			got := o.Contribution(def)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Contribution\n got %+v\nwant %+v", got, tt.want)
			}
			// The binary form carries the whole state.
			var back tally.OwnerState
			roundTrip(t, o, &back)
			if again := back.Contribution(def); !reflect.DeepEqual(again, got) {
				t.Errorf("after round trip\n got %+v\nwant %+v", again, got)
			}
		})
	}
}

// The developer holds thousands of units under one key: the state grows
// with the number of distinct marks, not with the units.
func TestOwnerStateDeveloperBlock(t *testing.T) {
	def := twoItemDef()
	o := tally.NewOwnerState(def)
	same := election.Marks{mk(election.MarkNo), mk(election.MarkPicks, 2)}
	for range 5000 {
		o.AddUnit(8950, same)
	}
	b1, err := o.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	o.AddUnit(8950, same)
	b2, err := o.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b1) > 32 || len(b2) != len(b1) {
		t.Errorf("state of 5000 units is %d bytes, of 5001 units %d bytes; want a small constant", len(b1), len(b2))
	}
	got := o.Contribution(def)
	want := tally.Contribution{Items: []tally.ItemContribution{
		{Participating: c(5001*8950, 1), No: c(5001*8950, 1)},
		{Participating: c(5001*8950, 1), Support: []tally.CandidateSupport{{2, c(5001*8950, 1)}}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Contribution\n got %+v\nwant %+v", got, want)
	}
}

func TestCheckMark(t *testing.T) {
	def := twoItemDef()
	tests := []struct {
		item int
		m    election.Mark
		ok   bool
	}{
		{0, mk(election.MarkYes), true},
		{0, mk(election.MarkNo), true},
		{0, mk(election.MarkAbstain), true},
		{0, mk(election.MarkInvalid), true},
		{0, mk(election.MarkPicks, 0), false},
		{0, election.Mark{Kind: election.MarkYes, Picks: []uint16{1}}, false},
		{1, mk(election.MarkPicks, 0, 2), true},
		{1, mk(election.MarkPicks, 0, 1, 2), false}, // more than the 2 seats
		{1, mk(election.MarkPicks, 2, 0), false},    // not ascending
		{1, mk(election.MarkPicks, 1, 1), false},    // twice
		{1, mk(election.MarkPicks, 3), false},       // no such candidate
		{1, mk(election.MarkPicks), false},          // no picks
		{1, mk(election.MarkYes), false},
		{1, mk(election.MarkAbstain), true},
		{1, election.Mark{Kind: 99}, false},
		{2, mk(election.MarkYes), false},
		{-1, mk(election.MarkYes), false},
	}
	for _, tt := range tests {
		err := tally.CheckMark(def, tt.item, tt.m)
		if (err == nil) != tt.ok {
			t.Errorf("CheckMark(%d, %+v) = %v, want ok=%v", tt.item, tt.m, err, tt.ok)
		}
		if err != nil && election.ErrorCode(err) != election.CodeInvalid {
			t.Errorf("CheckMark(%d, %+v) code %v, want invalid", tt.item, tt.m, election.ErrorCode(err))
		}
	}
}
