package tally

import (
	"strconv"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// Count is a sum by area (0.01 m²) and by headcount (distinct owners).
type Count struct {
	Area      int64 `json:"area"`
	Headcount int64 `json:"headcount"`
}

func (c *Count) add(n Count) {
	c.Area += n.Area
	c.Headcount += n.Headcount
}

func (c *Count) sub(n Count) {
	c.Area -= n.Area
	c.Headcount -= n.Headcount
}

// Totals is the running tally: the sum of every owner's Contribution and
// the unit counters. The store keeps it in one key, so a tally read is one
// UnmarshalBinary and one Decide, whatever the number of ballots.
//
// A Totals is not safe for concurrent use; the store changes it inside one
// transaction.
type Totals struct {
	rosterUnits int64
	counted     int64 // units with a counted ballot
	held        int64 // contested units held for the committee
	double      int64 // units with identical live ballots, counted once
	items       []itemTotals
}

type itemTotals struct {
	participating, yes, no, abstain, invalid Count
	held                                     int64
	support                                  []Count // one per candidate
}

// NewTotals returns the totals of an election no ballot has reached yet.
func NewTotals(def *election.Definition) *Totals {
	t := &Totals{items: make([]itemTotals, len(def.Items))}
	for i := range def.Items {
		if def.Items[i].Kind == election.KindCandidates {
			t.items[i].support = make([]Count, len(def.Items[i].Candidates))
		}
	}
	return t
}

// SetRosterUnits records the number of units on the roster, which the
// Result reports. The store sets it once when the roster is frozen; it is
// part of the binary form.
func (t *Totals) SetRosterUnits(n int) { t.rosterUnits = int64(n) }

// Fits reports whether t has the shape of def: the same number of items
// and of candidates per item. The store checks it after UnmarshalBinary,
// so totals read back from a damaged or mismatched file are an error, not
// a tally in which Decide treats anything missing as zero.
func (t *Totals) Fits(def *election.Definition) error {
	if len(t.items) != len(def.Items) {
		return election.Errorf(election.CodeInvalid, "totals", "have %d items, the election has %d", len(t.items), len(def.Items))
	}
	for i := range def.Items {
		want := 0
		if def.Items[i].Kind == election.KindCandidates {
			want = len(def.Items[i].Candidates)
		}
		if len(t.items[i].support) != want {
			return election.Errorf(election.CodeInvalid, "totals.items["+strconv.Itoa(i)+"]", "have %d candidates, item %q has %d", len(t.items[i].support), def.Items[i].ID, want)
		}
	}
	return nil
}

// Add adds an owner's contribution.
func (t *Totals) Add(c Contribution) { t.apply(c, (*Count).add, 1) }

// Sub removes an owner's contribution. When an owner's state changes the
// store calls Sub(old) then Add(new).
func (t *Totals) Sub(c Contribution) { t.apply(c, (*Count).sub, -1) }

func (t *Totals) apply(c Contribution, op func(*Count, Count), sign int64) {
	for i := range min(len(c.Items), len(t.items)) {
		ic, ti := &c.Items[i], &t.items[i]
		op(&ti.participating, ic.Participating)
		op(&ti.yes, ic.Yes)
		op(&ti.no, ic.No)
		op(&ti.abstain, ic.Abstain)
		op(&ti.invalid, ic.Invalid)
		ti.held += sign * ic.Held
		for _, s := range ic.Support {
			if s.Candidate >= 0 && s.Candidate < len(ti.support) {
				op(&ti.support[s.Candidate], s.Support)
			}
		}
	}
}

// ApplyUnit moves the unit counters (counted, contested and held, double
// visit) from a unit's old outcome to its new one. A unit that had no
// outcome yet has the zero UnitOutcome.
func (t *Totals) ApplyUnit(before, after UnitOutcome) {
	t.counted += b2i(after.Counted) - b2i(before.Counted)
	t.held += b2i(after.Held()) - b2i(before.Held())
	t.double += b2i(after.Double) - b2i(before.Double)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
