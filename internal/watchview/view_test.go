package watchview

import (
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/i18n"
)

func TestBar(t *testing.T) {
	for _, tc := range []struct {
		name             string
		part, whole      int64
		num, den         int64
		atLeast, met     bool
		pct, mark        string
		filled, markCell int
	}{
		{"two thirds exactly reaches the quorum", 2, 3, 2, 3, true, true, "66.67", "66.67", 20, 20},
		{"just under two thirds", 199, 300, 2, 3, true, false, "66.33", "66.67", 19, 20},
		{"half is not more than half", 1, 2, 1, 2, false, false, "50.00", "50.00", 15, 15},
		{"just over half", 501, 1000, 1, 2, false, true, "50.10", "50.00", 15, 15},
		{"three quarters exactly", 3, 4, 3, 4, true, true, "75.00", "75.00", 22, 22},
		{"an empty roster", 0, 0, 2, 3, true, false, "", "66.67", 0, 20},
		{"all", 7, 7, 2, 3, true, true, "100.00", "66.67", 30, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := count(tc.part, tc.whole, tc.num, tc.den, tc.atLeast)
			if b.Met != tc.met || b.Pct != tc.pct || b.Mark != tc.mark {
				t.Errorf("got met %v pct %q mark %q; want %v %q %q", b.Met, b.Pct, b.Mark, tc.met, tc.pct, tc.mark)
			}
			if f, m := b.Cells(30); f != tc.filled || m != tc.markCell {
				t.Errorf("Cells(30) = %d, %d; want %d, %d", f, m, tc.filled, tc.markCell)
			}
		})
	}
}

// TestBuild: the server's decisions are carried as they are, the words are
// the catalogue's, and the devices that must still sync come first.
func TestBuild(t *testing.T) {
	ov := &doorstepv1.ElectionOverview{
		Tally: &doorstepv1.Tally{ElectionId: "e1", RosterArea: 30000, RosterHeadcount: 3, RosterUnits: 3, UnitsCounted: 2, UnitsContested: 1,
			Checkpoint: &doorstepv1.Checkpoint{Size: 9, RootHash: []byte{1, 2, 3}},
			Items: []*doorstepv1.ItemTally{
				{ItemId: "fund", Outcome: doorstepv1.Outcome_OUTCOME_PASSED, QuorumMet: true,
					Participating: &doorstepv1.Count{Area: 20000, Headcount: 2}, Yes: &doorstepv1.Count{Area: 15000, Headcount: 2}},
				{ItemId: "board", Outcome: doorstepv1.Outcome_OUTCOME_ELECTED, QuorumMet: true, Participating: &doorstepv1.Count{Area: 20000, Headcount: 2},
					Candidates: []*doorstepv1.CandidateTally{
						{CandidateId: "c2", Support: &doorstepv1.Count{Area: 5000, Headcount: 1}},
						{CandidateId: "c1", Support: &doorstepv1.Count{Area: 20000, Headcount: 2}, Qualified: true, Elected: true, Rank: 1},
					}},
			}},
		Status:      &doorstepv1.ElectionStatus{State: doorstepv1.ElectionState_ELECTION_STATE_OPEN, OpenedAt: timestamppb.Now()},
		Buildings:   []*doorstepv1.BuildingTurnout{{Building: "1", Units: 3, Area: 30000, UnitsCounted: 2, AreaCounted: 20000}},
		SplitOwners: 1,
		Devices: []*doorstepv1.DeviceSummary{
			{DeviceId: "dv-a", Label: "李", RecordsHeld: 3, UnsentKnown: true},
			{DeviceId: "dv-b", Label: "王", RecordsHeld: 1, Unsent: 4, UnsentKnown: true},
		},
	}
	def := &election.Definition{Title: "翠湖", Items: []election.Item{
		{ID: "fund", Title: "维修资金", Kind: election.KindMotion, Threshold: election.Special},
		{ID: "board", Title: "业委会", Kind: election.KindCandidates, Seats: 1, Candidates: []election.Candidate{{ID: "c1", Name: "王建国"}, {ID: "c2", Name: "李"}}},
	}}
	v := Build(ov, def, i18n.EN)
	if v.Title != "翠湖" || v.State != i18n.EN.T("state.open") || v.Since.IsZero() || v.CheckpointSize != 9 || v.Contested != 1 || v.SplitOwners != 1 {
		t.Errorf("summary %+v", v)
	}
	if v.Area.Pct != "66.67" || !v.Area.Met {
		t.Errorf("turnout by area %+v", v.Area)
	}
	fund := v.Items[0]
	if fund.Title != "维修资金" || fund.Outcome != i18n.EN.T("outcome.passed") || fund.Rule != i18n.EN.T("watch.rule.special") ||
		fund.YesArea.Mark != "75.00" || !fund.YesArea.Met || !fund.QuorumArea.Met || fund.QuorumArea.Pct != "66.67" {
		t.Errorf("fund %+v", fund)
	}
	board := v.Items[1]
	if !board.Candidates || len(board.Ranked) != 2 || board.Ranked[0].ID != "c1" || board.Ranked[0].Name != "王建国" ||
		board.Ranked[0].Status != i18n.EN.T("outcome.elected") || board.Ranked[1].Status != i18n.EN.T("outcome.not_elected") {
		t.Errorf("board %+v", board)
	}
	if len(v.Devices) != 2 || v.Devices[0].ID != "dv-b" {
		t.Errorf("devices %+v: want the one with unsent records first", v.Devices)
	}
	// Without a definition: ids only, nothing missing.
	if v := Build(ov, nil, i18n.ZH); v.Items[0].Title != "" || v.Items[0].Rule != i18n.ZH.T("watch.rule.unknown") || !v.Items[1].Candidates {
		t.Errorf("without a definition: %+v", v.Items)
	}
}
