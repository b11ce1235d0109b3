package tallyd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// The attacks of the trust-boundaries issue, each tried through real gRPC
// on loopback against a real tallyd. Every one of them worked against the
// server before roles, door refusals, bound call signatures and the
// same-chain supersede rule.

// attackElection is an open election with canvassers A and B enrolled.
type attackElection struct {
	h    *harness
	clk  *clock
	com  *signedtest.Author
	A, B *signedtest.Author
	sc   *scenarioElection
}

func newAttackElection(t *testing.T) *attackElection {
	t.Helper()
	clk := &clock{t: base}
	h := startHarness(t, t.TempDir(), clk)
	com := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "committee", base.Add(-time.Hour))
	sc := loadScenario(t, com.Public())
	h.create(t, com, com.Committee(t, signedtest.Define(sc.def)))
	h.committee(t, com.Committee(t, signedtest.Roster(sc.units)), com.Committee(t, signedtest.Open(sc.units)),
		com.Committee(t, signedtest.Grant("tok-a", "A")), com.Committee(t, signedtest.Grant("tok-b", "B")))
	e := &attackElection{h: h, clk: clk, com: com, sc: sc,
		A: signedtest.NewAuthor(testElection, "", "attack device A", base), B: signedtest.NewAuthor(testElection, "", "attack device B", base)}
	h.enroll(t, e.A, "tok-a")
	h.enroll(t, e.B, "tok-b")
	return e
}

// logSize is the number of entries in the election's log.
func (e *attackElection) logSize(t *testing.T) int64 {
	t.Helper()
	n, err := e.h.srv.Store().LogSize(ctx(t), testElection)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// exportAndVerify writes the election record as it stands (the live
// tally) and verifies it.
func (e *attackElection) exportAndVerify(t *testing.T) *audit.Report {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "record")
	if _, err := audit.Export(ctx(t), liveSource{e.h.srv.Store().RecordSource(testElection), e.h.srv.Store()}, dir); err != nil {
		t.Fatalf("export: %v", err)
	}
	rep, err := audit.Verify(ctx(t), dir)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return rep
}

// liveSource exports an election before its close, with the live tally.
type liveSource struct {
	*store.RecordSource
	st *store.Store
}

func (l liveSource) Tally(c context.Context) ([]byte, *doorstepv1.Checkpoint, error) {
	res, cp, err := l.st.Tally(c, testElection)
	if err != nil {
		return nil, nil, err
	}
	return res.CanonicalJSON(), cp, nil
}

func TestAttackPaddedSignatureCannotBreakExport(t *testing.T) {
	e := newAttackElection(t)
	before := e.logSize(t)
	// A tiny body with a signature padded to nearly the message limit.
	junk := &doorstepv1.SignedRecord{Body: e.A.Ballot(t, e.sc.units[0].ID, "").GetBody(), Signature: bytes.Repeat([]byte{7}, 8<<20-4096)}
	// Anonymously it does not get in at all.
	conn, err := e.h.srv.Client().New(e.h.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = doorstepv1.NewSyncServiceClient(conn).PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: []*doorstepv1.SignedRecord{junk}})
	if statusCode(err) != codes.Unauthenticated {
		t.Fatalf("an anonymous push: %v; want Unauthenticated", err)
	}
	// From an enrolled device it is refused at the door and not logged.
	r := e.h.push(t, junk)[0]
	if !r.Refused || r.Reason != doorstepv1.ReasonCode_REASON_CODE_BAD_SIGNATURE {
		t.Fatalf("a padded signature: %v; want refused at the door", r)
	}
	if got := e.logSize(t); got != before {
		t.Fatalf("the log grew from %d to %d entries", before, got)
	}
	if rep := e.exportAndVerify(t); !rep.OK() {
		t.Fatalf("the election record no longer verifies: %v", rep.Discrepancies)
	}
}

