package store_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/store"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

const eid = "prop"

var t0 = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// openStore opens a fresh store in a temp dir and checks the file on
// cleanup.
func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), store.Config{
		Path: filepath.Join(dir, "tally.db"), Signer: ballotlog.NewKeySigner(signedtest.NewKey("server")), Origin: "test",
		Now: func() time.Time { return t0.Add(time.Hour) }, NoSync: true,
	})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Check(); err != nil {
			t.Errorf("bbolt check: %v", err)
		}
		s.Close()
	})
	return s
}

func propDefinition(committee []byte) *doorstepv1.ElectionDefinition {
	return &doorstepv1.ElectionDefinition{
		ElectionId: eid, Title: "property", CommitteePublicKey: committee,
		SyncDeadline: nil,
		Items: []*doorstepv1.Item{
			{ItemId: "m", Title: "motion", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY}}},
			{ItemId: "s", Title: "special", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL}}},
			{ItemId: "c", Title: "seats", Kind: &doorstepv1.Item_Candidates{Candidates: &doorstepv1.CandidateElection{Seats: 2, Candidates: []*doorstepv1.Candidate{
				{CandidateId: "x", Name: "X"}, {CandidateId: "y", Name: "Y"}, {CandidateId: "z", Name: "Z"}}}}},
		},
	}
}

// setup defines, fills and opens the election and enrolls devices; it is
// the same for every store in a property run.
func setup(t testing.TB, s *store.Store, com *signedtest.Author, units []election.Unit, devs []*signedtest.Author, policy doorstepv1.ContestPolicy) {
	t.Helper()
	ctx := context.Background()
	c := *com
	def := propDefinition(c.Public())
	def.ContestPolicy = policy
	def.SyncDeadline = tsOf(t0.Add(48 * time.Hour))
	if _, _, err := s.CreateElection(ctx, c.Committee(t, signedtest.Define(def))); err != nil {
		t.Fatal(err)
	}
	recs := []*doorstepv1.SignedRecord{c.Committee(t, signedtest.Roster(units)), c.Committee(t, signedtest.Open(units))}
	for i := range devs {
		recs = append(recs, c.Committee(t, signedtest.Grant(fmt.Sprint("tok", i), "")))
	}
	res, _, err := s.SubmitCommittee(ctx, eid, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
			t.Fatalf("setup: %v %s", r.Reason, r.Message)
		}
	}
	for i, d := range devs {
		id, err := s.Enroll(ctx, eid, signedtest.Token(fmt.Sprint("tok", i)), d.Public(), "")
		if err != nil {
			t.Fatal(err)
		}
		d.ID = id
	}
	*com = c
}

// scenario is a random set of accepted-to-be records after open.
type scenario struct {
	units     []election.Unit
	device    []*doorstepv1.SignedRecord
	committee []*doorstepv1.SignedRecord
}

func randomScenario(t testing.TB, seed uint64) (*scenario, *signedtest.Author, []*signedtest.Author) {
	r := rand.New(rand.NewPCG(seed, 1))
	var units []election.Unit
	nUnits := 3 + r.IntN(8)
	for i := 0; i < nUnits; i++ {
		owner := fmt.Sprint("o", r.IntN(nUnits))
		if r.IntN(5) == 0 {
			owner = "developer"
		}
		units = append(units, election.Unit{ID: fmt.Sprintf("1-1-%d", 101+i), Area: int64(5000 + r.IntN(9000)), OwnerKey: owner})
	}
	com := signedtest.NewAuthor(eid, election.CommitteeAuthor, fmt.Sprint("committee", seed), t0)
	devs := []*signedtest.Author{signedtest.NewAuthor(eid, "", "d1", t0), signedtest.NewAuthor(eid, "", "d2", t0), signedtest.NewAuthor(eid, "", "d3", t0)}
	return &scenario{units: units}, com, devs
}

func randomSelections(r *rand.Rand) []*doorstepv1.Selection {
	choices := []func(string) *doorstepv1.Selection{signedtest.Yes, signedtest.No, signedtest.Abstain}
	var out []*doorstepv1.Selection
	if r.IntN(4) > 0 {
		out = append(out, choices[r.IntN(3)]("m"))
	}
	if r.IntN(4) > 0 {
		out = append(out, choices[r.IntN(3)]("s"))
	}
	all := []string{"x", "y", "z"}
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	out = append(out, signedtest.Pick("c", all[:r.IntN(4)]...))
	return out
}

