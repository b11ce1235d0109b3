package tally_test

import (
	"reflect"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// TestComputeByHand checks the batch reference on an estate small enough
// to count on paper: a split owner, a developer holding two units under
// one key, a held contest, and records for a unit not on the roster.
func TestComputeByHand(t *testing.T) {
	def := &election.Definition{ID: "e", Policy: election.PolicyHold, Items: []election.Item{
		{ID: "m", Kind: election.KindMotion, Threshold: election.Ordinary},
	}}
	roster, err := election.NewRoster([]election.Unit{
		{ID: "1-1-101", Area: 100, OwnerKey: "o1"},
		{ID: "1-1-102", Area: 50, OwnerKey: "o1"},
		{ID: "1-1-201", Area: 80, OwnerKey: "o2"},
		{ID: "1-1-202", Area: 70, OwnerKey: "dev", DeveloperHeld: true},
		{ID: "1-1-301", Area: 70, OwnerKey: "dev", DeveloperHeld: true},
		{ID: "1-1-302", Area: 30, OwnerKey: "o3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	ballots := map[string][]tally.Ballot{
		"1-1-101": {ballot("a", "d1", 1, "", yes)},
		"1-1-102": {ballot("b", "d1", 2, "", no)},
		"1-1-201": {ballot("c", "d2", 1, "", yes), ballot("c2", "d1", 4, "", yes)},
		"1-1-202": {ballot("d", "d2", 2, "", yes)},
		"1-1-301": {ballot("e", "d2", 3, "", yes)},
		"1-1-302": {ballot("f", "d1", 5, "", yes), ballot("g", "d2", 5, "", no)},
		"9-9-999": {ballot("z", "d1", 1, "", no)},
	}
	unitDecisions := map[string]tally.UnitDecision{"9-9-999": {Seq: 1, CountedRecordID: "z"}}

	// Roster: 400 area, 4 owners; quorum needs 800/3 area and 8/3 owners.
	// o3's unit is held: participating area 370 (100+50+80+70+70), owners
	// o1, o2, dev = 3. Yes area 320, No area 50. o1 is split: held. Yes
	// headcount o2 + dev = 2 > 3/2: passed.
	want := tally.ItemResult{
		ItemID: "m", Kind: tally.KindMotion, Threshold: "ordinary", Outcome: tally.OutcomePassed, QuorumMet: true,
		Participating: c(370, 3), Yes: c(320, 2), No: c(50, 0), HeldHeadcount: 1,
	}
	res, outcomes := tally.Compute(def, roster, ballots, unitDecisions, nil)
	if !reflect.DeepEqual(res.Items[0], want) {
		t.Errorf("item\n got %+v\nwant %+v", res.Items[0], want)
	}
	if res.RosterArea != 400 || res.RosterHeadcount != 4 || res.RosterUnits != 6 || res.UnitsCounted != 5 || res.UnitsContested != 1 || res.UnitsDouble != 1 {
		t.Errorf("header %+v", res)
	}
	if _, ok := outcomes["9-9-999"]; ok || len(outcomes) != 6 {
		t.Errorf("outcomes for %d units, including off-roster: %v", len(outcomes), ok)
	}
	if o := outcomes["1-1-201"]; !o.Double || o.CountedID != "c" {
		t.Errorf("double visit outcome %+v", o)
	}

	// The committee settles o1 as "no" and o3's unit as "g" (no): yes
	// headcount 2 of 4 participating owners is not more than half.
	ownerDecisions := map[string][]tally.OwnerDecision{"o1": {{Seq: 1, Item: 0, Mark: election.Mark{Kind: election.MarkNo}}}}
	unitDecisions["1-1-302"] = tally.UnitDecision{Seq: 2, CountedRecordID: "g"}
	want = tally.ItemResult{
		ItemID: "m", Kind: tally.KindMotion, Threshold: "ordinary", Outcome: tally.OutcomeFailed, QuorumMet: true,
		Participating: c(400, 4), Yes: c(320, 2), No: c(80, 2),
	}
	res, _ = tally.Compute(def, roster, ballots, unitDecisions, ownerDecisions)
	if !reflect.DeepEqual(res.Items[0], want) {
		t.Errorf("after decisions\n got %+v\nwant %+v", res.Items[0], want)
	}
	if res.UnitsCounted != 6 || res.UnitsContested != 0 {
		t.Errorf("after decisions: counted %d contested %d, want 6 0", res.UnitsCounted, res.UnitsContested)
	}
}
