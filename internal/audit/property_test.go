package audit_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// TestRandomElectionsVerify runs random elections through the real store,
// with every kind of record and decision, retries and rejections, and
// checks the verifier upholds every decision of an honest server: its
// replay must agree with the store's, or honest records would be flagged.
func TestRandomElectionsVerify(t *testing.T) {
	seeds := 24
	if testing.Short() {
		seeds = 6
	}
	for seed := range uint64(seeds) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			randomElection(t, seed)
		})
	}
}

func randomElection(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 99))
	ctx := context.Background()
	now := synthStart
	st, err := store.Open(ctx, store.Config{
		Path: filepath.Join(t.TempDir(), "tally.db"), Signer: ballotlog.NewKeySigner(signedtest.NewKey("random server")), Origin: "random.example",
		Now: func() time.Time { return now }, NoSync: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const id = "estate-2026"
	com := signedtest.NewAuthor(id, election.CommitteeAuthor, fmt.Sprint("random committee ", seed), synthStart)
	def := synthDefinition(id, com.Public())
	def.ContestPolicy = []doorstepv1.ContestPolicy{doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD, doorstepv1.ContestPolicy_CONTEST_POLICY_FIRST, doorstepv1.ContestPolicy_CONTEST_POLICY_LAST}[r.IntN(3)]
	if _, _, err := st.CreateElection(ctx, com.Committee(t, signedtest.Define(def))); err != nil {
		t.Fatal(err)
	}
	var units []election.Unit
	for i := range 4 + r.IntN(6) {
		units = append(units, election.Unit{ID: fmt.Sprintf("%d-1-%d", 1+i%3, 101+i), Area: int64(5000 + r.IntN(9000)), OwnerKey: fmt.Sprint("o", r.IntN(4)), Building: fmt.Sprint(1 + i%3)})
	}
	submit := func(acts ...*doorstepv1.CommitteeAction) []*doorstepv1.RecordResult {
		var recs []*doorstepv1.SignedRecord
		for _, a := range acts {
			recs = append(recs, com.Committee(t, a))
		}
		res, _, err := st.SubmitCommittee(ctx, id, recs)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	submit(signedtest.Roster(units[:2]), signedtest.Roster(units[2:]), signedtest.Grant("a", "a"), signedtest.Grant("b", "b"), signedtest.Grant("c", "c"))
	var devs []*signedtest.Author
	for _, name := range []string{"a", "b", "c"} {
		d := signedtest.NewAuthor(id, "", fmt.Sprint("random device ", seed, name), synthStart.Add(time.Duration(r.IntN(100))*time.Second))
		if d.ID, err = st.Enroll(ctx, id, signedtest.Token(name), d.Public(), name); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
	}
	// A ballot before the open is logged and rejected.
	early := devs[0].Ballot(t, units[0].ID, "", signedtest.Yes("rules"))
	if _, _, err := st.Push(ctx, id, []*doorstepv1.SignedRecord{early}); err != nil {
		t.Fatal(err)
	}
	submit(signedtest.Open(units))

	picks := []string{"c1", "c2", "c3"}
	var ballots []*doorstepv1.SignedRecord
	var ballotUnit []string
	sels := func() []*doorstepv1.Selection {
		var out []*doorstepv1.Selection
		if r.IntN(5) > 0 {
			out = append(out, []func(string) *doorstepv1.Selection{signedtest.Yes, signedtest.No, signedtest.Abstain}[r.IntN(3)]("rules"))
		}
		if r.IntN(3) > 0 {
			out = append(out, []func(string) *doorstepv1.Selection{signedtest.Yes, signedtest.No}[r.IntN(2)]("fund"))
		}
		n := r.IntN(4)
		out = append(out, signedtest.Pick("board", picks[:n]...))
		if r.IntN(12) == 0 {
			out = append(out, signedtest.Pick("nope", "c1")) // invalid selection: rejected
		}
		return out
	}
	for step := range 40 {
		now = now.Add(time.Duration(r.IntN(60)) * time.Second)
		d := devs[r.IntN(len(devs))]
		var sr *doorstepv1.SignedRecord
		switch k := r.IntN(10); {
		case k < 6:
			unit := units[r.IntN(len(units))].ID
			if r.IntN(15) == 0 {
				unit = "9-9-999"
			}
			sup := ""
			if len(ballots) > 0 && r.IntN(4) == 0 {
				sup = signedtest.RecordID(t, ballots[r.IntN(len(ballots))])
			}
			sr = d.Ballot(t, unit, sup, sels()...)
			ballots, ballotUnit = append(ballots, sr), append(ballotUnit, unit)
		case k < 7 && len(ballots) > 0:
			// A copy of an earlier ballot's answers at the same unit.
			i := r.IntN(len(ballots))
			rec := decodeBallot(t, ballots[i])
			sr = d.Ballot(t, ballotUnit[i], "", rec.GetSelections()...)
			ballots, ballotUnit = append(ballots, sr), append(ballotUnit, ballotUnit[i])
		case k < 8:
			sr = d.Visit(t, units[r.IntN(len(units))].ID, doorstepv1.VisitOutcome(1+r.IntN(4)))
		case k < 9 && len(ballots) > 0:
			i := r.IntN(len(ballots))
			target := signedtest.RecordID(t, ballots[i])
			if r.IntN(3) == 0 {
				target = ""
			}
			submit(signedtest.SettleUnit(ballotUnit[i], target))
			continue
		default:
			submit(signedtest.SettleOwner(fmt.Sprint("o", r.IntN(4)), "rules", doorstepv1.Choice(1+r.IntN(3))))
			continue
		}
		batch := []*doorstepv1.SignedRecord{sr}
		if r.IntN(6) == 0 {
			batch = append(batch, sr) // an exact retry in the same batch
		}
		if _, _, err := st.Push(ctx, id, batch); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		if step == 30 {
			submit(signedtest.Revoke(devs[2].ID, 0))
		}
	}
	submit(signedtest.Close())
	// Ballots made before the close still arrive; then the deadline passes.
	late := devs[0].Ballot(t, units[0].ID, "", sels()...)
	if _, _, err := st.Push(ctx, id, []*doorstepv1.SignedRecord{late}); err != nil {
		t.Fatal(err)
	}
	now = synthStart.Add(100 * time.Hour)
	tooLate := devs[1].Ballot(t, units[1].ID, "", sels()...)
	if _, _, err := st.Push(ctx, id, []*doorstepv1.SignedRecord{tooLate}); err != nil {
		t.Fatal(err)
	}

	rep, err := audit.Export(ctx, st.RecordSource(id), filepath.Join(t.TempDir(), "record"))
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || !rep.TallyMatches {
		t.Fatalf("an honest server's record does not verify:\n%s", findings(rep))
	}
	if rep.Stats.Rejected == 0 {
		t.Errorf("no rejection in the log; the scenario should have some")
	}
}

func decodeBallot(t *testing.T, sr *doorstepv1.SignedRecord) *doorstepv1.Ballot {
	t.Helper()
	e, err := recordOf(sr)
	if err != nil {
		t.Fatal(err)
	}
	return e.GetBallot()
}

func recordOf(sr *doorstepv1.SignedRecord) (*doorstepv1.Record, error) {
	return signed.Decode(sr.GetBody())
}
