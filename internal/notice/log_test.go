package notice_test

import (
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/notice"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

func TestLogReader(t *testing.T) {
	cm := signedtest.NewAuthor("cuihu-2026-4th", election.CommitteeAuthor, "committee", closed)
	dev := signedtest.NewAuthor("cuihu-2026-4th", "dv-0000000000000001", "device", closed)
	unit := func(u, counted, reason string) *doorstepv1.CommitteeAction {
		return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: &doorstepv1.Adjudication{
			Subject: &doorstepv1.Adjudication_Unit{Unit: &doorstepv1.UnitDecision{UnitId: u, CountedRecordId: counted}}, Reason: reason}}}
	}
	owner := &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: &doorstepv1.Adjudication{
		Subject: &doorstepv1.Adjudication_Owner{Owner: &doorstepv1.OwnerDecision{OwnerKey: "holder-01", ItemId: "rules", Choice: doorstepv1.Choice_CHOICE_YES}}, Reason: "书面说明"}}}
	accepted := &doorstepv1.RecordResult{Status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED}
	rejected := &doorstepv1.RecordResult{Status: doorstepv1.RecordStatus_RECORD_STATUS_REJECTED, Reason: doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION}
	entries := []struct {
		rec *doorstepv1.SignedRecord
		res *doorstepv1.RecordResult
	}{
		{cm.Committee(t, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: definition()}}), accepted},
		{dev.Ballot(t, "3-2-501", "", signedtest.Yes("rules")), accepted},
		{cm.Committee(t, unit("3-2-501", "rec-1", "first")), accepted},
		{cm.Committee(t, owner), accepted},
		{cm.Committee(t, unit("4-1-201", "", "refused")), rejected},
		{cm.Committee(t, unit("3-2-501", "", "second thoughts")), accepted},
	}
	var r notice.LogReader
	for i, e := range entries {
		raw, err := ballotlog.EncodeEntry(&doorstepv1.LogEntry{Record: e.rec, Result: e.res, Received: timestamppb.New(closed.Add(time.Duration(i) * time.Minute)), ElectionId: "cuihu-2026-4th"})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Add(raw); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	if r.Definition().GetTitle() != definition().GetTitle() {
		t.Errorf("definition %v", r.Definition())
	}
	got := r.Settled()
	if len(got) != 2 {
		t.Fatalf("settled %v; want the unit (latest decision) and the owner", got)
	}
	if u := got[0].Adjudication.GetUnit(); u.GetUnitId() != "3-2-501" || u.GetCountedRecordId() != "" || got[0].Adjudication.GetReason() != "second thoughts" || !got[0].At.Equal(closed.Add(5*time.Minute)) {
		t.Errorf("unit decision %v at %v; want the later one (none counted)", got[0].Adjudication, got[0].At)
	}
	if got[1].Adjudication.GetOwner().GetOwnerKey() != "holder-01" {
		t.Errorf("owner decision %v", got[1].Adjudication)
	}
	if err := r.Add([]byte("not an entry")); err == nil {
		t.Error("junk read as an entry")
	}
}

// FuzzLogReader: whatever bytes come as an entry, reading them fails or
// succeeds, and never panics.
func FuzzLogReader(f *testing.F) {
	cm := signedtest.NewAuthor("e", election.CommitteeAuthor, "committee", closed)
	rec := cm.Committee(f, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: &doorstepv1.Adjudication{
		Subject: &doorstepv1.Adjudication_Unit{Unit: &doorstepv1.UnitDecision{UnitId: "1-1-101"}}, Reason: "r"}}})
	raw, err := ballotlog.EncodeEntry(&doorstepv1.LogEntry{Record: rec, Result: &doorstepv1.RecordResult{Status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED}, Received: timestamppb.New(closed), ElectionId: "e"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(raw)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r notice.LogReader
		if err := r.Add(b); err != nil {
			return
		}
		for _, s := range r.Settled() {
			if s.Adjudication == nil {
				t.Fatal("a settlement without its decision")
			}
		}
	})
}
