package tally_test

import (
	"math/rand/v2"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/tally"
)

// TestIncrementalEqualsCompute is the central property: whatever the order
// and repetition in which records arrive, the store's incremental path
// publishes exactly what the verifier's batch Compute does.
func TestIncrementalEqualsCompute(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 60
	}
	// seen counts how often each interesting situation came up, so the
	// property is known to have been exercised on all of them.
	seen := map[string]int{}
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 0xd002573b))
		sc := newScenario(t, r)
		res := checkScenario(t, sc, r, 3)
		_, outcomes := sc.compute()
		for _, o := range outcomes {
			switch {
			case o.Held():
				seen["held unit"]++
			case o.Contested && o.Counted && !o.Adjudicated:
				seen["contested unit counted by policy"]++
			case o.Adjudicated:
				seen["adjudicated unit"]++
			case o.Double:
				seen["double visit"]++
			}
		}
		for _, it := range res.Items {
			seen["outcome "+it.Outcome]++
			if it.HeldHeadcount > 0 {
				seen["split owner held"]++
			}
			if it.Invalid.Area > 0 {
				seen["invalid"]++
			}
		}
		if res.UnitsCounted > 0 && len(sc.ownerDecisions) > 0 {
			seen["owner decisions"]++
		}
	}
	for _, want := range []string{
		"held unit", "contested unit counted by policy", "adjudicated unit", "double visit",
		"outcome " + tally.OutcomePassed, "outcome " + tally.OutcomeFailed, "outcome " + tally.OutcomeNoQuorum,
		"outcome " + tally.OutcomeElected, "outcome " + tally.OutcomeTie,
		"split owner held", "invalid", "owner decisions",
	} {
		if seen[want] == 0 {
			t.Errorf("no scenario had a %s; the generator needs widening", want)
		}
	}
	t.Logf("situations covered: %v", seen)
}

// FuzzTally turns bytes into a scenario and checks the incremental path
// against Compute in two orders.
func FuzzTally(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("doorstep"))
	f.Add([]byte{0xff, 0, 0xff, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	for seed := range uint64(8) {
		r := rand.New(rand.NewPCG(seed, 1))
		b := make([]byte, 64)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := rand.New(newByteSource(data))
		checkScenario(t, newScenario(t, r), r, 2)
	})
}