// fill makes the device and committee records of a scenario; the devices
// and committee must already be set up (ids assigned).
func (sc *scenario) fill(t testing.TB, seed uint64, com *signedtest.Author, devs []*signedtest.Author) {
	r := rand.New(rand.NewPCG(seed, 2))
	var ballotIDs = map[string][]string{}
	for i := 0; i < 5+r.IntN(25); i++ {
		d := devs[r.IntN(len(devs))]
		u := sc.units[r.IntN(len(sc.units))].ID
		sels := randomSelections(r)
		if prev := ballotIDs[u]; len(prev) > 0 && r.IntN(3) == 0 {
			// Identical double visit.
			rec := sc.device[len(sc.device)-1]
			if x, _ := signed.Decode(rec.Body); x.GetBallot().GetUnitId() == u {
				sels = x.GetBallot().GetSelections()
			}
		}
		var sup string
		if prev := ballotIDs[u]; len(prev) > 0 && r.IntN(3) == 0 {
			sup = prev[r.IntN(len(prev))]
		}
		var rec *doorstepv1.SignedRecord
		if r.IntN(6) == 0 {
			rec = d.Visit(t, u, doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME)
		} else {
			rec = d.Ballot(t, u, sup, sels...)
			ballotIDs[u] = append(ballotIDs[u], signedtest.RecordID(t, rec))
		}
		sc.device = append(sc.device, rec)
	}
	for i := 0; i < r.IntN(4); i++ {
		u := sc.units[r.IntN(len(sc.units))].ID
		var pick string
		if ids := ballotIDs[u]; len(ids) > 0 && r.IntN(4) > 0 {
			pick = ids[r.IntN(len(ids))]
		}
		sc.committee = append(sc.committee, com.Committee(t, signedtest.SettleUnit(u, pick)))
	}
	if r.IntN(2) == 0 {
		owner := sc.units[r.IntN(len(sc.units))].OwnerKey
		sc.committee = append(sc.committee, com.Committee(t, signedtest.SettleOwner(owner, "m", doorstepv1.Choice_CHOICE_YES)))
	}
}

type delivery struct {
	rec       *doorstepv1.SignedRecord
	committee bool
}

// run delivers the records in a random order, in random batches, with
// random exact retries, and returns the published tally bytes and the
// per-unit outcomes.
func run(t *testing.T, seed, order uint64, policy doorstepv1.ContestPolicy) ([]byte, map[string]tally.UnitOutcome) {
	t.Helper()
	sc, com, devs := randomScenario(t, seed)
	s := openStore(t, t.TempDir())
	setup(t, s, com, sc.units, devs, policy)
	sc.fill(t, seed, com, devs)
	var all []delivery
	for _, r := range sc.device {
		all = append(all, delivery{rec: r})
	}
	for _, r := range sc.committee {
		all = append(all, delivery{rec: r, committee: true})
	}
	r := rand.New(rand.NewPCG(order, 3))
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	for i := 0; i < len(all)/3; i++ { // retries
		all = append(all, all[r.IntN(len(all))])
	}
	r.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	ctx := context.Background()
	for len(all) > 0 {
		n := 1 + r.IntN(4)
		var dev, comm []*doorstepv1.SignedRecord
		for _, d := range all[:min(n, len(all))] {
			if d.committee {
				comm = append(comm, d.rec)
			} else {
				dev = append(dev, d.rec)
			}
		}
		all = all[min(n, len(all)):]
		for _, batch := range []struct {
			recs []*doorstepv1.SignedRecord
			f    func(context.Context, string, []*doorstepv1.SignedRecord) ([]*doorstepv1.RecordResult, *doorstepv1.Checkpoint, error)
		}{{dev, s.Push}, {comm, s.SubmitCommittee}} {
			if len(batch.recs) == 0 {
				continue
			}
			res, _, err := batch.f(ctx, eid, batch.recs)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range res {
				if x.Status == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
					t.Fatalf("seed %d: rejected %v: %s", seed, x.Reason, x.Message)
				}
			}
		}
	}
	res, _, err := s.Tally(ctx, eid)
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]tally.UnitOutcome{}
	if err := s.UnitOutcomes(ctx, eid, func(u string, o tally.UnitOutcome) error { outcomes[u] = o; return nil }); err != nil {
		t.Fatal(err)
	}
	if want := computeDirect(t, sc, policy); !bytes.Equal(res.CanonicalJSON(), want) {
		t.Fatalf("seed %d order %d: store tally differs from tally.Compute over the same records:\n got %s\nwant %s", seed, order, res.CanonicalJSON(), want)
	}
	return res.CanonicalJSON(), outcomes
}

