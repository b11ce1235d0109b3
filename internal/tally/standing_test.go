package tally_test

import (
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

func TestStandingAndArrival(t *testing.T) {
	type verdict struct {
		standing tally.Standing
		arrival  tally.Arrival
	}
	tests := []struct {
		name     string
		policy   election.Policy
		ballots  []tally.Ballot
		decision *tally.UnitDecision
		want     map[string]verdict // by record id
	}{
		{
			name:    "a unit's only ballot",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes)},
			want:    map[string]verdict{"a": {tally.StandingCounted, tally.ArrivalAccepted}},
		},
		{
			name:    "a double visit counts the lower id; the other copy is included",
			ballots: []tally.Ballot{ballot("c", "d2", 1, "", yes), ballot("b", "d1", 9, "", yes)},
			want: map[string]verdict{
				"b": {tally.StandingCounted, tally.ArrivalDuplicate},
				"c": {tally.StandingIncluded, tally.ArrivalDuplicate},
			},
		},
		{
			name:    "a revised ballot replaces the first",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d1", 2, "a", no)},
			want: map[string]verdict{
				"a": {tally.StandingSuperseded, tally.ArrivalSuperseded},
				"b": {tally.StandingCounted, tally.ArrivalAccepted},
			},
		},
		{
			name:    "differing ballots held",
			policy:  election.PolicyHold,
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "", no)},
			want: map[string]verdict{
				"a": {tally.StandingContested, tally.ArrivalContested},
				"b": {tally.StandingContested, tally.ArrivalContested},
			},
		},
		{
			name:    "differing ballots, the first by policy counts",
			policy:  election.PolicyFirst,
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "", no)},
			want: map[string]verdict{
				"a": {tally.StandingCounted, tally.ArrivalContested},
				"b": {tally.StandingContested, tally.ArrivalContested},
			},
		},
		{
			name:     "the committee counts one of differing ballots",
			ballots:  []tally.Ballot{ballot("a", "d1", 1, "", yes), ballot("b", "d2", 2, "", no)},
			decision: &tally.UnitDecision{Seq: 5, CountedRecordID: "b"},
			want: map[string]verdict{
				"a": {tally.StandingContested, tally.ArrivalContested},
				"b": {tally.StandingCounted, tally.ArrivalContested},
			},
		},
		{
			name:     "the committee counts none of a unit's one ballot",
			ballots:  []tally.Ballot{ballot("a", "d1", 1, "", yes)},
			decision: &tally.UnitDecision{Seq: 5},
			want:     map[string]verdict{"a": {tally.StandingContested, tally.ArrivalAccepted}},
		},
		{
			name:    "a ballot the outcome does not hold",
			ballots: []tally.Ballot{ballot("a", "d1", 1, "", yes)},
			want:    map[string]verdict{"zz": {tally.StandingSuperseded, tally.ArrivalSuperseded}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := tally.ReconcileUnit(tt.policy, tt.ballots, tt.decision)
			for id, want := range tt.want {
				if got := out.Standing(id); got != want.standing {
					t.Errorf("Standing(%s) = %d; want %d", id, got, want.standing)
				}
				if got := out.Arrival(id); got != want.arrival {
					t.Errorf("Arrival(%s) = %d; want %d", id, got, want.arrival)
				}
			}
		})
	}
}
