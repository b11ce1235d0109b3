package device_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

func TestJoin(t *testing.T) {
	f := newFixture(t)
	d, dir := f.joined(t, "volunteer-1")

	enr, err := d.Enrollment()
	if err != nil {
		t.Fatal(err)
	}
	if enr.ElectionID != electionID || enr.Server != f.addr || enr.Fingerprint != f.srv.Fingerprint() || enr.DeviceID == "" {
		t.Errorf("enrollment = %+v", enr)
	}
	if got := ballotlog.Fingerprint(enr.ServerKey); got != f.srv.Fingerprint() {
		t.Errorf("stored server key has fingerprint %s; want %s", got, f.srv.Fingerprint())
	}
	def, roster, err := d.Election()
	if err != nil {
		t.Fatal(err)
	}
	if def.ID != electionID || len(def.Items) != 2 || !def.CommitteeKey.Equal(f.committee.Public()) {
		t.Errorf("definition = %+v", def)
	}
	if roster == nil || len(roster.Units()) != len(testUnits) {
		t.Fatalf("roster = %v; want %d units", roster, len(testUnits))
	}
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if !st.Enrolled || !st.Opened || st.RosterUnits != len(testUnits) || st.Title != "第四届业主委员会换届选举" || !st.OffsetKnown {
		t.Errorf("status = %+v", st)
	}
	if runtime.GOOS != "windows" {
		if m := fileMode(t, filepath.Join(dir, "device.key")); m != 0o600 {
			t.Errorf("device key mode %04o; want 0600", m)
		}
	}

	// The same folder cannot join again, even after reopening.
	closeDevice(t, d)
	d = openDevice(t, dir, device.Options{})
	if _, err := d.Join(context.Background(), f.code("again"), "again"); !errors.Is(err, device.ErrAlreadyEnrolled) {
		t.Errorf("second join: %v; want ErrAlreadyEnrolled", err)
	}
	if enr2, _ := d.Enrollment(); enr2.DeviceID != enr.DeviceID {
		t.Errorf("device id after reopen = %q; want %q", enr2.DeviceID, enr.DeviceID)
	}
	if _, roster, _ := d.Election(); roster == nil || len(roster.Units()) != len(testUnits) {
		t.Errorf("roster after reopen = %v", roster)
	}
}

func TestJoinRefusesWrongFingerprint(t *testing.T) {
	f := newFixture(t)
	code := f.code("volunteer")
	code.Fingerprint = "SHA256:notTheServersKeyAtAll"
	d := openDevice(t, t.TempDir(), device.Options{})
	_, err := d.Join(context.Background(), code, "volunteer")
	if !errors.Is(err, device.ErrFingerprintMismatch) {
		t.Fatalf("join with another fingerprint: %v; want ErrFingerprintMismatch", err)
	}
	if _, err := d.Enrollment(); !errors.Is(err, device.ErrNotEnrolled) {
		t.Errorf("after a refused join: %v; want ErrNotEnrolled", err)
	}
	// The token was not spent: the right code still works.
	code.Fingerprint = f.srv.Fingerprint()
	if _, err := d.Join(context.Background(), code, "volunteer"); err != nil {
		t.Errorf("join with the right fingerprint: %v", err)
	}
}