func TestAttackCanvasserCannotReplaceAnothersBallot(t *testing.T) {
	e := newAttackElection(t)
	unit := e.sc.units[0].ID
	b := e.B.Ballot(t, unit, "", signedtest.Yes(e.sc.rules))
	e.h.push(t, b)
	a := e.A.Ballot(t, unit, signedtest.RecordID(t, b), signedtest.No(e.sc.rules))
	if r := e.h.push(t, a)[0]; r.Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		t.Fatalf("A's ballot naming B's: %v; want accepted (both stay live)", r)
	}
	cl, err := e.h.elec.ListContestedUnits(ctx(t), &doorstepv1.ListContestedUnitsRequest{ElectionId: testElection}, e.h.as(e.com))
	if err != nil {
		t.Fatal(err)
	}
	if len(cl.Units) != 1 || cl.Units[0].UnitId != unit || len(cl.Units[0].Ballots) != 2 {
		t.Fatalf("contested units %v; want %s with both ballots", cl.Units, unit)
	}
	receipt := ballotlog.ReceiptCode(b.GetBody(), b.GetSignature())
	lr, err := doorstepv1.NewAuditServiceClient(e.h.conn).LookupReceipt(ctx(t), &doorstepv1.LookupReceiptRequest{ElectionId: testElection, ReceiptCode: receipt})
	if err != nil {
		t.Fatal(err)
	}
	if lr.Status != doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED {
		t.Errorf("B's household receipt says %v; want CONTESTED, not SUPERSEDED", lr.Status)
	}
	if rep := e.exportAndVerify(t); !rep.OK() || rep.Tally.UnitsContested != 1 {
		t.Errorf("the verifier: ok %v, %d contested; want ok and 1", rep.OK(), rep.Tally.UnitsContested)
	}
}

func TestAttackCapturedCallSignature(t *testing.T) {
	e := newAttackElection(t)
	// Capture the committee's signature on a call for entries 0 to 1.
	signer := &callauth.Signer{ElectionID: testElection, KeyID: election.CommitteeAuthor, Key: e.com.Key, Now: e.clk.Now}
	small := &doorstepv1.StreamLogEntriesRequest{ElectionId: testElection, Start: 0, End: 1}
	h, err := callauth.RequestHash(small)
	if err != nil {
		t.Fatal(err)
	}
	md, err := signer.Metadata(doorstepv1.AuditService_StreamLogEntries_FullMethodName, h)
	if err != nil {
		t.Fatal(err)
	}
	stream := func(req *doorstepv1.StreamLogEntriesRequest) (int, error) {
		st, err := doorstepv1.NewAuditServiceClient(e.h.conn).StreamLogEntries(metadata.NewOutgoingContext(ctx(t), md), req)
		if err != nil {
			return 0, err
		}
		n := 0
		for {
			if _, err := st.Recv(); errors.Is(err, io.EOF) {
				return n, nil
			} else if err != nil {
				return n, err
			}
			n++
		}
	}
	if n, err := stream(small); err != nil || n != 1 {
		t.Fatalf("the signed call: %d entries, %v", n, err)
	}
	if n, err := stream(&doorstepv1.StreamLogEntriesRequest{ElectionId: testElection}); statusCode(err) != codes.Unauthenticated || n != 0 {
		t.Errorf("the signature replayed with another range: %d entries, %v; want Unauthenticated and nothing", n, err)
	}
	if n, err := stream(small); statusCode(err) != codes.Unauthenticated || n != 0 {
		t.Errorf("the same call replayed: %d entries, %v; want Unauthenticated", n, err)
	}
	// And nobody on the Wi-Fi reads the calls: the server speaks only TLS.
	plain, err := client.Config{Plaintext: true}.New(e.h.srv.Addr(), grpc.WithDisableRetry())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if _, err := doorstepv1.NewSyncServiceClient(plain).GetServerInfo(ctx(t), &doorstepv1.GetServerInfoRequest{}); statusCode(err) != codes.Unavailable {
		t.Errorf("a plaintext client: %v; want no answer", err)
	}
}

