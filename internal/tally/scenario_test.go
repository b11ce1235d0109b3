package tally_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// scenario is a random election with everything the store may receive.
type scenario struct {
	def            *election.Definition
	roster         *election.Roster
	ballots        map[string][]tally.Ballot        // by unit id
	unitDecisions  map[string][]tally.UnitDecision  // every decision issued, by unit id
	ownerDecisions map[string][]tally.OwnerDecision // every decision issued, by owner key
}

func newScenario(t testing.TB, r *rand.Rand) *scenario {
	t.Helper()
	sc := &scenario{
		def:            &election.Definition{ID: "e", Policy: election.Policy(r.IntN(4))},
		ballots:        make(map[string][]tally.Ballot),
		unitDecisions:  make(map[string][]tally.UnitDecision),
		ownerDecisions: make(map[string][]tally.OwnerDecision),
	}
	// Identical flats make exact ties on area; with single-unit owners,
	// full picks and one candidate more than the seats, candidates often
	// tie across the last seat.
	sameArea := r.IntN(3) == 0
	fullPicks := sameArea && r.IntN(2) == 0
	for i := range 1 + r.IntN(4) {
		it := election.Item{ID: fmt.Sprintf("i%d", i)}
		if r.IntN(2) == 0 {
			it.Kind, it.Threshold = election.KindMotion, election.Threshold(1+r.IntN(2))
		} else {
			it.Kind = election.KindCandidates
			for j := range 1 + r.IntN(6) {
				it.Candidates = append(it.Candidates, election.Candidate{ID: fmt.Sprintf("c%d", j)})
			}
			it.Seats = 1 + r.IntN(min(len(it.Candidates), 3))
			if fullPicks {
				it.Seats = 1 + r.IntN(2)
				it.Candidates = it.Candidates[:0]
				for j := range it.Seats + 1 {
					it.Candidates = append(it.Candidates, election.Candidate{ID: fmt.Sprintf("c%d", j)})
				}
			}
		}
		sc.def.Items = append(sc.def.Items, it)
	}

	// Owners: a few keys shared by several units, and often a developer
	// holding a block under one key.
	nUnits := 1 + r.IntN(40)
	nOwners := 1 + r.IntN(nUnits)
	if fullPicks {
		nOwners = nUnits * nUnits // nearly all distinct
	}
	devUnits := 0
	if !fullPicks && r.IntN(2) == 0 {
		devUnits = r.IntN(nUnits/2 + 1)
	}
	units := make([]election.Unit, nUnits)
	for i := range units {
		u := election.Unit{ID: fmt.Sprintf("%d-%d-%03d", 1+i/12, 1+i/6%2, 101+i%6), Area: 1 + r.Int64N(20000)}
		switch {
		case sameArea:
			u.Area = 8950
		case r.IntN(20) == 0:
			u.Area = 1 + r.Int64N(election.MaxUnitAreaCenti)
		}
		if i < devUnits {
			u.OwnerKey, u.DeveloperHeld = "developer", true
		} else {
			u.OwnerKey = fmt.Sprintf("o%d", r.IntN(nOwners))
		}
		units[i] = u
	}
	var err error
	if sc.roster, err = election.NewRoster(units); err != nil {
		t.Fatalf("roster: %v", err)
	}

	// Ballots: a small palette makes agreeing owners and identical doubles
	// common; supersedes point at the same unit, at unknown ids, at
	// themselves and around cycles.
	palette := make([]election.Marks, 1+r.IntN(3))
	for i := range palette {
		palette[i] = randomMarks(r, sc.def, false)
	}
	highTurnout := r.IntN(2) == 0 // so that quorum is often met
	loyal := make(map[string]election.Marks)
	var allIDs []string
	seq := 0
	for _, u := range units {
		n := []int{0, 0, 1, 1, 1, 2, 2, 3, 4}[r.IntN(9)]
		if highTurnout && n == 0 {
			n = 1
		}
		bs := make([]tally.Ballot, n)
		for j := range bs {
			seq++
			b := tally.Ballot{
				RecordID: fmt.Sprintf("%06x-%04d", r.IntN(1<<24), seq),
				DeviceID: fmt.Sprintf("d%d", r.IntN(3)),
				HLC:      r.Uint64N(6),
			}
			switch {
			case j > 0 && r.IntN(3) == 0:
				b.Marks = bs[r.IntN(j)].Marks
			case loyal[u.OwnerKey] != nil && r.IntN(2) == 0:
				b.Marks = loyal[u.OwnerKey] // an owner tends to vote alike for all their units
			case !fullPicks && r.IntN(3) > 0:
				b.Marks = palette[r.IntN(len(palette))]
			default:
				b.Marks = randomMarks(r, sc.def, fullPicks)
			}
			if loyal[u.OwnerKey] == nil {
				loyal[u.OwnerKey] = b.Marks
			}
			bs[j] = b
			allIDs = append(allIDs, b.RecordID)
		}
		for j := range bs {
			switch r.IntN(8) {
			case 0, 1, 2:
				bs[j].Supersedes = bs[r.IntN(n)].RecordID
			case 3:
				bs[j].Supersedes = "not-yet-arrived"
			case 4:
				bs[j].Supersedes = allIDs[r.IntN(len(allIDs))] // maybe another unit's
			}
		}
		if n > 0 {
			sc.ballots[u.ID] = bs
		}
		if r.IntN(5) == 0 {
			for range 1 + r.IntN(3) {
				d := tally.UnitDecision{Seq: r.Uint64N(10)}
				switch r.IntN(4) {
				case 0:
				case 1:
					d.CountedRecordID = "unknown"
				case 2:
					if len(allIDs) > 0 {
						d.CountedRecordID = allIDs[r.IntN(len(allIDs))] // maybe another unit's
					}
				default:
					if n > 0 {
						d.CountedRecordID = bs[r.IntN(n)].RecordID
					}
				}
				sc.unitDecisions[u.ID] = append(sc.unitDecisions[u.ID], d)
			}
		}
	}
	for o := range nOwners + 1 {
		key := fmt.Sprintf("o%d", o)
		if o == nOwners {
			key = "developer"
		}
		if r.IntN(3) != 0 {
			continue
		}
		for range 1 + r.IntN(3) {
			d := tally.OwnerDecision{Seq: r.Uint64N(10), Item: r.IntN(len(sc.def.Items) + 1)}
			if d.Item < len(sc.def.Items) && r.IntN(5) > 0 {
				d.Mark = randomMark(r, &sc.def.Items[d.Item], false)
			} else {
				d.Mark = election.Mark{Kind: election.MarkKind(r.IntN(5))} // may not fit
			}
			sc.ownerDecisions[key] = append(sc.ownerDecisions[key], d)
		}
	}
	return sc
}

