package audit_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

// findings renders a report's discrepancies, one a line.
func findings(rep *audit.Report) string {
	var b strings.Builder
	for _, d := range rep.Discrepancies {
		b.WriteString(d.String() + "\n")
	}
	return b.String()
}

// wantFinding fails unless some discrepancy contains every one of subs.
func wantFinding(t *testing.T, rep *audit.Report, subs ...string) {
	t.Helper()
	for _, d := range rep.Discrepancies {
		s := d.String()
		all := true
		for _, sub := range subs {
			all = all && strings.Contains(s, sub)
		}
		if all {
			return
		}
	}
	t.Errorf("no discrepancy contains %q; found:\n%s", subs, findings(rep))
}

func TestSyntheticRecordVerifies(t *testing.T) {
	s := newSynth(t, 40)
	s.genBallots(3, 40)
	s.close()
	dir := t.TempDir()
	rep := s.export(dir)
	if !rep.OK() || !rep.TallyMatches {
		t.Fatalf("export of an honest log reports:\n%s", findings(rep))
	}
	again, err := audit.Verify(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.OK() {
		t.Fatalf("Verify of an honest export reports:\n%s", findings(again))
	}
	if again.Stats.Ballots != 40 || again.Devices != 3 || again.Stats.SignaturesOK != again.Stats.Records {
		t.Errorf("stats = %+v, devices %d; want 40 ballots from 3 devices, every signature verified", again.Stats, again.Devices)
	}
	if again.Tally.UnitsCounted != 40 {
		t.Errorf("recomputed units_counted = %d, want 40", again.Tally.UnitsCounted)
	}
}

// TestReplayRedecides feeds the verifier logs a lying or broken server
// might write; each must be reported at the entry concerned.
func TestReplayRedecides(t *testing.T) {
	ballot := func(a *signedtest.Author, unit string) *doorstepv1.SignedRecord {
		return a.Ballot(nil, unit, "", signedtest.Yes("rules"), signedtest.Yes("fund"), signedtest.Pick("board", "c1"))
	}
	tests := []struct {
		name  string
		build func(t *testing.T, s *synth)
		want  []string
	}{
		{"ballot accepted before the election opened", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.accept(ballot(a, s.units[0].ID), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
			s.open()
		}, []string{"received: the election was not open yet"}},
		{"ballot accepted after the sync deadline", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			sr := ballot(a, s.units[0].ID)
			s.close()
			s.now = synthStart.Add(100 * time.Hour)
			s.accept(sr, doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"after the sync deadline"}},
		{"ballot made after the close accepted", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.close()
			a.Clock = s.now.Add(time.Hour)
			s.accept(ballot(a, s.units[0].ID), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"after the election closed"}},
		{"revoked device's record accepted", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.count(ballot(a, s.units[0].ID))
			s.accept(s.committee.Committee(t, signedtest.Revoke(a.ID, 1)), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
			s.accept(ballot(a, s.units[1].ID), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"record 2)", "was revoked after its record 1"}},
		{"good signature rejected as bad", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.reject(ballot(a, s.units[0].ID), doorstepv1.ReasonCode_REASON_CODE_BAD_SIGNATURE)
		}, []string{"rejected as BAD_SIGNATURE, but the signature verifies"}},
		{"device forks its chain", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.count(ballot(a, s.units[0].ID))
			a.Seq, a.Prev = 0, nil // a device restored from an old backup
			s.reject(ballot(a, s.units[1].ID), doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK)
		}, []string{"signed two different records number 1"}},
		{"fork accepted", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.count(ballot(a, s.units[0].ID))
			a.Seq, a.Prev = 0, nil
			s.accept(ballot(a, s.units[1].ID), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"author_seq", "already has a different record number 1"}},
		{"withheld record leaves a gap", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.count(ballot(a, s.units[0].ID))
			ballot(a, s.units[1].ID) // made, never logged
			s.count(ballot(a, s.units[2].ID))
		}, []string{"chain: record 2 is missing from the log"}},
		{"unknown unit accepted", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.accept(ballot(a, "99-9-999"), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{`unit "99-9-999" is not on the roster`}},
		{"invalid selection accepted", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.accept(a.Ballot(nil, s.units[0].ID, "", signedtest.Pick("board", "c9")), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"ballot.selections", `unknown candidate "c9"`}},
		{"contested ballot answered as accepted", func(t *testing.T, s *synth) {
			a, b := s.device("a"), s.device("b")
			s.open()
			s.count(ballot(a, s.units[0].ID))
			s.accept(b.Ballot(nil, s.units[0].ID, "", signedtest.No("rules")), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"result.status: the server answered RECORD_STATUS_ACCEPTED", "RECORD_STATUS_CONTESTED"}},
		{"record id used twice", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			sr := ballot(a, s.units[0].ID)
			s.count(sr)
			s.accept(sr, doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"was already used by entry"}},
		{"wrong receipt code", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			idx := s.count(ballot(a, s.units[0].ID))
			s.entries[idx] = withResult(t, s.entries[idx], func(r *doorstepv1.RecordResult) { r.ReceiptCode = "00000-00000" })
		}, []string{"result.receipt_code"}},
		{"record from an unenrolled device accepted", func(t *testing.T, s *synth) {
			s.open()
			stranger := signedtest.NewAuthor(s.id, "dv-0000000000000000", "stranger", synthStart)
			s.accept(ballot(stranger, s.units[0].ID), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"who is not enrolled at this point in the log"}},
		{"enrollment without a grant", func(t *testing.T, s *synth) {
			key := signedtest.NewKey("ungranted")
			a := signedtest.NewAuthor(s.id, rules.DeviceID(key.Public().(ed25519.PublicKey)), "ungranted", synthStart)
			s.add(&doorstepv1.LogEntry{
				Result:     &doorstepv1.RecordResult{Status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED},
				Enrollment: &doorstepv1.DeviceEnrollment{DeviceId: a.ID, DevicePublicKey: a.Public(), GrantRecordId: "0190f5a0-0000-7000-8000-000000000001"},
			})
		}, []string{"is not an enrollment grant the committee signed"}},
		{"committee action from a device accepted", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.accept(a.Committee(t, signedtest.Close()), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"author_id", "committee actions must be signed by the committee key"}},
		{"roster chunk accepted after open", func(t *testing.T, s *synth) {
			s.open()
			s.accept(s.committee.Committee(t, signedtest.Roster([]election.Unit{{ID: "99-1-101", Area: 5000, OwnerKey: "late"}})), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"this roster record, which the rules reject: the roster is frozen once the election opens"}},
		{"open with another roster's hash", func(t *testing.T, s *synth) {
			s.accept(s.committee.Committee(t, signedtest.Open(s.units[:3])), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"this open record, which the rules reject", "but the roster records add up to"}},
		{"valid ballot rejected", func(t *testing.T, s *synth) {
			a := s.device("a")
			s.open()
			s.reject(ballot(a, s.units[0].ID), doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT)
		}, []string{"result.reason: rejected as UNKNOWN_UNIT, but the rules accept the record"}},
		{"settlement with more candidates than seats accepted", func(t *testing.T, s *synth) {
			s.open()
			settle := &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: &doorstepv1.Adjudication{
				Subject: &doorstepv1.Adjudication_Owner{Owner: &doorstepv1.OwnerDecision{OwnerKey: s.units[0].OwnerKey, ItemId: "board", CandidateIds: []string{"c1", "c2", "c3"}}},
			}}}
			s.accept(s.committee.Committee(t, settle), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
		}, []string{"adjudication.owner.candidate_ids", `item "board": the settlement picks 3 candidates for 2 seats`}},
		{"entry log index wrong", func(t *testing.T, s *synth) {
			s.open()
			s.entries[1] = withResult(t, s.entries[1], func(r *doorstepv1.RecordResult) { r.LogIndex = 7 })
		}, []string{"entry 1: result.log_index: the entry says it is entry 7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSynth(t, 10)
			tt.build(t, s)
			rep := s.export(t.TempDir())
			if rep.OK() {
				t.Fatalf("the verifier found nothing wrong")
			}
			wantFinding(t, rep, tt.want...)
		})
	}
}