func TestAttackJunkDoesNotGrowTheLog(t *testing.T) {
	e := newAttackElection(t)
	before := e.logSize(t)
	stranger := signedtest.NewAuthor(testElection, "dv-0000000000000000", "stranger", base)
	big := stranger.Next(t, func(r *doorstepv1.Record) {
		r.Body = &doorstepv1.Record_Ballot{Ballot: &doorstepv1.Ballot{UnitId: e.sc.units[0].ID, Comment: string(bytes.Repeat([]byte("x"), 4000))}}
	})
	forged := e.A.Ballot(t, e.sc.units[1].ID, "", signedtest.Yes(e.sc.rules))
	forged.Signature = bytes.Clone(forged.Signature)
	forged.Signature[0] ^= 1
	for i := range 50 {
		for _, r := range e.h.push(t, big, forged, &doorstepv1.SignedRecord{Body: []byte{0x0a, byte(i)}, Signature: make([]byte, 64)}) {
			if !r.Refused {
				t.Fatalf("junk %d: %v; want refused at the door", i, r)
			}
		}
	}
	if got := e.logSize(t); got != before {
		t.Errorf("150 junk records grew the log from %d to %d entries", before, got)
	}
	refused := e.h.srv.Store().Refused()
	if refused[doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_DEVICE] < 50 || refused[doorstepv1.ReasonCode_REASON_CODE_BAD_SIGNATURE] < 50 {
		t.Errorf("refusals counted %v; want each reason counted for the operator", refused)
	}
	// Nobody but the operator creates elections.
	other := signedtest.NewAuthor("squatted", election.CommitteeAuthor, "squatter", base)
	def := e.sc.def
	def.ElectionId, def.CommitteePublicKey = "squatted", other.Public()
	_, err := e.h.elec.CreateElection(ctx(t), &doorstepv1.CreateElectionRequest{Record: other.Committee(t, signedtest.Define(def))})
	if statusCode(err) != codes.PermissionDenied {
		t.Errorf("creating an election without the operator token: %v; want PermissionDenied", err)
	}
}

func TestAttackNoOracleOnAnotherDevicesBallot(t *testing.T) {
	e := newAttackElection(t)
	unit := e.sc.units[0].ID
	e.h.push(t, e.B.Ballot(t, unit, "", signedtest.Yes(e.sc.rules), signedtest.Yes(e.sc.roof)))
	// A guesses B's choices, each guess replacing A's own previous one.
	prev := ""
	var answers []doorstepv1.RecordStatus
	for _, guess := range [][]*doorstepv1.Selection{
		{signedtest.No(e.sc.rules), signedtest.Yes(e.sc.roof)},
		{signedtest.Yes(e.sc.rules), signedtest.Yes(e.sc.roof)}, // the right one
		{signedtest.Yes(e.sc.rules), signedtest.No(e.sc.roof)},
	} {
		g := e.A.Ballot(t, unit, prev, guess...)
		prev = signedtest.RecordID(t, g)
		r := e.h.push(t, g)[0]
		answers = append(answers, r.Status)
		if lg := e.h.logged(t, r); lg.Status == doorstepv1.RecordStatus_RECORD_STATUS_UNSPECIFIED {
			t.Fatalf("no decision logged for %v", r)
		}
	}
	for i, a := range answers {
		if a != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
			t.Errorf("guess %d: answered %v; every guess must be answered alike (ACCEPTED)", i, a)
		}
	}
	us, err := e.h.sync.ListUnitStatus(ctx(t), &doorstepv1.ListUnitStatusRequest{ElectionId: testElection}, e.h.as(e.A))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range us.Units {
		if u.Progress == doorstepv1.UnitProgress_UNIT_PROGRESS_CONTESTED {
			t.Errorf("a canvasser's walk list shows unit %s contested", u.UnitId)
		}
	}
}

func TestAttackClockSetBackAfterTheClose(t *testing.T) {
	e := newAttackElection(t)
	unit := e.sc.units[0].ID
	e.h.committee(t, e.com.Committee(t, signedtest.Close()))
	// Ten minutes after the close the device's clock says ten minutes before.
	e.clk.Set(e.clk.Now().Add(10 * time.Minute))
	e.A.Clock = e.clk.Now().Add(-20 * time.Minute)
	sr := e.A.Ballot(t, unit, "", signedtest.Yes(e.sc.rules))
	resp, err := e.h.sync.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: []*doorstepv1.SignedRecord{sr},
		DeviceTime: timestamppb.New(e.A.Clock)}, e.h.as(e.A))
	if err != nil {
		t.Fatal(err)
	}
	lg := e.h.logged(t, resp.Results[0])
	if !hasFlag(lg.Flags, doorstepv1.RecordFlag_RECORD_FLAG_LATE_DOUBTFUL) {
		t.Fatalf("a late ballot from a clock set back: logged %v; want it flagged LATE_DOUBTFUL", lg)
	}
	tl := e.h.tally(t, e.com.Key)
	if tl.UnitsCounted != 0 || tl.UnitsContested != 1 {
		t.Errorf("tally counts %d units, holds %d; want the doubtful ballot held, counting nothing", tl.UnitsCounted, tl.UnitsContested)
	}
}

func hasFlag(fs []doorstepv1.RecordFlag, f doorstepv1.RecordFlag) bool {
	for _, x := range fs {
		if x == f {
			return true
		}
	}
	return false
}
