package tallyd_test

import (
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

const testElection = "estate-2026"

var base = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// scenarioElection is the election the end-to-end test runs: the example
// election's shape (7 of 9 candidates, two ORDINARY motions, one SPECIAL).
type scenarioElection struct {
	def                     *doorstepv1.ElectionDefinition
	units                   []election.Unit
	cand, rules, roof, fund string
	cands                   []string
}

func loadScenario(t *testing.T, committeeKey []byte) *scenarioElection {
	t.Helper()
	def, units := exampleElection(t)
	def.ElectionId = testElection
	def.CommitteePublicKey = committeeKey
	def.SyncDeadline = nil
	def.SyncDeadline = tsOf(base.Add(48 * time.Hour))
	s := &scenarioElection{def: def, units: units}
	for _, it := range def.Items {
		switch k := it.Kind.(type) {
		case *doorstepv1.Item_Candidates:
			s.cand = it.ItemId
			for _, c := range k.Candidates.Candidates {
				s.cands = append(s.cands, c.CandidateId)
			}
		case *doorstepv1.Item_Motion:
			switch {
			case k.Motion.Threshold == doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL:
				s.fund = it.ItemId
			case s.rules == "":
				s.rules = it.ItemId
			default:
				s.roof = it.ItemId
			}
		}
	}
	if s.cand == "" || s.rules == "" || s.roof == "" || s.fund == "" || len(s.cands) < 9 {
		t.Fatalf("example election lacks the expected items: %+v", s)
	}
	return s
}

// pickUnits returns n units whose owners hold exactly one unit, and one
// owner with two or more units.
func (s *scenarioElection) pickUnits(t *testing.T, n int) (singles []election.Unit, multiOwner string, multi []election.Unit) {
	t.Helper()
	byOwner := map[string][]election.Unit{}
	for _, u := range s.units {
		byOwner[u.OwnerKey] = append(byOwner[u.OwnerKey], u)
	}
	for _, u := range s.units {
		if len(byOwner[u.OwnerKey]) == 1 && len(singles) < n {
			singles = append(singles, u)
		}
	}
	owners := make([]string, 0, len(byOwner))
	for o, us := range byOwner {
		if len(us) >= 2 && !us[0].DeveloperHeld {
			owners = append(owners, o)
		}
	}
	slices.Sort(owners)
	if len(singles) < n || len(owners) == 0 {
		t.Fatalf("roster has too few single-unit owners or no multi-unit owner")
	}
	return singles, owners[0], byOwner[owners[0]][:2]
}

func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{t: base}
	h := startHarness(t, dir, clk)

	com := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "committee", base.Add(-time.Hour))
	sc := loadScenario(t, com.Public())
	singles, ownerM, mUnits := sc.pickUnits(t, 12)
	s := func(i int) string { return singles[i].ID }
	m1, m2 := mUnits[0].ID, mUnits[1].ID
	area := func(id string) int64 {
		for _, u := range sc.units {
			if u.ID == id {
				return u.Area
			}
		}
		t.Fatalf("no unit %s", id)
		return 0
	}

	// The committee defines the election, imports the roster, opens it and
	// grants four enrollments.
	define := com.Committee(t, signedtest.Define(sc.def))
	cr := h.create(t, com, define)
	if cr.Result.Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		t.Fatalf("create election: %v", cr.Result)
	}
	// Retrying the creation is answered the same way.
	again, err := h.elec.CreateElection(ctx(t), &doorstepv1.CreateElectionRequest{Record: define}, callauth.Operator(h.srv.OperatorToken()))
	if err != nil || !again.Result.Replayed || again.Result.LogIndex != cr.Result.LogIndex {
		t.Fatalf("retried create election: %v %v", again, err)
	}
	var chunks []*doorstepv1.SignedRecord
	for i := 0; i < len(sc.units); i += 100 {
		chunks = append(chunks, com.Committee(t, signedtest.Roster(sc.units[i:min(i+100, len(sc.units))])))
	}
	h.committee(t, chunks...)
	h.committee(t, com.Committee(t, signedtest.Open(sc.units)),
		com.Committee(t, signedtest.Grant("token-a", "canvasser A")),
		com.Committee(t, signedtest.Grant("token-b", "canvasser B")),
		com.Committee(t, signedtest.Grant("token-c", "canvasser C")),
		com.Committee(t, signedtest.Grant("token-e", "canvasser E")))

	A := signedtest.NewAuthor(testElection, "", "device-a", base)
	B := signedtest.NewAuthor(testElection, "", "device-b", base)
	C := signedtest.NewAuthor(testElection, "", "device-c", base)
	D := signedtest.NewAuthor(testElection, "dv-0000000000000000", "device-d", base) // never enrolled
	E := signedtest.NewAuthor(testElection, "", "device-e", base)
	for _, x := range []struct {
		a   *signedtest.Author
		tok string
	}{{A, "token-a"}, {B, "token-b"}, {C, "token-c"}, {E, "token-e"}} {
		h.enroll(t, x.a, x.tok)
	}
	// A used token is refused to another key.
	if _, err := h.sync.Enroll(ctx(t), &doorstepv1.EnrollRequest{ElectionId: testElection, EnrollmentToken: signedtest.Token("token-a"), DevicePublicKey: D.Public()}); statusCode(err) != 7 /* PermissionDenied */ {
		t.Errorf("reused token: got %v, want PermissionDenied", err)
	}

	c := sc.cands
	Y, N, Ab, P := signedtest.Yes, signedtest.No, signedtest.Abstain, signedtest.Pick
	accepted := want{status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED}
	rejected := func(r doorstepv1.ReasonCode) want {
		return want{status: doorstepv1.RecordStatus_RECORD_STATUS_REJECTED, reason: r}
	}

	// s1: a plain ballot, then an exact retry.
	b1 := A.Ballot(t, s(1), "", P(sc.cand, c[0], c[1], c[2]), Y(sc.rules), Y(sc.roof), N(sc.fund))
	r := h.push(t, b1)
	check(t, "s1", r[0], accepted)
	if r[0].ReceiptCode == "" {
		t.Errorf("s1: no receipt code")
	}
	size := h.checkpointSize(t)
	r2 := h.push(t, b1)
	if !proto.Equal(stripReplay(r2[0]), r[0]) || !r2[0].Replayed {
		t.Errorf("exact retry: got %v, want the original answer %v replayed", r2[0], r[0])
	}
	if got := h.checkpointSize(t); got != size {
		t.Errorf("exact retry grew the log from %d to %d", size, got)
	}

	// Same id, different bytes: id reuse, nothing overwritten.
	check(t, "id reuse", h.push(t, reuseID(t, A, b1, s(2)))[0], rejected(doorstepv1.ReasonCode_REASON_CODE_ID_REUSE))

	// A bad signature: made on a copy of A so A's own chain is untouched.
	forged := *A
	bad := forged.Ballot(t, s(2), "", Y(sc.rules))
	bad.Signature[0] ^= 0xff
	check(t, "bad signature", h.push(t, bad)[0], rejected(doorstepv1.ReasonCode_REASON_CODE_BAD_SIGNATURE))

	// Malformed bytes, an unknown unit and an unenrolled device.
	check(t, "malformed", h.push(t, &doorstepv1.SignedRecord{Body: []byte{0xff, 0x01, 0x02}, Signature: make([]byte, 64)})[0], rejected(doorstepv1.ReasonCode_REASON_CODE_MALFORMED))
	check(t, "unknown unit", h.push(t, A.Ballot(t, "99-9-999", "", Y(sc.rules)))[0], rejected(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT))
	check(t, "unenrolled", h.push(t, D.Ballot(t, s(3), "", Y(sc.rules)))[0], rejected(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_DEVICE))
	check(t, "unknown item", h.push(t, A.Ballot(t, s(3), "", Y("no-such-item")))[0], rejected(doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION))

	// s4: more picks than seats invalidates that item only.
	check(t, "over-K", h.push(t, B.Ballot(t, s(4), "", P(sc.cand, c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]), N(sc.rules), Ab(sc.roof)))[0],
		want{status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED, flags: []doorstepv1.RecordFlag{doorstepv1.RecordFlag_RECORD_FLAG_ITEM_INVALID}})

	// s5: two canvassers, two different ballots.
	a5 := A.Ballot(t, s(5), "", P(sc.cand, c[0]), Y(sc.rules), N(sc.roof), Y(sc.fund))
	check(t, "s5 first", h.push(t, a5)[0], accepted)
	// The device is told only that its ballot was accepted: whether it
	// agrees with another canvasser's is the committee's to see.
	b5 := h.push(t, B.Ballot(t, s(5), "", P(sc.cand, c[1]), N(sc.rules), N(sc.roof), N(sc.fund)))[0]
	check(t, "s5 second, as the device hears it", b5, accepted)
	check(t, "s5 second, as logged", h.logged(t, b5), want{status: doorstepv1.RecordStatus_RECORD_STATUS_CONTESTED})

	// s6: the owner changes their mind.
	first6 := A.Ballot(t, s(6), "", P(sc.cand, c[1]), Y(sc.rules), Y(sc.roof), Y(sc.fund))
	check(t, "s6 first", h.push(t, first6)[0], accepted)
	check(t, "s6 revised", h.push(t, A.Ballot(t, s(6), signedtest.RecordID(t, first6), P(sc.cand, c[1]), N(sc.rules), Y(sc.roof), Y(sc.fund)))[0], accepted)

	// s7: the same ballot collected twice counts once.
	sel7 := []*doorstepv1.Selection{P(sc.cand, c[0], c[3]), Y(sc.rules), Y(sc.roof), Y(sc.fund)}
	check(t, "s7 first", h.push(t, A.Ballot(t, s(7), "", sel7...))[0], accepted)
	b7 := h.push(t, B.Ballot(t, s(7), "", sel7...))[0]
	check(t, "s7 double, as the device hears it", b7, accepted)
	check(t, "s7 double, as logged", h.logged(t, b7), want{status: doorstepv1.RecordStatus_RECORD_STATUS_DUPLICATE})

	// A multi-unit owner whose two units disagree on the rules.
	check(t, "m1", h.push(t, A.Ballot(t, m1, "", P(sc.cand, c[0]), Y(sc.rules), Y(sc.roof), N(sc.fund)))[0], accepted)
	check(t, "m2", h.push(t, B.Ballot(t, m2, "", P(sc.cand, c[0]), N(sc.rules), Y(sc.roof), N(sc.fund)))[0], accepted)

	// C's records arrive with a gap that fills later.
	c1 := C.Ballot(t, s(8), "", P(sc.cand, c[2]), Y(sc.rules), N(sc.roof), N(sc.fund))
	c2 := C.Ballot(t, s(9), "")
	c3 := C.Visit(t, s(10), doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME)
	r = h.push(t, c1, c3)
	check(t, "c1", r[0], accepted)
	check(t, "c3 after gap", r[1], want{status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED, flags: []doorstepv1.RecordFlag{doorstepv1.RecordFlag_RECORD_FLAG_CHAIN_GAP}})
	st := h.deviceState(t, C)
	if st.HighSeq != 1 || st.MaxSeq != 3 || !slices.Equal(st.MissingSeqs, []uint64{2}) {
		t.Errorf("device state with a gap: got high %d max %d missing %v, want 1, 3, [2]", st.HighSeq, st.MaxSeq, st.MissingSeqs)
	}
	check(t, "c2 fills the gap", h.push(t, c2)[0], accepted)
	if st := h.deviceState(t, C); st.HighSeq != 3 || len(st.MissingSeqs) != 0 {
		t.Errorf("device state after the gap filled: high %d missing %v", st.HighSeq, st.MissingSeqs)
	}

	// The committee sees the contested unit and the split owner.
	cl, err := h.elec.ListContestedUnits(ctx(t), &doorstepv1.ListContestedUnitsRequest{ElectionId: testElection}, signedCall(testElection, election.CommitteeAuthor, com.Key, clk.Now))
	if err != nil {
		t.Fatalf("list contested: %v", err)
	}
	if len(cl.Units) != 1 || cl.Units[0].UnitId != s(5) || len(cl.Units[0].Ballots) != 2 {
		t.Errorf("contested units: %v, want %s with 2 ballots", cl.Units, s(5))
	}
	if len(cl.SplitOwners) != 1 || cl.SplitOwners[0].OwnerKey != ownerM || cl.SplitOwners[0].ItemId != sc.rules {
		t.Errorf("split owners: %v, want %s on %s", cl.SplitOwners, ownerM, sc.rules)
	}
	var unitsM []string // in unit id order, as the list gives them
	for _, u := range sc.units {
		if u.OwnerKey == ownerM {
			unitsM = append(unitsM, u.ID)
		}
	}
	slices.Sort(unitsM)
	if got := cl.GetSplitOwners(); len(got) == 1 && (!slices.Equal(got[0].UnitIds, unitsM) || !slices.Contains(unitsM, m1) || !slices.Contains(unitsM, m2)) {
		t.Errorf("split owner %s: units %v, want %v", ownerM, got[0].UnitIds, unitsM)
	}
	// One entry a page: the contested unit, then the split owner.
	var pages [][]string
	for token := ""; ; {
		p, err := h.elec.ListContestedUnits(ctx(t), &doorstepv1.ListContestedUnitsRequest{ElectionId: testElection, PageSize: 1, PageToken: token}, signedCall(testElection, election.CommitteeAuthor, com.Key, clk.Now))
		if err != nil {
			t.Fatalf("list contested, page %d: %v", len(pages)+1, err)
		}
		var page []string
		for _, u := range p.Units {
			page = append(page, "unit "+u.UnitId)
		}
		for _, o := range p.SplitOwners {
			page = append(page, "owner "+o.OwnerKey)
		}
		pages = append(pages, page)
		if token = p.NextPageToken; token == "" || len(pages) > 5 {
			break
		}
	}
	if want := [][]string{{"unit " + s(5)}, {"owner " + ownerM}}; !slices.EqualFunc(pages, want, slices.Equal[[]string]) {
		t.Errorf("pages of one: %q, want %q", pages, want)
	}
	// A device may not read the tally.
	if _, err := h.elec.GetTally(ctx(t), &doorstepv1.GetTallyRequest{ElectionId: testElection}, signedCall(testElection, A.ID, A.Key, clk.Now)); statusCode(err) != 7 {
		t.Errorf("a device read the tally: %v", err)
	}
	before := h.tally(t, com.Key)
	rulesBefore := item(t, before, sc.rules)
	if rulesBefore.HeldHeadcount != 1 || before.UnitsContested != 1 {
		t.Errorf("before adjudication: held %d contested %d, want 1 and 1", rulesBefore.HeldHeadcount, before.UnitsContested)
	}

	// Revoke C; its later records are refused.
	h.committee(t, com.Committee(t, signedtest.Revoke(C.ID, 0)))
	check(t, "revoked", h.push(t, C.Ballot(t, s(11), "", Y(sc.rules)))[0], rejected(doorstepv1.ReasonCode_REASON_CODE_DEVICE_REVOKED))
	if _, err := h.sync.GetDeviceState(ctx(t), &doorstepv1.GetDeviceStateRequest{ElectionId: testElection, DeviceId: C.ID}, signedCall(testElection, C.ID, C.Key, clk.Now)); statusCode(err) != 7 /* PermissionDenied */ {
		t.Errorf("a revoked device's signed call: got %v, want PermissionDenied", err)
	}

	// The committee settles s5 for A's ballot and the split owner for yes.
	h.committee(t, com.Committee(t, signedtest.SettleUnit(s(5), signedtest.RecordID(t, a5))),
		com.Committee(t, signedtest.SettleOwner(ownerM, sc.rules, doorstepv1.Choice_CHOICE_YES)))

	// E collects a ballot before close but syncs late.
	late := E.Ballot(t, s(0), "", Y(sc.rules))
	// B's s12 ballot is made before close and arrives after it.
	b12 := B.Ballot(t, s(12-1), "", P(sc.cand, c[0], c[1]), Y(sc.rules), Y(sc.roof), Y(sc.fund))
	clk.Set(base.Add(time.Hour))
	h.committee(t, com.Committee(t, signedtest.Close()))
	check(t, "made before close", h.push(t, b12)[0], accepted)
	B.Clock = base.Add(2 * time.Hour)
	check(t, "made after close", h.push(t, B.Ballot(t, s(2), "", Y(sc.rules)))[0], rejected(doorstepv1.ReasonCode_REASON_CODE_ELECTION_CLOSED))
	clk.Set(base.Add(49 * time.Hour))
	check(t, "after sync deadline", h.push(t, late)[0], rejected(doorstepv1.ReasonCode_REASON_CODE_AFTER_SYNC_DEADLINE))

	// The tally, computed by hand. Counted units: s1 s4 s5(A) s6(revised)
	// s7 m1 m2 s8 s9 s11(b12); owners: eight single owners and M.
	a := func(ids ...string) int64 {
		var sum int64
		for _, id := range ids {
			sum += area(id)
		}
		return sum
	}
	all := []string{s(1), s(4), s(5), s(6), s(7), m1, m2, s(8), s(9), s(11)}
	got := h.tally(t, com.Key)
	if got.UnitsCounted != 10 || got.UnitsContested != 0 || got.UnitsDoubleVisited != 1 {
		t.Errorf("units: counted %d contested %d double %d, want 10, 0, 1", got.UnitsCounted, got.UnitsContested, got.UnitsDoubleVisited)
	}
	var rosterArea int64
	for _, u := range sc.units {
		rosterArea += u.Area
	}
	if got.RosterArea != rosterArea || got.RosterUnits != uint64(len(sc.units)) {
		t.Errorf("roster: area %d units %d, want %d %d", got.RosterArea, got.RosterUnits, rosterArea, len(sc.units))
	}
	cnt := func(area int64, head uint64) *doorstepv1.Count { return &doorstepv1.Count{Area: area, Headcount: head} }
	type motion struct {
		id               string
		yes, no, abstain *doorstepv1.Count
	}
	for _, m := range []motion{
		{sc.rules, cnt(a(s(1), s(5), s(7), m1, s(8), s(11)), 6), cnt(a(s(4), s(6), m2), 2), cnt(a(s(9)), 1)},
		{sc.roof, cnt(a(s(1), s(6), s(7), m1, m2, s(11)), 5), cnt(a(s(5), s(8)), 2), cnt(a(s(4), s(9)), 2)},
		{sc.fund, cnt(a(s(5), s(6), s(7), s(11)), 4), cnt(a(s(1), m1, m2, s(8)), 3), cnt(a(s(4), s(9)), 2)},
	} {
		it := item(t, got, m.id)
		wantPart := cnt(a(all...), 9)
		for _, x := range []struct {
			name      string
			got, want *doorstepv1.Count
		}{{"participating", it.Participating, wantPart}, {"yes", it.Yes, m.yes}, {"no", it.No, m.no}, {"abstain", it.Abstain, m.abstain}} {
			if !proto.Equal(x.got, x.want) {
				t.Errorf("%s %s: got %v, want %v", m.id, x.name, x.got, x.want)
			}
		}
		if it.HeldHeadcount != 0 || it.Outcome != doorstepv1.Outcome_OUTCOME_NO_QUORUM || it.QuorumMet {
			t.Errorf("%s: held %d outcome %v quorum %v, want 0, no quorum", m.id, it.HeldHeadcount, it.Outcome, it.QuorumMet)
		}
	}
	ci := item(t, got, sc.cand)
	if !proto.Equal(ci.Invalid, cnt(a(s(4)), 1)) || !proto.Equal(ci.Abstain, cnt(a(s(9)), 1)) || !proto.Equal(ci.Participating, cnt(a(all...), 9)) {
		t.Errorf("candidates: invalid %v abstain %v participating %v", ci.Invalid, ci.Abstain, ci.Participating)
	}
	wantSupport := map[string]*doorstepv1.Count{
		c[0]: cnt(a(s(1), s(5), s(7), m1, m2, s(11)), 5),
		c[1]: cnt(a(s(1), s(6), s(11)), 3),
		c[2]: cnt(a(s(1), s(8)), 2),
		c[3]: cnt(a(s(7)), 1),
	}
	for _, ct := range ci.Candidates {
		w := wantSupport[ct.CandidateId]
		if w == nil {
			w = cnt(0, 0)
		}
		if !proto.Equal(ct.Support, w) {
			t.Errorf("candidate %s: support %v, want %v", ct.CandidateId, ct.Support, w)
		}
	}
	if got.Checkpoint.GetSize() == 0 {
		t.Errorf("the tally names no checkpoint")
	}

	// Restart: everything is as it was, with nothing replayed.
	stA := h.deviceState(t, A)
	h.stop()
	known := h.authors
	h = startHarness(t, dir, clk)
	h.authors = known
	after := h.tally(t, com.Key)
	if !proto.Equal(after, got) {
		t.Errorf("tally after restart differs:\n got %v\nwant %v", after, got)
	}
	if st := h.deviceState(t, A); !proto.Equal(withoutTime(st), withoutTime(stA)) {
		t.Errorf("device state after restart: %v, want %v", st, stA)
	}
	// Retries after the restart still get their original answers.
	if r := h.push(t, b1)[0]; !r.Replayed || r.Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		t.Errorf("retry after restart: %v", r)
	}
}