func TestRecordSurvivesReopen(t *testing.T) {
	f := newFixture(t)
	d, dir := f.joined(t, "v")
	enr, _ := d.Enrollment()
	f.stop() // recording needs no server

	b := owner("1-1-101", yes("rules"), pick("board", "c1", "c3"))
	b.SignerName, b.Comment = "王先生", "电梯经常坏，请尽快维修"
	s1 := mustRecord(t, d, b)
	s2, err := d.RecordVisit(context.Background(), device.Visit{UnitID: "1-1-102", Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME, Note: "晚上再来"})
	if err != nil {
		t.Fatal(err)
	}
	proxy := device.Ballot{UnitID: "2-1-901", Signer: doorstepv1.SignerKind_SIGNER_KIND_PROXY, ProxyRef: "委托书-17", Selections: []election.Selection{no("rules")}}
	s3 := mustRecord(t, d, proxy)
	if s1.Seq != 1 || s2.Seq != 2 || s3.Seq != 3 {
		t.Fatalf("seqs = %d, %d, %d; want 1, 2, 3", s1.Seq, s2.Seq, s3.Seq)
	}
	if s1.Receipt == "" || s2.Receipt != "" {
		t.Errorf("receipts = %q, %q; want one for the ballot only", s1.Receipt, s2.Receipt)
	}
	closeDevice(t, d)

	d = openDevice(t, dir, device.Options{})
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 3 || st.Pending != 3 {
		t.Errorf("after reopen: %d records, %d pending; want 3, 3", st.Records, st.Pending)
	}
	rec, sr, res := decode(t, d, 1)
	if res != nil {
		t.Errorf("record 1 has an answer %v before any sync", res)
	}
	if err := signed.Verify(d.PublicKey(), sr); err != nil {
		t.Errorf("record 1 signature: %v", err)
	}
	if got := ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature()); got != s1.Receipt {
		t.Errorf("receipt of stored record = %s; saved said %s", got, s1.Receipt)
	}
	bal := rec.GetBallot()
	if rec.GetRecordId() != s1.RecordID || rec.GetAuthorId() != enr.DeviceID || rec.GetElectionId() != electionID ||
		bal.GetUnitId() != "1-1-101" || bal.GetComment() != b.Comment || bal.GetSignerName() != "王先生" ||
		len(bal.GetSelections()) != 2 || bal.GetSelections()[1].GetCandidateIds()[1] != "c3" {
		t.Errorf("record 1 = %v", rec)
	}
	visit, _, _ := decode(t, d, 2)
	if v := visit.GetVisit(); v.GetOutcome() != doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME || v.GetNote() != "晚上再来" {
		t.Errorf("record 2 = %v", visit)
	}
	third, _, _ := decode(t, d, 3)
	if third.GetBallot().GetProxyReference() != "委托书-17" || third.GetBallot().GetSignerKind() != doorstepv1.SignerKind_SIGNER_KIND_PROXY {
		t.Errorf("record 3 = %v", third)
	}
	if id, ok, err := d.LatestBallot("1-1-101"); err != nil || !ok || id != s1.RecordID {
		t.Errorf("LatestBallot = %q, %v, %v; want %q", id, ok, err, s1.RecordID)
	}
}

// TestChainAcrossReopen checks the device chain: seqs 1..n with no gaps,
// each prev_hash the hash of the previous body, hybrid clock values rising,
// across closing and reopening the device.
func TestChainAcrossReopen(t *testing.T) {
	f := newFixture(t)
	d, dir := f.joined(t, "v")
	units := []string{"1-1-101", "1-1-102", "1-2-201", "2-1-901", "2-1-1001", "10-1-101"}
	for i, u := range units {
		if i == 3 {
			closeDevice(t, d)
			d = openDevice(t, dir, device.Options{})
		}
		mustRecord(t, d, owner(u, yes("rules")))
	}
	var prev []byte
	var prevHLC uint64
	for seq := uint64(1); seq <= uint64(len(units)); seq++ {
		rec, sr, _ := decode(t, d, seq)
		if rec.GetAuthorSeq() != seq {
			t.Errorf("record %d has author_seq %d", seq, rec.GetAuthorSeq())
		}
		if !bytes.Equal(rec.GetPrevHash(), prev) {
			t.Errorf("record %d prev_hash = %x; want %x", seq, rec.GetPrevHash(), prev)
		}
		if rec.GetHlc() <= prevHLC {
			t.Errorf("record %d hlc %d not after %d", seq, rec.GetHlc(), prevHLC)
		}
		h := signed.BodyHash(sr.GetBody())
		prev, prevHLC = h[:], rec.GetHlc()
	}
	if _, _, err := d.Record(uint64(len(units)) + 1); election.ErrorCode(err) != election.CodeNotFound {
		t.Errorf("record past the end: %v; want not found", err)
	}
}

