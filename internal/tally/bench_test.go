package tally_test

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// readFigures holds, per run of BenchmarkTallyRead, the ns/op of its final
// round; TestMain prints their median last.
var readFigures []float64

func TestMain(m *testing.M) {
	code := m.Run()
	if len(readFigures) > 0 {
		slices.Sort(readFigures)
		fmt.Printf("tally read: %.0f ns/op\n", readFigures[len(readFigures)/2])
	}
	os.Exit(code)
}

// BenchmarkTallyRead is the live tally read: decode the stored totals and
// decide, for a 4-item election with a 9-candidate seat election, counted
// as if a million units had voted.
func BenchmarkTallyRead(b *testing.B) {
	def := &election.Definition{ID: "estate-2026", Items: []election.Item{
		{ID: "m1", Kind: election.KindMotion, Threshold: election.Ordinary},
		{ID: "m2", Kind: election.KindMotion, Threshold: election.Special},
		{ID: "m3", Kind: election.KindMotion, Threshold: election.Special},
		{ID: "committee", Kind: election.KindCandidates, Seats: 5},
	}}
	for j := range 9 {
		def.Items[3].Candidates = append(def.Items[3].Candidates, election.Candidate{ID: fmt.Sprintf("cand-%d", j), Name: "c"})
	}
	t := tally.NewTotals(def)
	t.SetRosterUnits(1_000_000)
	const units, area = 1_000_000, 8950
	c := tally.Contribution{Items: make([]tally.ItemContribution, 4)}
	for i := range 3 {
		c.Items[i] = tally.ItemContribution{Participating: tally.Count{Area: units * area, Headcount: units}, Yes: tally.Count{Area: units * area * 4 / 5, Headcount: units * 4 / 5}, No: tally.Count{Area: units * area / 5, Headcount: units / 5}}
	}
	c.Items[3].Participating = tally.Count{Area: units * area, Headcount: units}
	for j := range 9 {
		share := int64(units) * int64(9-j) / 10
		c.Items[3].Support = append(c.Items[3].Support, tally.CandidateSupport{Candidate: j, Support: tally.Count{Area: share * area, Headcount: share}})
	}
	t.Add(c)
	stored, err := t.MarshalBinary()
	if err != nil {
		b.Fatal(err)
	}
	if b.N == 1 {
		// A new run starts with one iteration; keep the last run's figure.
		readFigures = append(readFigures, 0)
	}
	var res tally.Result
	b.ReportAllocs()
	for b.Loop() { // b.Loop excludes the setup above from the timing
		var got tally.Totals
		if err := got.UnmarshalBinary(stored); err != nil {
			b.Fatal(err)
		}
		res = tally.Decide(def, units*area, units, &got)
	}
	if res.Items[3].Outcome != tally.OutcomeElected || res.Items[0].Outcome != tally.OutcomePassed {
		b.Fatalf("unexpected result %+v", res.Items)
	}
	if n := len(readFigures); n > 0 {
		readFigures[n-1] = float64(b.Elapsed()) / float64(b.N) / float64(time.Nanosecond)
	}
}
