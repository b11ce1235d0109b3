package tally

import (
	"cmp"
	"slices"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// OwnerDecision settles a split owner's headcount vote on one item: Mark
// gets the owner's headcount. Validate Mark with CheckMark first.
type OwnerDecision struct {
	Seq  uint64
	Item int // index into the definition's items
	Mark election.Mark
}

// After reports whether d replaces o as the latest decision on an item: the
// higher Seq wins; equal Seqs (which the committee never issues) are
// ordered by the mark's canonical bytes so the choice never depends on
// arrival order.
func (d OwnerDecision) After(o OwnerDecision) bool {
	if d.Seq != o.Seq {
		return d.Seq > o.Seq
	}
	return markKey(d.Mark) > markKey(o.Mark)
}

// OwnerState aggregates the counted marks of one owner's units, per item.
// It is what the store keeps per owner key. It holds one entry per distinct
// mark, not per unit, so an owner with thousands of units (the developer)
// costs O(items × distinct marks) to store and to turn into a Contribution,
// and AddUnit or RemoveUnit costs O(items × log distinct marks).
//
// An OwnerState is not safe for concurrent use; the store uses it inside
// one transaction.
type OwnerState struct {
	items []ownerItem
}

type ownerItem struct {
	marks    []markCount // distinct marks, ascending by key
	decided  bool
	decision OwnerDecision
}

// markCount is how many of the owner's counted units gave one mark, and
// their area.
type markCount struct {
	key   string // markKey(mark)
	mark  election.Mark
	units int64
	area  int64
}

// NewOwnerState returns the state of an owner none of whose units counts.
func NewOwnerState(def *election.Definition) *OwnerState {
	return &OwnerState{items: make([]ownerItem, len(def.Items))}
}

// AddUnit adds one counted unit of the owner, with its area and its counted
// marks (one per item). Marks of the wrong length, such as the nil marks of
// a unit that does not count, change nothing.
func (o *OwnerState) AddUnit(area int64, marks election.Marks) {
	if len(marks) != len(o.items) {
		return
	}
	for i, m := range marks {
		it := &o.items[i]
		key := markKey(m)
		j, ok := slices.BinarySearchFunc(it.marks, key, compareMarkCount)
		if !ok {
			it.marks = slices.Insert(it.marks, j, markCount{key: key, mark: cloneMark(m)})
		}
		it.marks[j].units++
		it.marks[j].area += area
	}
}

// RemoveUnit undoes an AddUnit with the same area and marks, as when a
// unit's counted ballot changes. Removing what was never added is a caller
// bug; it changes nothing for an unknown mark, and the verifier's Compute
// would show the difference.
func (o *OwnerState) RemoveUnit(area int64, marks election.Marks) {
	if len(marks) != len(o.items) {
		return
	}
	for i, m := range marks {
		it := &o.items[i]
		j, ok := slices.BinarySearchFunc(it.marks, markKey(m), compareMarkCount)
		if !ok {
			continue
		}
		it.marks[j].units--
		it.marks[j].area -= area
		if it.marks[j].units <= 0 {
			it.marks = slices.Delete(it.marks, j, j+1)
		}
	}
}

// SetDecision records a committee decision for one item; the latest (see
// OwnerDecision.After) wins whatever the order they arrive in. It only
// matters while the owner's units disagree on that item. A decision for an
// item out of range, or whose mark is malformed whatever the item (an
// unknown kind, picks on a non-picks mark, picks empty or not strictly
// ascending), is ignored; one whose mark is well formed but does not fit
// its item (see CheckMark) is kept and leaves the owner held.
func (o *OwnerState) SetDecision(d OwnerDecision) {
	if d.Item < 0 || d.Item >= len(o.items) || !wellFormed(d.Mark) {
		return
	}
	it := &o.items[d.Item]
	if it.decided && !d.After(it.decision) {
		return
	}
	d.Mark = cloneMark(d.Mark)
	it.decided, it.decision = true, d
}

// Contribution is what one owner adds to the Totals: the area of each of
// their counted units and their one headcount, per item.
type Contribution struct {
	// Items has one entry per item of the definition, or is nil when no
	// unit of the owner counts.
	Items []ItemContribution
	// Split lists, ascending, the item indexes where the owner's units
	// disagree and no committee decision settles the headcount.
	Split []int
}

// ItemContribution is one owner's share of one item.
type ItemContribution struct {
	Participating, Yes, No, Abstain, Invalid Count
	// Held is 1 when the owner is split and undecided on the item.
	Held int64
	// Support lists the candidates the owner's units picked, ascending by
	// candidate index.
	Support []CandidateSupport
}

// CandidateSupport is the support one candidate gets from one owner.
type CandidateSupport struct {
	Candidate int // index into the item's candidates
	Support   Count
}

// Contribution returns what the owner adds to the totals now. Its cost is
// O(items × distinct marks × picks), independent of the number of units.
func (o *OwnerState) Contribution(def *election.Definition) Contribution {
	var c Contribution
	for i := range min(len(def.Items), len(o.items)) {
		oi := &o.items[i]
		if len(oi.marks) == 0 {
			continue
		}
		if c.Items == nil {
			c.Items = make([]ItemContribution, len(def.Items))
		}
		it, ic := &def.Items[i], &c.Items[i]
		ic.Participating.Headcount = 1
		for _, mc := range oi.marks {
			ic.Participating.Area += mc.area
			ic.add(it, mc.mark, Count{Area: mc.area})
		}
		switch {
		case len(oi.marks) == 1:
			ic.add(it, oi.marks[0].mark, Count{Headcount: 1})
		case oi.decided && fits(it, oi.decision.Mark):
			ic.add(it, oi.decision.Mark, Count{Headcount: 1})
		default:
			ic.Held = 1
			c.Split = append(c.Split, i)
		}
		ic.Support = mergeSupport(ic.Support)
	}
	return c
}

// add counts n for mark m on item it.
func (ic *ItemContribution) add(it *election.Item, m election.Mark, n Count) {
	switch classify(it, m) {
	case bucketYes:
		ic.Yes.add(n)
	case bucketNo:
		ic.No.add(n)
	case bucketInvalid:
		ic.Invalid.add(n)
	case bucketPicks:
		for _, p := range m.Picks {
			ic.Support = append(ic.Support, CandidateSupport{Candidate: int(p), Support: n})
		}
	default:
		ic.Abstain.add(n)
	}
}

// mergeSupport sorts s by candidate and sums entries for the same one.
func mergeSupport(s []CandidateSupport) []CandidateSupport {
	slices.SortFunc(s, func(a, b CandidateSupport) int { return cmp.Compare(a.Candidate, b.Candidate) })
	out := s[:0]
	for _, x := range s {
		if n := len(out); n > 0 && out[n-1].Candidate == x.Candidate {
			out[n-1].Support.add(x.Support)
			continue
		}
		out = append(out, x)
	}
	return out
}

func compareMarkCount(mc markCount, key string) int { return cmp.Compare(mc.key, key) }

func cloneMark(m election.Mark) election.Mark {
	m.Picks = slices.Clone(m.Picks)
	return m
}