func TestRecordRefusesBadBallots(t *testing.T) {
	f := newFixture(t)
	d, _ := f.joined(t, "v")
	ok := owner("1-1-101", yes("rules"))
	tests := []struct {
		name  string
		edit  func(*device.Ballot)
		field string
	}{
		{"unknown unit", func(b *device.Ballot) { b.UnitID = "9-9-999" }, "unit"},
		{"unknown item", func(b *device.Ballot) { b.Selections = []election.Selection{yes("pool")} }, "selections[0].item_id"},
		{"item twice", func(b *device.Ballot) { b.Selections = []election.Selection{yes("rules"), no("rules")} }, "selections[1].item_id"},
		{"yes to a candidate election", func(b *device.Ballot) { b.Selections = []election.Selection{yes("board")} }, "selections[0].choice"},
		{"unknown candidate", func(b *device.Ballot) { b.Selections = []election.Selection{pick("board", "c9")} }, "selections[0].candidate_ids[0]"},
		{"no signer", func(b *device.Ballot) { b.Signer = doorstepv1.SignerKind_SIGNER_KIND_UNSPECIFIED }, "signer"},
		{"proxy without document", func(b *device.Ballot) { b.Signer = doorstepv1.SignerKind_SIGNER_KIND_PROXY }, "proxy_reference"},
		{"owner with proxy document", func(b *device.Ballot) { b.ProxyRef = "委托书-1" }, "proxy_reference"},
		{"control characters", func(b *device.Ballot) { b.Comment = "bell\a" }, "comment"},
		{"comment too long", func(b *device.Ballot) { b.Comment = string(bytes.Repeat([]byte("x"), election.MaxTextLen+1)) }, "comment"},
		{"supersedes not a uuid", func(b *device.Ballot) { b.Supersedes = "yesterday" }, "supersedes"},
		{"no answer, not said blank", func(b *device.Ballot) { b.Selections = nil }, "selections"},
		{"said blank, with answers", func(b *device.Ballot) { b.Blank = true }, "selections"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ok
			b.Selections = append([]election.Selection(nil), ok.Selections...)
			tt.edit(&b)
			_, err := d.RecordBallot(context.Background(), b)
			var e *election.Error
			if !errors.As(err, &e) || e.Field != tt.field {
				t.Fatalf("RecordBallot: %v; want an error on field %q", err, tt.field)
			}
		})
	}
	visits := []struct {
		name string
		v    device.Visit
	}{
		{"unknown unit", device.Visit{UnitID: "nowhere", Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_REFUSED}},
		{"no outcome", device.Visit{UnitID: "1-1-101"}},
		{"unknown outcome", device.Visit{UnitID: "1-1-101", Outcome: 99}},
	}
	for _, tt := range visits {
		t.Run("visit "+tt.name, func(t *testing.T) {
			if _, err := d.RecordVisit(context.Background(), tt.v); election.ErrorCode(err) == 0 {
				t.Fatalf("RecordVisit: %v; want a domain error", err)
			}
		})
	}
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != 0 || st.Pending != 0 {
		t.Errorf("refused records were stored: %d records, %d pending", st.Records, st.Pending)
	}
	// A good ballot still gets seq 1: refusals used no seq.
	if s := mustRecord(t, d, ok); s.Seq != 1 {
		t.Errorf("first saved record has seq %d", s.Seq)
	}
}

func TestRecordTooManyPicksMarksItemInvalid(t *testing.T) {
	f := newFixture(t)
	d, _ := f.joined(t, "v")
	s := mustRecord(t, d, owner("1-1-101", yes("rules"), pick("board", "c1", "c2", "c3")))
	if len(s.InvalidItems) != 1 || s.InvalidItems[0] != "board" {
		t.Errorf("InvalidItems = %v; want [board]", s.InvalidItems)
	}
}

