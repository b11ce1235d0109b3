package tally

import (
	"bytes"
	"cmp"
	"encoding/json"
	"math/bits"
	"slices"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// Format names the layout of Result's canonical JSON. It changes whenever
// a field is added, removed or reinterpreted.
const Format = "doorstep-tally-v1"

// Item kinds and outcomes as they appear in a Result.
const (
	KindMotion     = "motion"
	KindCandidates = "candidates"

	OutcomePassed   = "passed"
	OutcomeFailed   = "failed"
	OutcomeNoQuorum = "no_quorum"
	OutcomeElected  = "elected"
	OutcomeTie      = "tie"
)

// Result is the tally of an election judged against the thresholds: what
// the committee watches and, once closed, publishes.
type Result struct {
	Format          string       `json:"format"`
	ElectionID      string       `json:"election_id"`
	RosterArea      int64        `json:"roster_area"`
	RosterHeadcount int          `json:"roster_headcount"`
	RosterUnits     int          `json:"roster_units"`
	UnitsCounted    int          `json:"units_counted"`
	UnitsContested  int          `json:"units_contested"` // held for the committee
	UnitsDouble     int          `json:"units_double"`
	Items           []ItemResult `json:"items"`
}

// ItemResult is the count and outcome of one item.
type ItemResult struct {
	ItemID        string            `json:"item_id"`
	Kind          string            `json:"kind"`                // KindMotion or KindCandidates
	Threshold     string            `json:"threshold,omitempty"` // motions: "ordinary" or "special"
	Seats         int               `json:"seats,omitempty"`     // candidate elections
	Outcome       string            `json:"outcome"`
	QuorumMet     bool              `json:"quorum_met"`
	Participating Count             `json:"participating"`
	Yes           Count             `json:"yes"`
	No            Count             `json:"no"`
	Abstain       Count             `json:"abstain"`
	Invalid       Count             `json:"invalid"`
	HeldHeadcount int64             `json:"held_headcount"` // split owners awaiting the committee
	Candidates    []CandidateResult `json:"candidates,omitempty"`
}

// CandidateResult is one candidate's support and standing. Candidates are
// listed qualified first by rank, then the rest by headcount and area, ties
// in candidate id order.
type CandidateResult struct {
	CandidateID string `json:"candidate_id"`
	Support     Count  `json:"support"`
	Qualified   bool   `json:"qualified"`
	Elected     bool   `json:"elected"`
	Tied        bool   `json:"tied"`
	// Rank is 1 + the number of qualified candidates with more support
	// (tied candidates share a rank); 0 when not qualified.
	Rank int `json:"rank"`
}

// CanonicalJSON returns the published form of the result: compact JSON,
// fields in the order declared above, no HTML escaping, and a final
// newline. The same set of records always gives the same bytes.
func (r *Result) CanonicalJSON() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// Result holds only strings, integers, booleans and slices of them:
	// encoding cannot fail.
	_ = enc.Encode(r)
	return buf.Bytes()
}

// Decide applies the legal thresholds to t for an election whose roster
// totals rosterArea (0.01 m²) and rosterHeadcount owners. It is pure and
// costs O(items + candidates log candidates). Parts of t missing for def's
// shape (see Totals.Fits) count as zero.
//
// Per item: quorum is participating area ≥ 2/3 of the roster's and
// participating headcount ≥ 2/3 of the roster's. An ORDINARY motion passes
// with yes > 1/2 of participating area and of participating headcount; a
// SPECIAL one with yes ≥ 3/4 of both. A candidate qualifies with support >
// 1/2 of participating area and headcount; qualified candidates are ranked
// by headcount then area and fill the seats, except that a group tied on
// both across the last seat is reported as tied, not elected.
//
// Every comparison is an exact cross-multiplication in 128 bits. Real
// values are far smaller (areas up to 1e8 per unit × 1e6 units = 1e14, ×4
// is 4e14 < 9.2e18 = MaxInt64), but totals read from storage are not
// trusted to be.
func Decide(def *election.Definition, rosterArea int64, rosterHeadcount int, t *Totals) Result {
	r := Result{
		Format:          Format,
		ElectionID:      def.ID,
		RosterArea:      rosterArea,
		RosterHeadcount: rosterHeadcount,
		RosterUnits:     int(t.rosterUnits),
		UnitsCounted:    int(t.counted),
		UnitsContested:  int(t.held),
		UnitsDouble:     int(t.double),
		Items:           make([]ItemResult, len(def.Items)),
	}
	roster := Count{Area: rosterArea, Headcount: int64(rosterHeadcount)}
	for i := range def.Items {
		var ti itemTotals
		if i < len(t.items) {
			ti = t.items[i]
		}
		r.Items[i] = decideItem(&def.Items[i], roster, &ti)
	}
	return r
}