func randomMarks(r *rand.Rand, def *election.Definition, full bool) election.Marks {
	ms := make(election.Marks, len(def.Items))
	for i := range ms {
		ms[i] = randomMark(r, &def.Items[i], full)
	}
	return ms
}

// randomMark returns a mark that fits it; with full, a candidate mark
// always picks as many as there are seats.
func randomMark(r *rand.Rand, it *election.Item, full bool) election.Mark {
	if it.Kind == election.KindMotion {
		return election.Mark{Kind: []election.MarkKind{election.MarkYes, election.MarkYes, election.MarkNo, election.MarkAbstain, election.MarkInvalid}[r.IntN(5)]}
	}
	n := it.Seats
	if !full {
		switch r.IntN(6) {
		case 0:
			return election.Mark{Kind: election.MarkAbstain}
		case 1:
			return election.Mark{Kind: election.MarkInvalid}
		}
		n = 1 + r.IntN(it.Seats)
	}
	picks := make([]uint16, 0, n)
	for _, p := range r.Perm(len(it.Candidates))[:n] {
		picks = append(picks, uint16(p))
	}
	slices.Sort(picks)
	return election.Mark{Kind: election.MarkPicks, Picks: picks}
}

// compute runs the batch reference on the scenario.
func (sc *scenario) compute() (tally.Result, map[string]tally.UnitOutcome) {
	latest := make(map[string]tally.UnitDecision)
	for unit, ds := range sc.unitDecisions {
		for _, d := range ds {
			if cur, ok := latest[unit]; !ok || d.After(cur) {
				latest[unit] = d
			}
		}
	}
	return tally.Compute(sc.def, sc.roster, sc.ballots, latest, sc.ownerDecisions)
}

