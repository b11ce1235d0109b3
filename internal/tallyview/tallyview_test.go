package tallyview

import (
	"strings"
	"testing"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/i18n"
)

func TestRanked(t *testing.T) {
	c := func(id string, rank uint32, head uint64, area int64) *doorstepv1.CandidateTally {
		return &doorstepv1.CandidateTally{CandidateId: id, Rank: rank, Support: &doorstepv1.Count{Headcount: head, Area: area}}
	}
	in := []*doorstepv1.CandidateTally{
		c("c5", 0, 3, 100), c("c4", 0, 3, 200), c("c3", 2, 9, 0), c("c2", 1, 1, 0), c("c6", 0, 3, 200), c("c1", 0, 7, 0),
	}
	var ids []string
	for _, x := range Ranked(in) {
		ids = append(ids, x.GetCandidateId())
	}
	// Ranked first by rank; then headcount, area, id.
	if got, want := strings.Join(ids, ","), "c2,c3,c1,c4,c6,c5"; got != want {
		t.Errorf("Ranked = %s, want %s", got, want)
	}
	if in[0].GetCandidateId() != "c5" {
		t.Error("Ranked reordered its input")
	}
}

func TestOutcomeKey(t *testing.T) {
	for o, want := range map[doorstepv1.Outcome]string{
		doorstepv1.Outcome_OUTCOME_PASSED: "passed", doorstepv1.Outcome_OUTCOME_FAILED: "failed",
		doorstepv1.Outcome_OUTCOME_NO_QUORUM: "no_quorum", doorstepv1.Outcome_OUTCOME_ELECTED: "elected",
		doorstepv1.Outcome_OUTCOME_TIE: "tied", doorstepv1.Outcome_OUTCOME_UNSPECIFIED: "pending",
	} {
		if got := OutcomeKey(o); got != want {
			t.Errorf("OutcomeKey(%v) = %q, want %q", o, got, want)
		}
		// Every view that names outcomes has a word for each.
		for _, prefix := range []string{"outcome.", "cli.outcome."} {
			if !i18n.Has(prefix + want) {
				t.Errorf("the catalogue has no %s%s", prefix, want)
			}
		}
	}
}
