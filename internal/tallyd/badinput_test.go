package tallyd_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

// TestBadInput: every kind of bad input gets a clear error naming what is
// wrong, and the server goes on serving.
func TestBadInput(t *testing.T) {
	clk := &clock{t: base}
	h := startHarness(t, t.TempDir(), clk)
	com := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "committee", base.Add(-time.Hour))
	sc := loadScenario(t, com.Public())
	h.create(t, com, com.Committee(t, signedtest.Define(sc.def)))

	// Roster chunks with bad units are refused whole, naming the field.
	good := sc.units[0]
	rosterCases := []struct {
		name  string
		unit  election.Unit
		field string
	}{
		{"negative area", election.Unit{ID: "9-1-101", Area: -5, OwnerKey: "o"}, "area"},
		{"zero area", election.Unit{ID: "9-1-102", Area: 0, OwnerKey: "o"}, "area"},
		{"empty owner key", election.Unit{ID: "9-1-103", Area: 100, OwnerKey: ""}, "owner_key"},
		{"empty unit id", election.Unit{ID: "", Area: 100, OwnerKey: "o"}, "unit_id"},
		{"duplicate unit id", good, "already on the roster"},
	}
	// good is imported first so the duplicate case has something to clash with.
	h.committee(t, com.Committee(t, signedtest.Roster([]election.Unit{good})))
	for _, tc := range rosterCases {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := h.elec.SubmitCommitteeRecords(ctx(t), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection,
				Records: []*doorstepv1.SignedRecord{com.Committee(t, signedtest.Roster([]election.Unit{tc.unit}))}}, h.as(com))
			if err != nil {
				t.Fatal(err)
			}
			r := resp.Results[0]
			if r.Reason != doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION || !strings.Contains(r.Message, tc.field) {
				t.Errorf("got %v %q, want INVALID_ACTION naming %q", r.Reason, r.Message, tc.field)
			}
		})
	}
	h.committee(t, com.Committee(t, signedtest.Roster(sc.units[1:])), com.Committee(t, signedtest.Open(sc.units)), com.Committee(t, signedtest.Grant("tok", "")))
	A := signedtest.NewAuthor(testElection, "", "device-a", base)
	h.enroll(t, A, "tok")

	// Call-level limits.
	callCases := []struct {
		name string
		recs int
		size int
		code codes.Code
		msg  string
	}{
		{"empty batch", 0, 0, codes.InvalidArgument, "empty"},
		{"batch over 1000 records", 1001, 0, codes.ResourceExhausted, "at most 1000"},
		{"message over 8 MiB", 1, 9 << 20, codes.ResourceExhausted, ""},
	}
	for _, tc := range callCases {
		t.Run(tc.name, func(t *testing.T) {
			recs := make([]*doorstepv1.SignedRecord, tc.recs)
			for i := range recs {
				recs[i] = &doorstepv1.SignedRecord{Body: make([]byte, tc.size)}
			}
			_, err := h.sync.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: recs}, h.as(A))
			if statusCode(err) != tc.code || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("got %v, want %v containing %q", err, tc.code, tc.msg)
			}
		})
	}
	if _, err := h.sync.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: "no such election!", Records: []*doorstepv1.SignedRecord{{}}}, signedCall("no such election!", A.ID, A.Key, h.clock.Now)); statusCode(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "election_id") {
		t.Errorf("bad election id: %v", err)
	}
	if _, err := h.sync.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: "other", Records: []*doorstepv1.SignedRecord{{}}}, signedCall("other", A.ID, A.Key, h.clock.Now)); statusCode(err) != codes.NotFound {
		t.Errorf("unknown election: %v", err)
	}

	// Record-level problems are answered per record; the good one in the
	// same batch is stored.
	oversized := A.Next(t, func(r *doorstepv1.Record) {
		r.Body = &doorstepv1.Record_Ballot{Ballot: &doorstepv1.Ballot{UnitId: sc.units[3].ID, Comment: strings.Repeat("雨", 6000)}}
	})
	recs := []*doorstepv1.SignedRecord{
		{Body: []byte("\x0a\x05\xff\xfe\xfd\xfc\xfb"), Signature: []byte{1}},
		A.Ballot(t, sc.units[1].ID, "", signedtest.Yes("no-such-item")),
		A.Ballot(t, sc.units[1].ID, "", signedtest.Pick(sc.cand, "nobody")),
		A.Ballot(t, sc.units[1].ID, "", signedtest.Yes(sc.rules), signedtest.No(sc.rules)),
		A.Ballot(t, sc.units[1].ID, "", signedtest.Pick(sc.rules, sc.cands[0])),
		oversized,
		A.Ballot(t, sc.units[2].ID, "", signedtest.Yes(sc.rules)),
	}
	res := h.push(t, recs...)
	wantReasons := []doorstepv1.ReasonCode{
		doorstepv1.ReasonCode_REASON_CODE_MALFORMED,
		doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION,
		doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION,
		doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION,
		doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION,
		doorstepv1.ReasonCode_REASON_CODE_TOO_LARGE,
		doorstepv1.ReasonCode_REASON_CODE_UNSPECIFIED,
	}
	wantWords := []string{"could not be read", "unknown item id", "unknown candidate", "answered twice", "is a motion", "limit", ""}
	for i, r := range res {
		if r.Reason != wantReasons[i] || !strings.Contains(r.Message, wantWords[i]) {
			t.Errorf("record %d: got %v %q, want %v with %q", i, r.Reason, r.Message, wantReasons[i], wantWords[i])
		}
	}
	if res[6].Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		t.Errorf("the good record in a bad batch: %v", res[6])
	}
	// Records no enrolled key signed (unreadable, oversized) are refused at
	// the door and never logged; the rest are logged once. Sending them
	// all again adds nothing.
	for i, r := range res {
		if door := i == 0 || i == 5; r.Refused != door {
			t.Errorf("record %d: refused at the door %v; want %v (%v)", i, r.Refused, door, r)
		}
	}
	size := h.checkpointSize(t)
	for i, r := range h.push(t, recs...) {
		if !r.Replayed && !r.Refused {
			t.Errorf("record %d resent: not answered from the log: %v", i, r)
		}
	}
	if got := h.checkpointSize(t); got != size {
		t.Errorf("resending rejected records grew the log from %d to %d", size, got)
	}
	// One forged signature in a push of good ones: the batch check finds
	// it, refuses only it at the door, and the good records are stored;
	// the refused one takes no place in the chain, so the device's real
	// record at that number is still taken.
	g1, forged, g3 := A.Ballot(t, sc.units[4].ID, "", signedtest.Yes(sc.rules)), A.Ballot(t, sc.units[5].ID, "", signedtest.Yes(sc.rules)), A.Ballot(t, sc.units[6].ID, "", signedtest.Yes(sc.rules))
	real := proto.CloneOf(forged)
	forged = proto.CloneOf(forged)
	forged.Signature[7] ^= 1
	batch := h.push(t, g1, forged, g3)
	if batch[0].Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED || batch[2].Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		t.Errorf("good records beside a forged one: %v, %v", batch[0], batch[2])
	}
	if r := batch[1]; !r.Refused || r.Reason != doorstepv1.ReasonCode_REASON_CODE_BAD_SIGNATURE {
		t.Errorf("forged signature: %v; want refused at the door as BAD_SIGNATURE", r)
	}
	if r := h.push(t, real)[0]; r.Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED || r.Refused {
		t.Errorf("the real record after a forgery of it: %v; want accepted", r)
	}

	// A committee settlement must settle: a headcount vote the item's rule
	// does not allow is refused, naming the item, and changes nothing.
	seats := 0
	for _, it := range sc.def.GetItems() {
		if it.GetItemId() == sc.cand {
			seats = int(it.GetCandidates().GetSeats())
		}
	}
	settleCases := []struct {
		name  string
		picks []string
		words string
	}{
		{"more candidates than seats", sc.cands[:seats+1], fmt.Sprintf("item %q: the settlement picks %d candidates for %d seats", sc.cand, seats+1, seats)},
		{"unknown candidate", []string{"nobody"}, `unknown candidate "nobody"`},
	}
	for _, tc := range settleCases {
		t.Run("settlement: "+tc.name, func(t *testing.T) {
			before := h.checkpointSize(t)
			settle := &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: &doorstepv1.Adjudication{
				Subject: &doorstepv1.Adjudication_Owner{Owner: &doorstepv1.OwnerDecision{OwnerKey: sc.units[0].OwnerKey, ItemId: sc.cand, CandidateIds: tc.picks}},
			}}}
			resp, err := h.elec.SubmitCommitteeRecords(ctx(t), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection,
				Records: []*doorstepv1.SignedRecord{com.Committee(t, settle)}}, h.as(com))
			if err != nil {
				t.Fatal(err)
			}
			r := resp.Results[0]
			if r.Reason != doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION || !strings.Contains(r.Message, tc.words) {
				t.Errorf("got %v %q, want INVALID_SELECTION with %q", r.Reason, r.Message, tc.words)
			}
			if got := h.checkpointSize(t); got != before+1 {
				t.Errorf("the refused settlement is not logged once: log grew from %d to %d", before, got)
			}
		})
	}
	// Still serving.
	if _, err := h.sync.GetServerInfo(ctx(t), &doorstepv1.GetServerInfoRequest{}); err != nil {
		t.Errorf("server stopped serving: %v", err)
	}
}
