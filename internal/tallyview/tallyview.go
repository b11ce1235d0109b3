// Package tallyview reads a tally (the protobuf the server publishes) the
// way people see it: one order for the candidates and one word for each
// outcome, shared by the terminal, the live views and the results notice,
// so that no two of them can rank or name a result differently.
package tallyview

import (
	"cmp"
	"slices"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
)

// Ranked orders candidates as the result reads: those the tally ranked by
// rank, then the rest by headcount support, then area, then id. It does
// not change cs.
func Ranked(cs []*doorstepv1.CandidateTally) []*doorstepv1.CandidateTally {
	cs = slices.Clone(cs)
	slices.SortStableFunc(cs, func(a, b *doorstepv1.CandidateTally) int {
		ra, rb := a.GetRank(), b.GetRank()
		switch {
		case ra != 0 && rb != 0 && ra != rb:
			return cmp.Compare(ra, rb)
		case ra != 0 && rb == 0:
			return -1
		case ra == 0 && rb != 0:
			return 1
		}
		return cmp.Or(
			cmp.Compare(b.GetSupport().GetHeadcount(), a.GetSupport().GetHeadcount()),
			cmp.Compare(b.GetSupport().GetArea(), a.GetSupport().GetArea()),
			cmp.Compare(a.GetCandidateId(), b.GetCandidateId()))
	})
	return cs
}

// OutcomeKey is the catalogue key's last part for an item's outcome:
// "passed", "failed", "no_quorum", "elected", "tied" or "pending". Each
// view keeps its own words under its own prefix (i18n).
func OutcomeKey(o doorstepv1.Outcome) string {
	switch o {
	case doorstepv1.Outcome_OUTCOME_PASSED:
		return "passed"
	case doorstepv1.Outcome_OUTCOME_FAILED:
		return "failed"
	case doorstepv1.Outcome_OUTCOME_NO_QUORUM:
		return "no_quorum"
	case doorstepv1.Outcome_OUTCOME_ELECTED:
		return "elected"
	case doorstepv1.Outcome_OUTCOME_TIE:
		return "tied"
	}
	return "pending"
}