// event is one record reaching the store.
type event struct {
	unit, owner string
	ballot      *tally.Ballot
	unitDec     *tally.UnitDecision
	ownerDec    *tally.OwnerDecision
}

// events returns every record of the scenario in a random order with some
// delivered twice, as retries and resyncs deliver them.
func (sc *scenario) events(r *rand.Rand) []event {
	var evs []event
	for unit, bs := range sc.ballots {
		for i := range bs {
			evs = append(evs, event{unit: unit, ballot: &bs[i]})
		}
	}
	for unit, ds := range sc.unitDecisions {
		for i := range ds {
			evs = append(evs, event{unit: unit, unitDec: &ds[i]})
		}
	}
	for owner, ds := range sc.ownerDecisions {
		for i := range ds {
			evs = append(evs, event{owner: owner, ownerDec: &ds[i]})
		}
	}
	// Sort first: map iteration order must not be the only source of
	// variety, or a seed would not reproduce.
	slices.SortFunc(evs, func(a, b event) int { return bytes.Compare([]byte(eventKey(a)), []byte(eventKey(b))) })
	for range r.IntN(len(evs)/2 + 1) {
		if len(evs) > 0 {
			evs = append(evs, evs[r.IntN(len(evs))])
		}
	}
	r.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	return evs
}

func eventKey(e event) string {
	switch {
	case e.ballot != nil:
		return "b" + e.ballot.RecordID
	case e.unitDec != nil:
		return fmt.Sprintf("u%s/%d/%s", e.unit, e.unitDec.Seq, e.unitDec.CountedRecordID)
	}
	return fmt.Sprintf("o%s/%d/%d/%v", e.owner, e.ownerDec.Seq, e.ownerDec.Item, e.ownerDec.Mark)
}

// store does what the server's store does in each transaction, and
// round-trips its state through the binary forms as the store does
// through bbolt.
type store struct {
	t        testing.TB
	sc       *scenario
	ballots  map[string][]tally.Ballot
	seen     map[string]bool
	unitDec  map[string]tally.UnitDecision
	outcomes map[string]tally.UnitOutcome
	owners   map[string]*tally.OwnerState
	totals   *tally.Totals
}

func newStore(t testing.TB, sc *scenario) *store {
	s := &store{
		t: t, sc: sc,
		ballots:  make(map[string][]tally.Ballot),
		seen:     make(map[string]bool),
		unitDec:  make(map[string]tally.UnitDecision),
		outcomes: make(map[string]tally.UnitOutcome),
		owners:   make(map[string]*tally.OwnerState),
		totals:   tally.NewTotals(sc.def),
	}
	s.totals.SetRosterUnits(len(sc.roster.Units()))
	return s
}

func (s *store) owner(key string) *tally.OwnerState {
	o, ok := s.owners[key]
	if !ok {
		o = tally.NewOwnerState(s.sc.def)
		s.owners[key] = o
	}
	return o
}

func (s *store) apply(e event, r *rand.Rand) {
	switch {
	case e.ballot != nil:
		if !s.seen[e.ballot.RecordID] { // an exact retry stores nothing new
			s.seen[e.ballot.RecordID] = true
			b := *e.ballot
			if r.IntN(4) == 0 {
				var back tally.Ballot
				roundTrip(s.t, &b, &back)
				b = back
			}
			s.ballots[e.unit] = append(s.ballots[e.unit], b)
		}
		s.reconcile(e.unit)
	case e.unitDec != nil:
		if cur, ok := s.unitDec[e.unit]; !ok || e.unitDec.After(cur) {
			s.unitDec[e.unit] = *e.unitDec
		}
		s.reconcile(e.unit)
	default:
		o := s.owner(e.owner)
		old := o.Contribution(s.sc.def)
		o.SetDecision(*e.ownerDec)
		s.totals.Sub(old)
		s.totals.Add(o.Contribution(s.sc.def))
	}
	if r.IntN(10) == 0 {
		s.reload()
	}
}