func item(t *testing.T, tl *doorstepv1.Tally, id string) *doorstepv1.ItemTally {
	t.Helper()
	for _, it := range tl.Items {
		if it.ItemId == id {
			return it
		}
	}
	t.Fatalf("tally has no item %s", id)
	return nil
}

func stripReplay(r *doorstepv1.RecordResult) *doorstepv1.RecordResult {
	c := proto.Clone(r).(*doorstepv1.RecordResult)
	c.Replayed = false
	return c
}

func withoutTime(s *doorstepv1.GetDeviceStateResponse) *doorstepv1.GetDeviceStateResponse {
	c := proto.Clone(s).(*doorstepv1.GetDeviceStateResponse)
	c.ServerTime = nil
	return c
}

func (h *harness) deviceState(t *testing.T, a *signedtest.Author) *doorstepv1.GetDeviceStateResponse {
	t.Helper()
	st, err := h.sync.GetDeviceState(ctx(t), &doorstepv1.GetDeviceStateRequest{ElectionId: testElection, DeviceId: a.ID}, signedCall(testElection, a.ID, a.Key, h.clock.Now))
	if err != nil {
		t.Fatalf("device state: %v", err)
	}
	return st
}

func (h *harness) checkpointSize(t *testing.T) uint64 {
	t.Helper()
	cp, err := h.srv.Store().Checkpoint(ctx(t), testElection)
	if err != nil {
		t.Fatal(err)
	}
	return cp.Size
}
