package tallyd_test

import (
	"fmt"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
)

func tsOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// exampleElection is replaced by the shipped example once it lands.
func exampleElection(t testing.TB) (*doorstepv1.ElectionDefinition, []election.Unit) {
	t.Helper()
	var cands []*doorstepv1.Candidate
	for i := 1; i <= 9; i++ {
		cands = append(cands, &doorstepv1.Candidate{CandidateId: fmt.Sprintf("c%d", i), Name: fmt.Sprintf("Candidate %d", i)})
	}
	def := &doorstepv1.ElectionDefinition{
		Title: "test",
		Items: []*doorstepv1.Item{
			{ItemId: "committee", Title: "elect 7", Kind: &doorstepv1.Item_Candidates{Candidates: &doorstepv1.CandidateElection{Seats: 7, Candidates: cands}}},
			{ItemId: "rules", Title: "rules", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY}}},
			{ItemId: "roof", Title: "roof", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY}}},
			{ItemId: "fund", Title: "fund", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL}}},
		},
	}
	var units []election.Unit
	for i := 0; i < 60; i++ {
		id := fmt.Sprintf("%d-1-%d01", i/10+1, i%10+1)
		owner := "owner-" + id
		if i >= 50 {
			owner = "multi"
		}
		units = append(units, election.Unit{ID: id, Area: 8000 + int64(i)*137, OwnerKey: owner, Building: fmt.Sprint(i/10 + 1)})
	}
	return def, units
}
