package tally

import (
	"slices"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// Compute is the batch reference: it reconciles every unit of the roster
// from scratch and counts owner by owner. The auditor's verifier uses it;
// it is written apart from OwnerState so that tests comparing the two check
// both.
//
// ballots holds each unit's ballots by unit id; unitDecisions the latest
// decision per unit id; ownerDecisions every decision per owner key (the
// latest per item wins, see OwnerDecision.After). Units, decisions and
// owners not on the roster are ignored. The outcomes map has an entry for
// every roster unit with ballots or a decision.
func Compute(def *election.Definition, roster *election.Roster, ballots map[string][]Ballot,
	unitDecisions map[string]UnitDecision, ownerDecisions map[string][]OwnerDecision) (Result, map[string]UnitOutcome) {
	t := NewTotals(def)
	units := roster.Units()
	t.SetRosterUnits(len(units))
	// Sized up front: growing maps of a million units is most of the
	// cost of the pass.
	outcomes := make(map[string]UnitOutcome, len(ballots)+len(unitDecisions))

	type counted struct {
		area  int64
		marks election.Marks
	}
	byOwner := make(map[string][]counted, roster.Headcount())
	for _, u := range units {
		bs := ballots[u.ID]
		d, decided := unitDecisions[u.ID]
		if len(bs) == 0 && !decided {
			continue
		}
		var dp *UnitDecision
		if decided {
			dp = &d
		}
		out := ReconcileUnit(def.Policy, bs, dp)
		outcomes[u.ID] = out
		t.ApplyUnit(UnitOutcome{}, out)
		// Marks that do not match the definition cannot be counted per
		// item; OwnerState.AddUnit skips them the same way.
		if out.Counted && len(out.Marks) == len(def.Items) {
			byOwner[u.OwnerKey] = append(byOwner[u.OwnerKey], counted{u.Area, out.Marks})
		}
	}

	owners := make([]string, 0, len(byOwner))
	for k := range byOwner {
		owners = append(owners, k)
	}
	slices.Sort(owners) // sums do not depend on order; this keeps runs alike
	for _, key := range owners {
		cs := byOwner[key]
		latest := latestOwnerDecisions(len(def.Items), ownerDecisions[key])
		for i := range def.Items {
			it, ti := &def.Items[i], &t.items[i]
			ti.participating.Headcount++
			agree := true
			for _, c := range cs {
				ti.participating.Area += c.area
				ti.count(it, c.marks[i], Count{Area: c.area})
				agree = agree && c.marks[i].Equal(cs[0].marks[i])
			}
			switch {
			case agree:
				ti.count(it, cs[0].marks[i], Count{Headcount: 1})
			case latest[i] != nil && fits(it, latest[i].Mark):
				ti.count(it, latest[i].Mark, Count{Headcount: 1})
			default:
				ti.held++
			}
		}
	}
	return Decide(def, roster.TotalArea(), roster.Headcount(), t), outcomes
}

// count adds n for mark m on item it.
func (ti *itemTotals) count(it *election.Item, m election.Mark, n Count) {
	switch classify(it, m) {
	case bucketYes:
		ti.yes.add(n)
	case bucketNo:
		ti.no.add(n)
	case bucketInvalid:
		ti.invalid.add(n)
	case bucketPicks:
		for _, p := range m.Picks {
			ti.support[p].add(n) // classify checked p is in range
		}
	default:
		ti.abstain.add(n)
	}
}

// latestOwnerDecisions returns, per item, the latest decision that
// OwnerState.SetDecision would keep, or nil.
func latestOwnerDecisions(items int, ds []OwnerDecision) []*OwnerDecision {
	latest := make([]*OwnerDecision, items)
	for k := range ds {
		d := &ds[k]
		if d.Item < 0 || d.Item >= items || !wellFormed(d.Mark) { // as OwnerState.SetDecision
			continue
		}
		if latest[d.Item] == nil || d.After(*latest[d.Item]) {
			latest[d.Item] = d
		}
	}
	return latest
}
