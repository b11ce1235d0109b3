package tally_test

import (
	"math"
	"reflect"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

func motionDef(th election.Threshold) *election.Definition {
	return &election.Definition{ID: "e1", Items: []election.Item{{ID: "m", Kind: election.KindMotion, Threshold: th}}}
}

func candDef(seats int, ids ...string) *election.Definition {
	it := election.Item{ID: "c", Kind: election.KindCandidates, Seats: seats}
	for _, id := range ids {
		it.Candidates = append(it.Candidates, election.Candidate{ID: id, Name: id})
	}
	return &election.Definition{ID: "e1", Items: []election.Item{it}}
}

// totalsOf builds totals for a one-item definition from one contribution,
// as if all owners' contributions had been summed into it.
func totalsOf(t *testing.T, def *election.Definition, ic tally.ItemContribution) *tally.Totals {
	t.Helper()
	tt := tally.NewTotals(def)
	tt.Add(tally.Contribution{Items: []tally.ItemContribution{ic}})
	return tt
}

func c(area, head int64) tally.Count { return tally.Count{Area: area, Headcount: head} }

func TestDecideMotion(t *testing.T) {
	tests := []struct {
		name       string
		th         election.Threshold
		rosterArea int64
		rosterHead int
		ic         tally.ItemContribution
		quorum     bool
		outcome    string
	}{
		// Roster 300 area / 30 owners: quorum needs 200 and 20.
		{"quorum exactly at 2/3", election.Ordinary, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(200, 20)}, true, tally.OutcomePassed},
		{"area just under 2/3", election.Ordinary, 300, 30, tally.ItemContribution{Participating: c(199, 20), Yes: c(199, 20)}, false, tally.OutcomeNoQuorum},
		{"headcount just under 2/3", election.Ordinary, 300, 30, tally.ItemContribution{Participating: c(200, 19), Yes: c(200, 19)}, false, tally.OutcomeNoQuorum},
		{"abstaining takes part", election.Ordinary, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(101, 11), Abstain: c(99, 9)}, true, tally.OutcomePassed},
		{"ordinary: area exactly 1/2 fails", election.Ordinary, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(100, 11), No: c(100, 9)}, true, tally.OutcomeFailed},
		{"ordinary: headcount exactly 1/2 fails", election.Ordinary, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(101, 10), No: c(99, 10)}, true, tally.OutcomeFailed},
		{"ordinary: just over 1/2 passes", election.Ordinary, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(101, 11), No: c(99, 9)}, true, tally.OutcomePassed},
		{"ordinary: invalid counts as taking part", election.Ordinary, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(100, 10), Invalid: c(100, 10)}, true, tally.OutcomeFailed},
		{"special: exactly 3/4 passes", election.Special, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(150, 15), No: c(50, 5)}, true, tally.OutcomePassed},
		{"special: area under 3/4 fails", election.Special, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(149, 15), No: c(51, 5)}, true, tally.OutcomeFailed},
		{"special: headcount under 3/4 fails", election.Special, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(150, 14), No: c(50, 6)}, true, tally.OutcomeFailed},
		{"special: held split owner is not yes", election.Special, 300, 30, tally.ItemContribution{Participating: c(200, 20), Yes: c(200, 14), Held: 6}, true, tally.OutcomeFailed},
		{"special without quorum", election.Special, 300, 30, tally.ItemContribution{Participating: c(100, 10), Yes: c(100, 10)}, false, tally.OutcomeNoQuorum},
		// Values no roster reaches, as corrupt storage might hold: the
		// comparisons must not overflow.
		{"huge areas do not overflow", election.Special, math.MaxInt64, 3, tally.ItemContribution{Participating: c(math.MaxInt64, 2), Yes: c(math.MaxInt64, 2)}, true, tally.OutcomePassed},
		{"huge areas just under 2/3", election.Ordinary, math.MaxInt64, 3, tally.ItemContribution{Participating: c(math.MaxInt64/3*2, 2), Yes: c(math.MaxInt64/3*2, 2)}, false, tally.OutcomeNoQuorum},
		{"negative participation never meets quorum", election.Ordinary, 300, 30, tally.ItemContribution{Participating: c(math.MinInt64, 20), Yes: c(math.MinInt64, 20)}, false, tally.OutcomeNoQuorum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := motionDef(tt.th)
			res := tally.Decide(def, tt.rosterArea, tt.rosterHead, totalsOf(t, def, tt.ic))
			got := res.Items[0]
			wantTh := "ordinary"
			if tt.th == election.Special {
				wantTh = "special"
			}
			want := tally.ItemResult{
				ItemID: "m", Kind: tally.KindMotion, Threshold: wantTh, Outcome: tt.outcome, QuorumMet: tt.quorum,
				Participating: tt.ic.Participating, Yes: tt.ic.Yes, No: tt.ic.No, Abstain: tt.ic.Abstain, Invalid: tt.ic.Invalid,
				HeldHeadcount: tt.ic.Held,
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestDecideCandidates(t *testing.T) {
	type cand struct {
		id                      string
		support                 tally.Count
		qualified, elected, tie bool
		rank                    int
	}
	tests := []struct {
		name    string
		seats   int
		p       tally.Count // participating; roster is 300 / 30
		invalid tally.Count
		support map[string]tally.Count // by candidate id of a, b, c, d
		outcome string
		want    []cand // in display order
	}{
		{
			name: "top seats elected", seats: 2, p: c(200, 20),
			support: map[string]tally.Count{"a": c(150, 15), "b": c(120, 12), "c": c(101, 11), "d": c(100, 10)},
			outcome: tally.OutcomeElected,
			want: []cand{
				{"a", c(150, 15), true, true, false, 1},
				{"b", c(120, 12), true, true, false, 2},
				{"c", c(101, 11), true, false, false, 3},
				{"d", c(100, 10), false, false, false, 0},
			},
		},
		{
			// Over-K ballots are invalid on this item: they take part (in
			// p) but support no one, so "b" with exactly half of the area
			// does not qualify.
			name: "invalid over-K selections take part but support no one", seats: 1, p: c(200, 20), invalid: c(60, 6),
			support: map[string]tally.Count{"a": c(101, 11), "b": c(100, 14)},
			outcome: tally.OutcomeElected,
			want: []cand{
				{"a", c(101, 11), true, true, false, 1},
				{"b", c(100, 14), false, false, false, 0},
				{"c", c(0, 0), false, false, false, 0},
				{"d", c(0, 0), false, false, false, 0},
			},
		},
		{
			name: "a tie straddling the last seat goes to the committee", seats: 2, p: c(200, 20),
			support: map[string]tally.Count{"a": c(150, 15), "b": c(120, 12), "c": c(120, 12), "d": c(130, 11)},
			outcome: tally.OutcomeTie,
			want: []cand{
				{"a", c(150, 15), true, true, false, 1},
				{"b", c(120, 12), true, false, true, 2},
				{"c", c(120, 12), true, false, true, 2},
				{"d", c(130, 11), true, false, false, 4},
			},
		},
		{
			name: "a tie of everyone for one seat", seats: 1, p: c(200, 20),
			support: map[string]tally.Count{"a": c(120, 12), "b": c(120, 12), "c": c(120, 12)},
			outcome: tally.OutcomeTie,
			want: []cand{
				{"a", c(120, 12), true, false, true, 1},
				{"b", c(120, 12), true, false, true, 1},
				{"c", c(120, 12), true, false, true, 1},
				{"d", c(0, 0), false, false, false, 0},
			},
		},
		{
			name: "a tie inside the seats elects both", seats: 2, p: c(200, 20),
			support: map[string]tally.Count{"a": c(120, 12), "b": c(120, 12), "c": c(101, 11)},
			outcome: tally.OutcomeElected,
			want: []cand{
				{"a", c(120, 12), true, true, false, 1},
				{"b", c(120, 12), true, true, false, 1},
				{"c", c(101, 11), true, false, false, 3},
				{"d", c(0, 0), false, false, false, 0},
			},
		},
		{
			name: "equal headcount, more area wins the last seat", seats: 1, p: c(200, 20),
			support: map[string]tally.Count{"a": c(119, 12), "b": c(120, 12)},
			outcome: tally.OutcomeElected,
			want: []cand{
				{"b", c(120, 12), true, true, false, 1},
				{"a", c(119, 12), true, false, false, 2},
				{"c", c(0, 0), false, false, false, 0},
				{"d", c(0, 0), false, false, false, 0},
			},
		},
		{
			name: "headcount ranks before area", seats: 1, p: c(200, 20),
			support: map[string]tally.Count{"a": c(190, 12), "b": c(120, 13)},
			outcome: tally.OutcomeElected,
			want: []cand{
				{"b", c(120, 13), true, true, false, 1},
				{"a", c(190, 12), true, false, false, 2},
				{"c", c(0, 0), false, false, false, 0},
				{"d", c(0, 0), false, false, false, 0},
			},
		},
		{
			name: "fewer qualified than seats", seats: 3, p: c(200, 20),
			support: map[string]tally.Count{"a": c(150, 15), "b": c(180, 10), "c": c(90, 19)},
			outcome: tally.OutcomeElected,
			want: []cand{
				{"a", c(150, 15), true, true, false, 1},
				{"c", c(90, 19), false, false, false, 0},
				{"b", c(180, 10), false, false, false, 0},
				{"d", c(0, 0), false, false, false, 0},
			},
		},
		{
			name: "no quorum elects no one", seats: 1, p: c(199, 20),
			support: map[string]tally.Count{"a": c(150, 15)},
			outcome: tally.OutcomeNoQuorum,
			want: []cand{
				{"a", c(150, 15), true, false, false, 1},
				{"b", c(0, 0), false, false, false, 0},
				{"c", c(0, 0), false, false, false, 0},
				{"d", c(0, 0), false, false, false, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := candDef(tt.seats, "a", "b", "c", "d")
			ic := tally.ItemContribution{Participating: tt.p, Invalid: tt.invalid}
			for j, cd := range def.Items[0].Candidates {
				if s, ok := tt.support[cd.ID]; ok {
					ic.Support = append(ic.Support, tally.CandidateSupport{Candidate: j, Support: s})
				}
			}
			got := tally.Decide(def, 300, 30, totalsOf(t, def, ic)).Items[0]
			if got.Outcome != tt.outcome || got.Kind != tally.KindCandidates || got.Seats != tt.seats || got.Invalid != tt.invalid {
				t.Errorf("outcome %q kind %q seats %d invalid %+v; want %q %q %d %+v", got.Outcome, got.Kind, got.Seats, got.Invalid, tt.outcome, tally.KindCandidates, tt.seats, tt.invalid)
			}
			var want []tally.CandidateResult
			for _, w := range tt.want {
				want = append(want, tally.CandidateResult{CandidateID: w.id, Support: w.support, Qualified: w.qualified, Elected: w.elected, Tied: w.tie, Rank: w.rank})
			}
			if !reflect.DeepEqual(got.Candidates, want) {
				t.Errorf("candidates\n got %+v\nwant %+v", got.Candidates, want)
			}
		})
	}
}

func TestDecideUnitCountersAndShape(t *testing.T) {
	def := &election.Definition{ID: "e9", Items: []election.Item{
		{ID: "m", Kind: election.KindMotion, Threshold: election.Ordinary},
		{ID: "c", Kind: election.KindCandidates, Seats: 1, Candidates: []election.Candidate{{ID: "x"}}},
	}}
	tt := tally.NewTotals(def)
	tt.SetRosterUnits(7)
	tt.ApplyUnit(tally.UnitOutcome{}, tally.UnitOutcome{Counted: true, Double: true})
	tt.ApplyUnit(tally.UnitOutcome{}, tally.UnitOutcome{Contested: true})
	tt.ApplyUnit(tally.UnitOutcome{}, tally.UnitOutcome{Contested: true, Counted: true}) // first/last policy: counted, not held
	tt.ApplyUnit(tally.UnitOutcome{}, tally.UnitOutcome{Contested: true, Adjudicated: true})
	tt.ApplyUnit(tally.UnitOutcome{}, tally.UnitOutcome{Contested: true, Live: []string{"p", "q"}})
	tt.ApplyUnit(tally.UnitOutcome{Contested: true}, tally.UnitOutcome{Counted: true}) // one held unit settled
	if err := tt.Fits(def); err != nil {
		t.Fatalf("Fits: %v", err)
	}
	r := tally.Decide(def, 100, 5, tt)
	if r.Format != tally.Format || r.ElectionID != "e9" || r.RosterArea != 100 || r.RosterHeadcount != 5 || r.RosterUnits != 7 {
		t.Errorf("header %+v", r)
	}
	if r.UnitsCounted != 3 || r.UnitsContested != 1 || r.UnitsDouble != 1 {
		t.Errorf("counted %d contested %d double %d; want 3 1 1", r.UnitsCounted, r.UnitsContested, r.UnitsDouble)
	}
	if len(r.Items) != 2 || r.Items[0].ItemID != "m" || r.Items[1].ItemID != "c" {
		t.Errorf("items %+v", r.Items)
	}
	if err := tt.Fits(motionDef(election.Ordinary)); err == nil {
		t.Error("Fits accepted a definition of another shape")
	}
	// Decide reads what it has and counts the rest as zero.
	small := tally.NewTotals(motionDef(election.Ordinary))
	if r := tally.Decide(def, 100, 5, small); len(r.Items) != 2 || r.Items[1].Outcome != tally.OutcomeNoQuorum {
		t.Errorf("decide on mismatched totals: %+v", r.Items)
	}
}

func TestCanonicalJSON(t *testing.T) {
	def := &election.Definition{ID: "e<1>", Items: []election.Item{
		{ID: "m", Kind: election.KindMotion, Threshold: election.Special},
		{ID: "c", Kind: election.KindCandidates, Seats: 1, Candidates: []election.Candidate{{ID: "x"}, {ID: "y"}}},
	}}
	tt := tally.NewTotals(def)
	tt.SetRosterUnits(3)
	tt.Add(tally.Contribution{Items: []tally.ItemContribution{
		{Participating: c(300, 2), Yes: c(300, 2)},
		{Participating: c(300, 2), Support: []tally.CandidateSupport{{Candidate: 1, Support: c(200, 2)}}, Abstain: c(100, 0)},
	}})
	tt.ApplyUnit(tally.UnitOutcome{}, tally.UnitOutcome{Counted: true})
	r := tally.Decide(def, 300, 2, tt)
	want := `{"format":"doorstep-tally-v1","election_id":"e<1>","roster_area":300,"roster_headcount":2,"roster_units":3,"units_counted":1,"units_contested":0,"units_double":0,"items":[` +
		`{"item_id":"m","kind":"motion","threshold":"special","outcome":"passed","quorum_met":true,"participating":{"area":300,"headcount":2},"yes":{"area":300,"headcount":2},"no":{"area":0,"headcount":0},"abstain":{"area":0,"headcount":0},"invalid":{"area":0,"headcount":0},"held_headcount":0},` +
		`{"item_id":"c","kind":"candidates","seats":1,"outcome":"elected","quorum_met":true,"participating":{"area":300,"headcount":2},"yes":{"area":0,"headcount":0},"no":{"area":0,"headcount":0},"abstain":{"area":100,"headcount":0},"invalid":{"area":0,"headcount":0},"held_headcount":0,"candidates":[` +
		`{"candidate_id":"y","support":{"area":200,"headcount":2},"qualified":true,"elected":true,"tied":false,"rank":1},` +
		`{"candidate_id":"x","support":{"area":0,"headcount":0},"qualified":false,"elected":false,"tied":false,"rank":0}]}]}` + "\n"
	if got := string(r.CanonicalJSON()); got != want {
		t.Errorf("CanonicalJSON\n got %s\nwant %s", got, want)
	}
}
