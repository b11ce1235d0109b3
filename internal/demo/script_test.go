package demo_test

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/demo"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// checkScript checks what every day's script must hold, whatever the seed:
// each unit of the roster is on exactly one canvasser's route and called at,
// the special doors are there, and the predicted tally computes.
func checkScript(t *testing.T, s *demo.Script) tally.Result {
	t.Helper()
	_, units, err := demo.Example(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{}
	for _, u := range units {
		owner[u.ID] = u.OwnerKey
	}
	walker := map[string]int{} // unit → canvasser whose buildings hold it
	for i, c := range s.Canvassers {
		for _, u := range units {
			if slices.Contains(c.Buildings, device.Building(u)) {
				if j, dup := walker[u.ID]; dup {
					t.Fatalf("unit %s is on the routes of %s and %s", u.ID, s.Canvassers[j].Name, c.Name)
				}
				walker[u.ID] = i
			}
		}
	}
	if len(walker) != len(units) || s.Units() != len(units) {
		t.Fatalf("routes cover %d units; the roster has %d", len(walker), len(units))
	}
	called := map[string]bool{}
	revisions := 0
	ballotsAt := map[string]map[int][]election.Selection{}
	holderWalkers := map[int]bool{}
	for i, c := range s.Canvassers {
		for _, st := range c.Stops {
			if st.Unit == "" || (st.Kind == demo.StopVisit) != (st.Visit.UnitID == st.Unit) || (st.Kind != demo.StopVisit && st.Ballot.UnitID != st.Unit) {
				t.Fatalf("%s: malformed stop %+v", c.Name, st)
			}
			if walker[st.Unit] == i {
				called[st.Unit] = true
			}
			if st.Kind == demo.StopRevise {
				revisions++
				if st.Unit != s.Revised {
					t.Errorf("%s revises %s; the script says %s", c.Name, st.Unit, s.Revised)
				}
			}
			if st.Kind != demo.StopVisit {
				if ballotsAt[st.Unit] == nil {
					ballotsAt[st.Unit] = map[int][]election.Selection{}
				}
				ballotsAt[st.Unit][i] = st.Ballot.Selections
				if owner[st.Unit] == s.Holder {
					holderWalkers[i] = true
				}
			}
		}
	}
	if len(called) != len(units) {
		t.Errorf("%d of %d units are called at by the canvasser whose route has them", len(called), len(units))
	}
	if revisions != 1 {
		t.Errorf("%d revised ballots; want 1", revisions)
	}
	door := s.Contested
	at := ballotsAt[door.Unit]
	if len(at) != 2 || at[door.Owner] == nil || at[door.Other] == nil || reflect.DeepEqual(at[door.Owner], at[door.Other]) {
		t.Errorf("contested door %s: ballots by canvasser %v; want differing ones from %d and %d", door.Unit, at, door.Owner, door.Other)
	}
	if d := ballotsAt[s.Double]; len(d) != 2 {
		t.Errorf("double-visited door %s: ballots from %d canvassers; want 2", s.Double, len(d))
	} else {
		var sels [][]election.Selection
		for _, v := range d {
			sels = append(sels, v)
		}
		if !reflect.DeepEqual(sels[0], sels[1]) {
			t.Errorf("double-visited door %s: the two ballots differ: %v", s.Double, sels)
		}
	}
	if !strings.HasPrefix(s.Holder, "holder-") || len(holderWalkers) < 2 {
		t.Errorf("holder %q: ballots collected by %d canvassers; want a holder-NN owner walked by 2 or more", s.Holder, len(holderWalkers))
	}
	res, err := s.Expected()
	if err != nil {
		t.Fatal(err)
	}
	if res.UnitsContested != 0 || res.UnitsDouble != 1 || res.RosterUnits != len(units) {
		t.Errorf("expected tally: %d contested, %d double, %d units; want 0, 1, %d", res.UnitsContested, res.UnitsDouble, res.RosterUnits, len(units))
	}
	for _, it := range res.Items {
		if it.HeldHeadcount != 0 {
			t.Errorf("item %s: %d split owners held; every owner answers alike at each unit", it.ItemID, it.HeldHeadcount)
		}
	}
	return res
}

// outcomes summarises a tally as "item=outcome" in item order, with the
// number elected for candidate items.
func outcomes(r tally.Result) string {
	var parts []string
	for _, it := range r.Items {
		s := it.ItemID + "=" + it.Outcome
		if !it.QuorumMet {
			s += "(no quorum)"
		}
		if it.Kind == tally.KindCandidates {
			n := 0
			for _, c := range it.Candidates {
				if c.Elected {
					n++
				}
			}
			s += "/" + strings.Repeat("*", n)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, " ")
}

// wantOutcomes is the day the demo tells: quorum met, the estate rules and
// the roof repair pass, raising the fund (SPECIAL) fails, 7 elected.
const wantOutcomes = "committee=elected/******* rules=passed roof=passed fund=failed"

func TestScript(t *testing.T) {
	for _, seed := range []uint64{278, 0, 1, 2, 3, 42, 1 << 40, ^uint64(0)} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			s, err := demo.NewScript(seed)
			if err != nil {
				t.Fatal(err)
			}
			res := checkScript(t, s)
			if got := outcomes(res); got != wantOutcomes {
				t.Errorf("seed %d: outcomes %s; want %s", seed, got, wantOutcomes)
			}
			again, err := demo.NewScript(seed)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Canvassers, again.Canvassers) || s.Contested != again.Contested {
				t.Errorf("seed %d: two scripts from the same seed differ", seed)
			}
			other, err := demo.NewScript(seed + 1)
			if err != nil {
				t.Fatal(err)
			}
			if reflect.DeepEqual(s.Canvassers, other.Canvassers) {
				t.Errorf("seeds %d and %d give the same script", seed, seed+1)
			}
		})
	}
}

// FuzzScript checks the script's invariants for any seed.
func FuzzScript(f *testing.F) {
	for _, seed := range []uint64{278, 0, 1, 42, ^uint64(0)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		s, err := demo.NewScript(seed)
		if err != nil {
			t.Fatal(err)
		}
		checkScript(t, s)
	})
}
