package store_test

import (
	"context"
	"testing"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

// TestChainForks: a device's history may have gaps (accepted, flagged) but
// never two different records at one place (rejected as a fork).
func TestChainForks(t *testing.T) {
	sc, com, devs := randomScenario(t, 3)
	s := openStore(t, t.TempDir())
	setup(t, s, com, sc.units, devs, 0)
	d := devs[0]
	unit := sc.units[0].ID
	push := func(r *doorstepv1.SignedRecord) *doorstepv1.RecordResult {
		t.Helper()
		res, _, err := s.Push(context.Background(), eid, []*doorstepv1.SignedRecord{r})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	r1 := d.Ballot(t, unit, "", signedtest.Yes("m"))
	fork := *d // a second history branching after record 1
	r2 := d.Ballot(t, unit, "", signedtest.No("m"))
	r3 := d.Ballot(t, unit, "", signedtest.Abstain("m"))
	f2 := fork.Ballot(t, unit, "", signedtest.Yes("s"))
	f3 := fork.Ballot(t, unit, "", signedtest.No("s"))

	wantStatus := func(name string, got *doorstepv1.RecordResult, st doorstepv1.RecordStatus, reason doorstepv1.ReasonCode) {
		t.Helper()
		if got.Status != st || got.Reason != reason {
			t.Errorf("%s: got %v %v %q, want %v %v", name, got.Status, got.Reason, got.Message, st, reason)
		}
	}
	acceptedOrSuperseded := func(name string, got *doorstepv1.RecordResult) {
		t.Helper()
		if got.Status == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			t.Errorf("%s: rejected %v %q", name, got.Reason, got.Message)
		}
	}
	acceptedOrSuperseded("r1", push(r1))
	acceptedOrSuperseded("r3 before r2 (gap)", push(r3))
	// f3 names f2 as its predecessor, but nothing at 2 yet; its successor
	// slot is free: a different record at 3 is a fork.
	wantStatus("f3 at a taken place", push(f3), doorstepv1.RecordStatus_RECORD_STATUS_REJECTED, doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK)
	// f2 fits after r1 but r3 names r2 as its predecessor: fork.
	wantStatus("f2 contradicts its successor", push(f2), doorstepv1.RecordStatus_RECORD_STATUS_REJECTED, doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK)
	acceptedOrSuperseded("r2 fills the gap", push(r2))
	st, err := s.DeviceState(context.Background(), eid, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.HighSeq != 3 || len(st.MissingSeqs) != 0 {
		t.Errorf("device state: high %d missing %v, want 3 and none", st.HighSeq, st.MissingSeqs)
	}
	// A record whose predecessor hash does not match what the server holds.
	next := *d
	next.Prev = make([]byte, 32)
	wantStatus("wrong predecessor", push(next.Ballot(t, unit, "", signedtest.Yes("m"))), doorstepv1.RecordStatus_RECORD_STATUS_REJECTED, doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK)
}

// TestRefusedEnrollment: a refused enrollment answers its caller, lets the
// records committed beside it through, and leaves no key behind.
func TestRefusedEnrollment(t *testing.T) {
	sc, com, devs := randomScenario(t, 5)
	s := openStore(t, t.TempDir())
	setup(t, s, com, sc.units, devs, 0)
	intruder := signedtest.NewAuthor(eid, "", "intruder", t0)
	ctx := context.Background()
	errs := make(chan error, 1)
	go func() {
		_, err := s.Enroll(ctx, eid, signedtest.Token("tok0"), intruder.Public(), "") // already used by devs[0]
		errs <- err
	}()
	res, _, err := s.Push(ctx, eid, []*doorstepv1.SignedRecord{devs[1].Ballot(t, sc.units[0].ID, "", signedtest.Yes("m"))})
	if err != nil || res[0].Status == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
		t.Fatalf("a push beside a refused enrollment: %v %v", res, err)
	}
	if err := <-errs; err == nil {
		t.Fatal("a used token enrolled a second device")
	}
	if _, ok := s.AuthorKey(eid, rules.DeviceID(intruder.Public())); ok {
		t.Error("a refused enrollment left its key in the cache")
	}
}