// reconcile recomputes one unit and moves its owner's contribution.
func (s *store) reconcile(unitID string) {
	u, ok := s.sc.roster.Unit(unitID)
	if !ok {
		s.t.Fatalf("unit %q not on the roster", unitID)
	}
	var d *tally.UnitDecision
	if cur, ok := s.unitDec[unitID]; ok {
		d = &cur
	}
	old := s.outcomes[unitID]
	now := tally.ReconcileUnit(s.sc.def.Policy, s.ballots[unitID], d)
	o := s.owner(u.OwnerKey)
	before := o.Contribution(s.sc.def)
	if old.Counted {
		o.RemoveUnit(u.Area, old.Marks)
	}
	if now.Counted {
		o.AddUnit(u.Area, now.Marks)
	}
	s.totals.Sub(before)
	s.totals.Add(o.Contribution(s.sc.def))
	s.totals.ApplyUnit(old, now)
	s.outcomes[unitID] = now
}

// reload replaces every piece of state by its decoded binary form.
func (s *store) reload() {
	var t tally.Totals
	roundTrip(s.t, s.totals, &t)
	if err := t.Fits(s.sc.def); err != nil {
		s.t.Fatalf("reloaded totals: %v", err)
	}
	s.totals = &t
	for k, o := range s.owners {
		var back tally.OwnerState
		roundTrip(s.t, o, &back)
		s.owners[k] = &back
	}
	for k, u := range s.outcomes {
		var back tally.UnitOutcome
		roundTrip(s.t, &u, &back)
		s.outcomes[k] = back
	}
}

func (s *store) result() tally.Result {
	return tally.Decide(s.sc.def, s.sc.roster.TotalArea(), s.sc.roster.Headcount(), s.totals)
}

// checkScenario feeds sc to fresh stores in several random orders and
// checks each against Compute: the same published bytes, the same totals
// bytes across orders, the same outcome for every unit.
func checkScenario(t testing.TB, sc *scenario, r *rand.Rand, orders int) tally.Result {
	t.Helper()
	want, wantOutcomes := sc.compute()
	wantJSON := want.CanonicalJSON()
	var firstTotals []byte
	for range orders {
		s := newStore(t, sc)
		for _, e := range sc.events(r) {
			s.apply(e, r)
		}
		res := s.result()
		if got := res.CanonicalJSON(); !bytes.Equal(got, wantJSON) {
			t.Fatalf("incremental tally differs from Compute\n got %s\nwant %s", got, wantJSON)
		}
		totals, err := s.totals.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		if firstTotals == nil {
			firstTotals = totals
		} else if !bytes.Equal(totals, firstTotals) {
			t.Fatalf("totals depend on the order of arrival:\n%x\n%x", totals, firstTotals)
		}
		if len(s.outcomes) != len(wantOutcomes) {
			t.Fatalf("%d unit outcomes, Compute has %d", len(s.outcomes), len(wantOutcomes))
		}
		for unit, w := range wantOutcomes {
			g := s.outcomes[unit]
			gb, err1 := g.MarshalBinary()
			wb, err2 := w.MarshalBinary()
			if err1 != nil || err2 != nil || !bytes.Equal(gb, wb) {
				t.Fatalf("unit %s: incremental %+v, Compute %+v (%v, %v)", unit, g, w, err1, err2)
			}
		}
	}
	return want
}

// byteSource feeds math/rand from fuzz input, then from a generator seeded
// by that input once it runs out.
type byteSource struct {
	data []byte
	rest *rand.PCG
}

func newByteSource(data []byte) *byteSource {
	h := fnv.New64a()
	h.Write(data)
	return &byteSource{data: data, rest: rand.NewPCG(h.Sum64(), uint64(len(data)))}
}

func (s *byteSource) Uint64() uint64 {
	if len(s.data) == 0 {
		return s.rest.Uint64()
	}
	var b [8]byte
	n := copy(b[:], s.data)
	s.data = s.data[n:]
	return binary.LittleEndian.Uint64(b[:])
}
