package tally

import "slices"

// Standing is how one accepted ballot stands in its unit's outcome: what
// a receipt lookup answers for it (api/SPEC.md, "Receipt statuses"). The
// server's lookup and the auditor's both take it from here.
type Standing uint8

const (
	// StandingCounted: the ballot is its unit's counted ballot.
	StandingCounted Standing = iota + 1
	// StandingSuperseded: the ballot is not live; another ballot of its
	// unit replaces it.
	StandingSuperseded
	// StandingContested: live in a contested or adjudicated unit, and not
	// the one counted.
	StandingContested
	// StandingIncluded: a live identical copy of the counted ballot (a
	// double visit).
	StandingIncluded
)

// Standing says how the accepted ballot recordID stands in u, the outcome
// of its unit.
func (u *UnitOutcome) Standing(recordID string) Standing {
	switch {
	case u.Counted && u.CountedID == recordID:
		return StandingCounted
	case !slices.Contains(u.Live, recordID):
		return StandingSuperseded
	case u.Contested || u.Adjudicated:
		return StandingContested
	default:
		return StandingIncluded
	}
}

// Arrival is the status the server gives an accepted ballot as it
// arrives, from its unit's outcome with it (api/SPEC.md section 8, rule
// 6); the verifier re-derives it to check the server's answer.
type Arrival uint8

const (
	// ArrivalAccepted: live, in a unit that is neither contested nor a
	// double visit.
	ArrivalAccepted Arrival = iota + 1
	// ArrivalDuplicate: live, and the unit's live ballots are identical.
	ArrivalDuplicate
	// ArrivalSuperseded: not live.
	ArrivalSuperseded
	// ArrivalContested: live, and the unit is contested.
	ArrivalContested
)

// Arrival says what status the ballot recordID gets on arrival, given u,
// the outcome of its unit with it.
func (u *UnitOutcome) Arrival(recordID string) Arrival {
	switch {
	case !slices.Contains(u.Live, recordID):
		return ArrivalSuperseded
	case u.Contested:
		return ArrivalContested
	case u.Double:
		return ArrivalDuplicate
	default:
		return ArrivalAccepted
	}
}