func decideItem(it *election.Item, roster Count, ti *itemTotals) ItemResult {
	p := ti.participating
	ir := ItemResult{
		ItemID:        it.ID,
		Participating: p,
		Yes:           ti.yes,
		No:            ti.no,
		Abstain:       ti.abstain,
		Invalid:       ti.invalid,
		HeldHeadcount: ti.held,
		QuorumMet:     atLeast(p, 3, roster, 2),
	}
	if it.Kind != election.KindCandidates {
		ir.Kind = KindMotion
		special := it.Threshold == election.Special
		ir.Threshold = "ordinary"
		if special {
			ir.Threshold = "special"
		}
		switch {
		case !ir.QuorumMet:
			ir.Outcome = OutcomeNoQuorum
		case !special && moreThan(ti.yes, 2, p, 1), special && atLeast(ti.yes, 4, p, 3):
			ir.Outcome = OutcomePassed
		default:
			ir.Outcome = OutcomeFailed
		}
		return ir
	}
	ir.Kind = KindCandidates
	ir.Seats = it.Seats
	ir.Candidates, ir.Outcome = decideCandidates(it, ti, ir.QuorumMet)
	return ir
}

func decideCandidates(it *election.Item, ti *itemTotals, quorum bool) ([]CandidateResult, string) {
	p := ti.participating
	cs := make([]CandidateResult, len(it.Candidates))
	for j, c := range it.Candidates {
		cs[j].CandidateID = c.ID
		if j < len(ti.support) {
			cs[j].Support = ti.support[j]
		}
		cs[j].Qualified = moreThan(cs[j].Support, 2, p, 1)
	}
	slices.SortFunc(cs, func(a, b CandidateResult) int {
		if a.Qualified != b.Qualified {
			if a.Qualified {
				return -1
			}
			return 1
		}
		if c := compareSupport(a.Support, b.Support); c != 0 {
			return c
		}
		return cmp.Compare(a.CandidateID, b.CandidateID)
	})
	q := 0 // qualified candidates, at the front of cs
	for q < len(cs) && cs[q].Qualified {
		if q > 0 && compareSupport(cs[q].Support, cs[q-1].Support) == 0 {
			cs[q].Rank = cs[q-1].Rank
		} else {
			cs[q].Rank = q + 1
		}
		q++
	}
	if !quorum {
		return cs, OutcomeNoQuorum
	}
	seats := max(it.Seats, 0)
	if q <= seats {
		for j := range q {
			cs[j].Elected = true
		}
		return cs, OutcomeElected
	}
	if seats > 0 && compareSupport(cs[seats-1].Support, cs[seats].Support) == 0 {
		// The group tied with the last seat straddles it: those ranked
		// above the group are elected, the group is left to the committee.
		for j := range q {
			if compareSupport(cs[j].Support, cs[seats-1].Support) == 0 {
				cs[j].Tied = true
			} else if j < seats {
				cs[j].Elected = true
			}
		}
		return cs, OutcomeTie
	}
	for j := range seats {
		cs[j].Elected = true
	}
	return cs, OutcomeElected
}

// compareSupport orders support from strongest: more headcount first, then
// more area.
func compareSupport(a, b Count) int {
	if c := cmp.Compare(b.Headcount, a.Headcount); c != 0 {
		return c
	}
	return cmp.Compare(b.Area, a.Area)
}

// moreThan reports whether a×pa > b×pb for both area and headcount.
func moreThan(a Count, pa int64, b Count, pb int64) bool {
	return cmpScaled(a.Area, pa, b.Area, pb) > 0 && cmpScaled(a.Headcount, pa, b.Headcount, pb) > 0
}

// atLeast reports whether a×pa ≥ b×pb for both area and headcount.
func atLeast(a Count, pa int64, b Count, pb int64) bool {
	return cmpScaled(a.Area, pa, b.Area, pb) >= 0 && cmpScaled(a.Headcount, pa, b.Headcount, pb) >= 0
}

// cmpScaled compares a×pa with b×pb exactly for any int64 a, b and small
// positive factors pa, pb.
func cmpScaled(a, pa, b, pb int64) int {
	ah, al := mul128(a, pa)
	bh, bl := mul128(b, pb)
	if c := cmp.Compare(ah, bh); c != 0 {
		return c
	}
	return cmp.Compare(al, bl)
}

// mul128 returns a×p (p > 0) as a two's complement 128-bit integer.
func mul128(a, p int64) (hi int64, lo uint64) {
	neg := a < 0
	mag := uint64(a)
	if neg {
		mag = -mag // also right for MinInt64: 1<<63
	}
	h, l := bits.Mul64(mag, uint64(p))
	if neg {
		h, l = ^h, ^l+1
		if l == 0 {
			h++
		}
	}
	return int64(h), l
}
