package store

import (
	"fmt"
	"sort"

	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// checkTurnout recounts each building's turnout counters (bucket
// buildings: units and area on the roster, units and area counted, units
// held as contested) from the roster and the recomputed outcomes, and
// compares them with the stored ones. The counters are made when the
// election opens, so before that the bucket is empty. It runs after
// checkOutcomes, which reads the roster and recomputes the outcomes.
func (c *electionCheck) checkTurnout() Finding {
	f := Finding{Election: c.id, Check: "turnout"}
	guard(&f, func() {
		stored := map[string]turnout{}
		err := c.bucket(bucketBuildings).ForEach(func(k, v []byte) error {
			if len(k) == 0 || k[0] != 'b' {
				f.problem("bucket buildings holds key %q, which names no building", k)
				return nil
			}
			t, err := decodeTurnout(v)
			if err != nil {
				f.problem("the counters of building %q (bucket buildings) cannot be read: %v", k[1:], err)
				return nil
			}
			stored[string(k[1:])] = t
			return nil
		})
		if err != nil {
			f.problem("bucket buildings: %v", err)
			return
		}
		if stateOf(c.bucket(bucketInfo)) < rules.StateOpen && len(stored) == 0 {
			f.Summary = "the election has not opened: no building counters yet"
			return
		}
		want := map[string]*turnout{}
		for _, u := range c.units {
			t := want[u.Building]
			if t == nil {
				t = &turnout{}
				want[u.Building] = t
			}
			t.units++
			t.area += u.Area
			if o, ok := c.outcomes[u.ID]; ok {
				t.apply(u.Area, tally.UnitOutcome{}, o)
			}
		}
		names := make([]string, 0, len(want))
		for b := range want {
			names = append(names, b)
		}
		sort.Strings(names)
		for _, b := range names {
			w := *want[b]
			got, ok := stored[b]
			switch {
			case !ok:
				f.problem("building %q has %d units on the roster but no counters in bucket buildings", b, w.units)
			case got != w:
				f.problem("building %q: bucket buildings says %s; a recount of the roster and the outcomes says %s", b, describeTurnout(got), describeTurnout(w))
			}
		}
		for b := range stored {
			if _, ok := want[b]; !ok {
				f.problem("bucket buildings holds counters for building %q, which has no unit on the roster", b)
			}
		}
		f.Summary = fmt.Sprintf("the turnout counters of %d buildings match a recount of the roster and the outcomes", len(want))
	})
	return f
}

func describeTurnout(t turnout) string {
	return fmt.Sprintf("%d units (area %d), %d counted (area %d), %d held", t.units, t.area, t.counted, t.areaCounted, t.held)
}
