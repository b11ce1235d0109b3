package tally

import (
	"cmp"
	"slices"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// Ballot is what reconciliation needs of one accepted ballot record.
type Ballot struct {
	RecordID   string         // canonical UUIDv7 text; final tie-breaker
	DeviceID   string         // author device
	HLC        uint64         // hybrid logical clock of the author
	Supersedes string         // record id this ballot replaces ("" if none)
	Marks      election.Marks // validated, one per definition item
	// Held marks a doubtful late ballot: while it is live its unit is
	// held for the committee, whatever the policy.
	Held bool
}

// UnitDecision is the committee's settlement of a unit: count the named
// ballot, or none when CountedRecordID is "".
type UnitDecision struct {
	Seq             uint64
	CountedRecordID string
}

// After reports whether d replaces o as a unit's latest decision: the
// higher Seq wins; equal Seqs (which the committee never issues) are
// ordered by record id so the choice never depends on arrival order.
func (d UnitDecision) After(o UnitDecision) bool {
	if d.Seq != o.Seq {
		return d.Seq > o.Seq
	}
	return d.CountedRecordID > o.CountedRecordID
}

// UnitOutcome is the reconciled state of one unit: a pure function of the
// set of its ballots and the latest UnitDecision. It never depends on the
// order of arrival.
type UnitOutcome struct {
	Counted     bool           // a ballot counts for the unit
	Marks       election.Marks // the counted marks when Counted; shares memory with that ballot
	CountedID   string         // record id of the counted ballot: the lowest among identical live ones, or the one the policy or decision chose
	Live        []string       // sorted record ids of live ballots (not superseded by a ballot of this unit)
	Contested   bool           // live ballots differ (or a supersede cycle left no live ballot)
	Double      bool           // several live ballots, all identical: counted once (benign double visit)
	Adjudicated bool           // a UnitDecision settled it
}

// Held reports whether the unit waits for the committee: contested, not
// settled, and counted nowhere. Totals count these as units contested.
func (u *UnitOutcome) Held() bool {
	return u.Contested && !u.Counted && !u.Adjudicated
}

// ReconcileUnit decides which of one unit's ballots counts.
//
// A ballot supersedes another only when both are in ballots (the caller
// passes one unit's set) and both come from the same device; an id not in
// the set, the ballot's own id, or another device's ballot supersedes
// nothing. Live ballots are those no ballot in the set
// supersedes. One live ballot counts. Several identical live ballots count
// once, as a double visit, under the lowest record id. Differing live
// ballots make the unit contested and policy decides: hold (also policy 0)
// counts none; first and last count the earliest or latest by (HLC,
// DeviceID, RecordID), compared bytewise. If supersedes form cycles that
// leave no live ballot, every ballot is treated as live and the unit is
// contested, whatever the marks say: the records contradict each other.
//
// A live ballot marked Held (a doubtful late ballot) makes the unit
// contested and counted nowhere, under any policy, until a decision.
//
// A decision, when d is not nil, overrides the policy whether or not the
// unit is contested: it counts the named ballot if it is in the set (live
// or not) or none when it names "". A decision naming a record not in the
// set has no effect yet and Adjudicated stays false. Contested, Double and
// Live always describe the ballots themselves.
//
// Record ids are unique in a store; if ballots repeats an id, one copy is
// kept by a fixed order of all fields, so the result still does not depend
// on the order of ballots.
func ReconcileUnit(policy election.Policy, ballots []Ballot, d *UnitDecision) UnitOutcome {
	set := uniqueBallots(ballots)
	var out UnitOutcome
	if len(set) > 0 {
		out = reconcileSet(policy, set)
	}
	if d == nil {
		return out
	}
	if d.CountedRecordID == "" {
		out.Counted, out.Marks, out.CountedID, out.Adjudicated = false, nil, "", true
		return out
	}
	if i, ok := slices.BinarySearchFunc(set, d.CountedRecordID, func(b *Ballot, id string) int { return cmp.Compare(b.RecordID, id) }); ok {
		out.Counted, out.Marks, out.CountedID, out.Adjudicated = true, set[i].Marks, set[i].RecordID, true
	}
	return out
}

// reconcileSet applies the supersede and policy rules to a non-empty set of
// distinct ballots sorted by record id.
func reconcileSet(policy election.Policy, set []*Ballot) UnitOutcome {
	superseded := make([]bool, len(set))
	for _, b := range set {
		if b.Supersedes == "" || b.Supersedes == b.RecordID {
			continue
		}
		// Only a ballot of the same device chain can be replaced: one
		// canvasser never silently replaces another's ballot; the two stay
		// live and the unit is contested.
		if i, ok := slices.BinarySearchFunc(set, b.Supersedes, func(x *Ballot, id string) int { return cmp.Compare(x.RecordID, id) }); ok && set[i].DeviceID == b.DeviceID {
			superseded[i] = true
		}
	}
	live := make([]*Ballot, 0, len(set))
	for i, b := range set {
		if !superseded[i] {
			live = append(live, b)
		}
	}
	var out UnitOutcome
	if len(live) == 0 {
		// Each ballot supersedes at most one other, so a set in which every
		// ballot is superseded is made of cycles only.
		live = set
		out.Contested = true
	}
	out.Live = make([]string, len(live))
	held := false
	for i, b := range live {
		out.Live[i] = b.RecordID
		held = held || b.Held
	}
	if held {
		// A doubtful late ballot is the committee's to weigh: nothing of
		// the unit counts until it decides.
		out.Contested = true
		return out
	}
	if !out.Contested {
		same := true
		for _, b := range live[1:] {
			if !b.Marks.Equal(live[0].Marks) {
				same = false
				break
			}
		}
		if same {
			// live is sorted by record id: live[0] is the lowest.
			out.Counted, out.Marks, out.CountedID = true, live[0].Marks, live[0].RecordID
			out.Double = len(live) > 1
			return out
		}
		out.Contested = true
	}
	var pick *Ballot
	switch policy {
	case election.PolicyFirst:
		pick = slices.MinFunc(live, compareClock)
	case election.PolicyLast:
		pick = slices.MaxFunc(live, compareClock)
	default:
		return out
	}
	out.Counted, out.Marks, out.CountedID = true, pick.Marks, pick.RecordID
	return out
}

// compareClock orders ballots by when their authors made them: hybrid
// clock, then device id, then record id.
func compareClock(a, b *Ballot) int {
	if c := cmp.Compare(a.HLC, b.HLC); c != 0 {
		return c
	}
	if c := cmp.Compare(a.DeviceID, b.DeviceID); c != 0 {
		return c
	}
	return cmp.Compare(a.RecordID, b.RecordID)
}

// uniqueBallots returns pointers to ballots sorted by record id with
// repeated ids dropped, keeping the copy that sorts first by all fields.
func uniqueBallots(ballots []Ballot) []*Ballot {
	set := make([]*Ballot, len(ballots))
	for i := range ballots {
		set[i] = &ballots[i]
	}
	slices.SortFunc(set, compareBallot)
	return slices.CompactFunc(set, func(a, b *Ballot) bool { return a.RecordID == b.RecordID })
}

func compareBallot(a, b *Ballot) int {
	if c := cmp.Compare(a.RecordID, b.RecordID); c != 0 {
		return c
	}
	if c := compareClock(a, b); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Supersedes, b.Supersedes); c != 0 {
		return c
	}
	if a.Held != b.Held {
		if a.Held {
			return 1
		}
		return -1
	}
	return slices.CompareFunc(a.Marks, b.Marks, func(x, y election.Mark) int { return cmp.Compare(markKey(x), markKey(y)) })
}