func TestReviseBallot(t *testing.T) {
	f := newFixture(t)
	d, _ := f.joined(t, "v")
	ctx := context.Background()
	if _, err := d.ReviseBallot(ctx, owner("1-1-101", no("rules"))); election.ErrorCode(err) != election.CodeNotFound {
		t.Fatalf("revise with no earlier ballot: %v; want not found", err)
	}
	first := mustRecord(t, d, owner("1-1-101", yes("rules")))
	second, err := d.ReviseBallot(ctx, owner("1-1-101", no("rules")))
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := decode(t, d, second.Seq)
	if rec.GetBallot().GetSupersedes() != first.RecordID {
		t.Errorf("revision supersedes %q; want %q", rec.GetBallot().GetSupersedes(), first.RecordID)
	}
	if id, _, _ := d.LatestBallot("1-1-101"); id != second.RecordID {
		t.Errorf("latest ballot = %q; want the revision %q", id, second.RecordID)
	}
	// An explicit id (another device's ballot) is kept as given.
	other := "0190f0a0-0000-7000-8000-000000000001"
	b := owner("1-1-102", yes("rules"))
	b.Supersedes = other
	third, err := d.ReviseBallot(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	if rec, _, _ := decode(t, d, third.Seq); rec.GetBallot().GetSupersedes() != other {
		t.Errorf("supersedes = %q; want %q", rec.GetBallot().GetSupersedes(), other)
	}
}

// TestOneBallotPerUnit: a device keeps one ballot per unit; a second is
// refused unless it revises the first, and a blank sheet is saved only when
// said to be blank.
func TestOneBallotPerUnit(t *testing.T) {
	f := newFixture(t)
	d, _ := f.joined(t, "v")
	ctx := context.Background()
	mustRecord(t, d, owner("1-1-101", yes("rules")))
	_, err := d.RecordBallot(ctx, owner("1-1-101", no("rules")))
	if election.ErrorCode(err) != election.CodeConflict || !strings.Contains(err.Error(), "revise") {
		t.Fatalf("second ballot for the unit: %v; want a conflict that says to revise", err)
	}
	if st, _ := d.Status(); st.Records != 1 {
		t.Errorf("the refused ballot was stored: %d records", st.Records)
	}
	if _, err := d.ReviseBallot(ctx, owner("1-1-101", no("rules"))); err != nil {
		t.Fatalf("revision: %v", err)
	}
	blank := device.Ballot{UnitID: "1-1-102", Signer: doorstepv1.SignerKind_SIGNER_KIND_OWNER, Blank: true}
	s := mustRecord(t, d, blank)
	if rec, _, _ := decode(t, d, s.Seq); len(rec.GetBallot().GetSelections()) != 0 {
		t.Errorf("blank ballot has selections %v", rec.GetBallot().GetSelections())
	}
}

// TestRevise: a revision starts from the earlier ballot and changes only
// what it names.
func TestRevise(t *testing.T) {
	f := newFixture(t)
	d, _ := f.joined(t, "v")
	ctx := context.Background()
	prev := owner("1-1-101", yes("rules"), pick("board", "c1", "c2"))
	prev.Comment = "电梯维修"
	prev.SignerName = "王"
	first := mustRecord(t, d, prev)
	got, id, seq, ok, err := d.LastBallot("1-1-101")
	if err != nil || !ok || id != first.RecordID || seq != first.Seq {
		t.Fatalf("LastBallot = %v, %q, %d, %v; want record %s #%d", err, id, seq, ok, first.RecordID, first.Seq)
	}
	if got.Comment != prev.Comment || got.SignerName != "王" || len(got.Selections) != 2 || got.Blank {
		t.Fatalf("LastBallot read back %+v; want %+v", got, prev)
	}
	proxy, ref, empty := doorstepv1.SignerKind_SIGNER_KIND_PROXY, "委托书-7", ""
	for _, tc := range []struct {
		name string
		r    device.Revision
		want device.Ballot
	}{
		{"one answer", device.Revision{Set: []election.Selection{no("rules")}},
			device.Ballot{Selections: []election.Selection{no("rules"), pick("board", "c1", "c2")}, Comment: prev.Comment, SignerName: "王"}},
		{"clear one", device.Revision{Clear: []string{"board"}},
			device.Ballot{Selections: []election.Selection{yes("rules")}, Comment: prev.Comment, SignerName: "王"}},
		{"clear all is blank", device.Revision{Clear: []string{"board", "rules"}},
			device.Ballot{Blank: true, Comment: prev.Comment, SignerName: "王"}},
		{"signer and comment", device.Revision{Signer: &proxy, ProxyRef: &ref, Comment: &empty},
			device.Ballot{Selections: prev.Selections, Signer: proxy, ProxyRef: ref, SignerName: "王"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next := device.Revise(got, id, tc.r)
			tc.want.UnitID, tc.want.Supersedes = "1-1-101", id
			if tc.want.Signer == 0 {
				tc.want.Signer = doorstepv1.SignerKind_SIGNER_KIND_OWNER
			}
			if fmt.Sprint(next) != fmt.Sprint(tc.want) {
				t.Errorf("Revise =\n %+v\nwant\n %+v", next, tc.want)
			}
		})
	}
	s, err := d.ReviseBallot(ctx, device.Revise(got, id, device.Revision{Set: []election.Selection{no("rules")}}))
	if err != nil {
		t.Fatal(err)
	}
	rec, _, _ := decode(t, d, s.Seq)
	if b := rec.GetBallot(); b.GetSupersedes() != first.RecordID || len(b.GetSelections()) != 2 || b.GetComment() != prev.Comment {
		t.Errorf("saved revision %v; want both answers, the comment, superseding %s", b, first.RecordID)
	}
}

func TestNotEnrolled(t *testing.T) {
	d := openDevice(t, t.TempDir(), device.Options{})
	ctx := context.Background()
	if _, err := d.RecordBallot(ctx, owner("1-1-101")); !errors.Is(err, device.ErrNotEnrolled) {
		t.Errorf("RecordBallot: %v; want ErrNotEnrolled", err)
	}
	if _, err := d.Sync(ctx, 1); !errors.Is(err, device.ErrNotEnrolled) {
		t.Errorf("Sync: %v; want ErrNotEnrolled", err)
	}
	if _, err := d.Walk(device.Route{}); !errors.Is(err, device.ErrNotEnrolled) {
		t.Errorf("Walk: %v; want ErrNotEnrolled", err)
	}
}

func TestOpenRefusesSecondProcess(t *testing.T) {
	dir := t.TempDir()
	openDevice(t, dir, device.Options{})
	// bbolt's file lock is per open file description, so a second Open in
	// the same process stands in for a second process.
	if _, err := device.Open(dir, device.Options{}); !errors.Is(err, device.ErrInUse) {
		t.Errorf("second open: %v; want ErrInUse", err)
	}
}