// computeDirect is the batch reference: tally.Compute over the scenario's
// records, with no store involved.
func computeDirect(t *testing.T, sc *scenario, policy doorstepv1.ContestPolicy) []byte {
	t.Helper()
	pd := propDefinition(make([]byte, 32))
	pd.ContestPolicy = policy
	pd.SyncDeadline = tsOf(t0.Add(48 * time.Hour))
	def, err := rules.Definition(pd)
	if err != nil {
		t.Fatal(err)
	}
	roster, err := election.NewRoster(sc.units)
	if err != nil {
		t.Fatal(err)
	}
	ballots := map[string][]tally.Ballot{}
	for _, sr := range sc.device {
		rec, _ := signed.Decode(sr.Body)
		b := rec.GetBallot()
		if b == nil {
			continue
		}
		marks, _, err := def.Marks(rules.Selections(b.GetSelections()))
		if err != nil {
			t.Fatal(err)
		}
		ballots[b.GetUnitId()] = append(ballots[b.GetUnitId()], tally.Ballot{RecordID: rec.GetRecordId(), DeviceID: rec.GetAuthorId(), HLC: rec.GetHlc(), Supersedes: b.GetSupersedes(), Marks: marks})
	}
	unitDec := map[string]tally.UnitDecision{}
	ownerDec := map[string][]tally.OwnerDecision{}
	for _, sr := range sc.committee {
		rec, _ := signed.Decode(sr.Body)
		adj := rec.GetCommittee().GetAdjudication()
		if u := adj.GetUnit(); u != nil {
			d := tally.UnitDecision{Seq: rec.GetAuthorSeq(), CountedRecordID: u.GetCountedRecordId()}
			if old, ok := unitDec[u.GetUnitId()]; !ok || d.After(old) {
				unitDec[u.GetUnitId()] = d
			}
		}
		if o := adj.GetOwner(); o != nil {
			marks, _, err := def.Marks([]election.Selection{{ItemID: o.GetItemId(), Choice: election.Choice(o.GetChoice())}})
			if err != nil {
				t.Fatal(err)
			}
			i := def.ItemIndex(o.GetItemId())
			ownerDec[o.GetOwnerKey()] = append(ownerDec[o.GetOwnerKey()], tally.OwnerDecision{Seq: rec.GetAuthorSeq(), Item: i, Mark: marks[i]})
		}
	}
	res, _ := tally.Compute(def, roster, ballots, unitDec, ownerDec)
	return res.CanonicalJSON()
}

// TestOrderIndependence: the same records delivered to fresh stores in any
// order, with any retries, give the same per-unit state and the same tally
// bytes.
func TestOrderIndependence(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 10
	}
	policies := []doorstepv1.ContestPolicy{doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD, doorstepv1.ContestPolicy_CONTEST_POLICY_FIRST, doorstepv1.ContestPolicy_CONTEST_POLICY_LAST}
	for seed := uint64(1); seed <= uint64(seeds); seed++ {
		policy := policies[seed%3]
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			wantTally, wantUnits := run(t, seed, 0, policy)
			for order := uint64(1); order <= 3; order++ {
				gotTally, gotUnits := run(t, seed, order, policy)
				if !bytes.Equal(gotTally, wantTally) {
					t.Fatalf("order %d: tally differs:\n got %s\nwant %s", order, gotTally, wantTally)
				}
				if !reflect.DeepEqual(gotUnits, wantUnits) {
					t.Fatalf("order %d: unit outcomes differ:\n got %+v\nwant %+v", order, gotUnits, wantUnits)
				}
			}
		})
	}
}
