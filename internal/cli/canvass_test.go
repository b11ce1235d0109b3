package cli_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/cli"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

const cvElection = "estate-2026"

var cvUnits = []election.Unit{
	{ID: "1-1-101", Area: 8950, OwnerKey: "o1", Building: "1"},
	{ID: "1-1-102", Area: 10225, OwnerKey: "o2", Building: "1"},
	{ID: "1-2-201", Area: 7600, OwnerKey: "o3", Building: "1"},
	{ID: "2-1-101", Area: 12000, OwnerKey: "o4", Building: "2"},
}

// cvServer is a real tallyd on loopback with one open election: a motion
// "rules" and a two-seat election "board" of c1, c2, c3.
type cvServer struct {
	t         *testing.T
	srv       *tallyd.Server
	committee *signedtest.Author
	codeText  string
}

func startCvServer(t *testing.T) *cvServer {
	t.Helper()
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	s := &cvServer{t: t, srv: srv}
	t.Cleanup(s.stop)
	s.committee = signedtest.NewAuthor(cvElection, election.CommitteeAuthor, "committee", time.Now().Add(-time.Hour))
	def := &doorstepv1.ElectionDefinition{
		ElectionId: cvElection, Title: "第四届业主委员会换届选举", CommitteePublicKey: s.committee.Public(),
		Items: []*doorstepv1.Item{
			{ItemId: "rules", Title: "修订管理规约", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY}}},
			{ItemId: "board", Title: "选举业主委员会委员", Kind: &doorstepv1.Item_Candidates{Candidates: &doorstepv1.CandidateElection{Seats: 2,
				Candidates: []*doorstepv1.Candidate{{CandidateId: "c1", Name: "张伟"}, {CandidateId: "c2", Name: "王芳"}, {CandidateId: "c3", Name: "李娜"}}}}},
		},
		SyncDeadline: timestamppb.New(time.Now().Add(24 * time.Hour)),
	}
	signer := &callauth.Signer{ElectionID: cvElection, KeyID: election.CommitteeAuthor, Key: s.committee.Key}
	conn, err := srv.Client().New(srv.Addr(), grpc.WithDefaultCallOptions(signer.CallOption()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ec := doorstepv1.NewElectionServiceClient(conn)
	if _, err := ec.CreateElection(context.Background(), &doorstepv1.CreateElectionRequest{Record: s.committee.Committee(t, signedtest.Define(def))}, callauth.Operator(srv.OperatorToken())); err != nil {
		t.Fatal(err)
	}
	token, err := enrollcode.NewToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*doorstepv1.SignedRecord
	for _, a := range []*doorstepv1.CommitteeAction{signedtest.Roster(cvUnits), signedtest.Open(cvUnits), signedtest.GrantToken(token, "v1")} {
		recs = append(recs, s.committee.Committee(t, a))
	}
	if _, err := ec.SubmitCommitteeRecords(context.Background(), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: cvElection, Records: recs}); err != nil {
		t.Fatal(err)
	}
	s.codeText = enrollcode.Encode(enrollcode.Code{Server: srv.Addr(), ElectionID: cvElection, Token: token, Fingerprint: srv.Fingerprint(), TLS: srv.Pin()})
	return s
}

func (s *cvServer) stop() {
	if s.srv != nil {
		if err := s.srv.Close(); err != nil {
			s.t.Errorf("stop tallyd: %v", err)
		}
		s.srv = nil
	}
}

// cvEnv is one canvasser's machine: a config folder and answers to type.
type cvEnv struct {
	config string
	vars   map[string]string
}

func newCvEnv(t *testing.T) *cvEnv {
	return &cvEnv{config: t.TempDir(), vars: map[string]string{}}
}

// run runs doorstep with args and returns its exit code and output.
func (e *cvEnv) run(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{
		Stdin:     strings.NewReader(stdin),
		Stdout:    &out,
		Stderr:    &errb,
		Now:       time.Now,
		Getenv:    func(k string) string { return e.vars[k] },
		ConfigDir: e.config,
	}
	code = cli.Main(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func (e *cvEnv) mustRun(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	code, out, errs := e.run(t, stdin, args...)
	if code != 0 {
		t.Fatalf("doorstep %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// record reads back a record from the device folder.
func (e *cvEnv) record(t *testing.T, name string, seq uint64) (*doorstepv1.Record, *doorstepv1.SignedRecord, *doorstepv1.RecordResult) {
	t.Helper()
	d, err := device.Open(filepath.Join(e.config, "devices", name), device.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sr, res, err := d.Record(seq)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := signed.Decode(sr.GetBody())
	if err != nil {
		t.Fatal(err)
	}
	return rec, sr, res
}

func wantContains(t *testing.T, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("output does not say %q:\n%s", s, out)
		}
	}
}

var receiptRE = regexp.MustCompile(`Receipt code: ([0-9A-Z]{5}-[0-9A-Z]{5})`)

func TestCanvassJoinRecordSyncStatus(t *testing.T) {
	s := startCvServer(t)
	e := newCvEnv(t)
	e.vars["DOORSTEP_DEVICE"] = "v1"
	out := e.mustRun(t, "", "canvass", "join", s.codeText)
	wantContains(t, out, "Joined election estate-2026 (第四届业主委员会换届选举)", "Roster: 4 units in 2 buildings; 2 items")

	out = e.mustRun(t, "", "canvass", "record", "--unit", "1-1-101", "--choice", "rules=yes", "--pick", "board=c1,c3",
		"--signer-name", "王先生", "--comment", "请尽快修电梯")
	wantContains(t, out, "Saved on this device: ballot for 1-1-101, record #1", "1 waiting to sync")
	m := receiptRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no receipt code in:\n%s", out)
	}
	rec, sr, _ := e.record(t, "v1", 1)
	if got := ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature()); got != m[1] {
		t.Errorf("printed receipt %s; the record's is %s", m[1], got)
	}
	b := rec.GetBallot()
	if b.GetUnitId() != "1-1-101" || b.GetSignerKind() != doorstepv1.SignerKind_SIGNER_KIND_OWNER || b.GetComment() != "请尽快修电梯" ||
		len(b.GetSelections()) != 2 || b.GetSelections()[0].GetChoice() != doorstepv1.Choice_CHOICE_YES ||
		strings.Join(b.GetSelections()[1].GetCandidateIds(), ",") != "c1,c3" {
		t.Errorf("recorded ballot = %v", b)
	}

	out = e.mustRun(t, "", "canvass", "record", "--unit", "1-1-102", "--visit", "not-home", "--note", "晚上再来")
	wantContains(t, out, "visit to 1-1-102 (not home), record #2", "2 waiting to sync")

	out = e.mustRun(t, "", "canvass", "status")
	wantContains(t, out, "Records made here: 2; waiting to sync (pending): 2; acknowledged by the server: 0", "Last sync: never", "Election: open")

	out = e.mustRun(t, "", "canvass", "sync")
	wantContains(t, out, "Sent 2 records; the server answered for 2: 2 accepted.", "Ballot log checkpoint:", "Nothing waits to sync.")

	out = e.mustRun(t, "", "canvass", "status")
	wantContains(t, out, "waiting to sync (pending): 0; acknowledged by the server: 2 (2 accepted)", "Last checkpoint: ", "Clock: ")
	if strings.Contains(out, "Last sync: never") {
		t.Errorf("status after a sync still says never:\n%s", out)
	}

	// A second ballot for the unit is refused: it is a revision.
	code, _, errs := e.run(t, "", "canvass", "record", "--unit", "1-1-101", "--choice", "rules=no")
	if code != 1 || !strings.Contains(errs, "this device already has a ballot for unit 1-1-101 (record #1): if the owner changed their mind, revise that ballot") {
		t.Errorf("second ballot: exit %d, stderr:\n%s", code, errs)
	}

	// revise supersedes this device's latest ballot for the unit, changes
	// only what it names, and says what changed.
	out = e.mustRun(t, "", "canvass", "revise", "--unit", "1-1-101", "--choice", "rules=no")
	wantContains(t, out, "Changes from ballot #1 for 1-1-101:\n  修订管理规约: yes → no\n", "ballot for 1-1-101, record #3")
	if strings.Contains(out, "选举业主委员会委员") {
		t.Errorf("revise lists an answer it did not change:\n%s", out)
	}
	first, _, _ := e.record(t, "v1", 1)
	third, _, _ := e.record(t, "v1", 3)
	b = third.GetBallot()
	if b.GetSupersedes() != first.GetRecordId() {
		t.Errorf("revision supersedes %q; want %q", b.GetSupersedes(), first.GetRecordId())
	}
	if len(b.GetSelections()) != 2 || b.GetSelections()[0].GetChoice() != doorstepv1.Choice_CHOICE_NO ||
		strings.Join(b.GetSelections()[1].GetCandidateIds(), ",") != "c1,c3" || b.GetComment() != "请尽快修电梯" || b.GetSignerName() != "王先生" {
		t.Errorf("revision blanked or changed what it did not name: %v", b)
	}

	// Candidates by name; an item left blank; a revision that changes
	// nothing is refused.
	out = e.mustRun(t, "", "canvass", "revise", "--unit", "1-1-101", "--pick", "board=张伟", "--choice", "rules=blank")
	wantContains(t, out, "  修订管理规约: no → blank\n", "  选举业主委员会委员: 张伟, 李娜 → 张伟\n")
	fourth, _, _ := e.record(t, "v1", 4)
	if sels := fourth.GetBallot().GetSelections(); len(sels) != 1 || strings.Join(sels[0].GetCandidateIds(), ",") != "c1" {
		t.Errorf("revision by name = %v", sels)
	}
	code, _, errs = e.run(t, "", "canvass", "revise", "--unit", "1-1-101", "--pick", "board=c1")
	if code != 2 || !strings.Contains(errs, "nothing changes on ballot #4 for 1-1-101") {
		t.Errorf("empty revision: exit %d, stderr:\n%s", code, errs)
	}

	// A blank sheet is saved when said to be blank.
	out = e.mustRun(t, "", "canvass", "record", "--unit", "2-1-101", "--blank")
	wantContains(t, out, "ballot for 2-1-101, record #5")
}

func TestCanvassOffline(t *testing.T) {
	s := startCvServer(t)
	e := newCvEnv(t)
	dir := filepath.Join(t.TempDir(), "phone")
	e.mustRun(t, "", "canvass", "join", "--device-dir", dir, s.codeText)
	s.stop()

	out := e.mustRun(t, "", "canvass", "record", "--device-dir", dir, "--unit", "2-1-101", "--choice", "rules=abstain", "--signer", "proxy", "--proxy-ref", "委托书-3")
	wantContains(t, out, "Saved on this device: ballot for 2-1-101")
	code, out, errs := e.run(t, "", "canvass", "sync", "--device-dir", dir, "--attempts", "1")
	if code != 1 {
		t.Errorf("sync with the server down: exit %d; want 1", code)
	}
	wantContains(t, errs, "saved on this device; will sync when the server is reachable (1 waiting")
	wantContains(t, out, "1 records still wait to sync.")
	out = e.mustRun(t, "", "canvass", "status", "--device-dir", dir)
	wantContains(t, out, "waiting to sync (pending): 1", "Last attempt, ", "cannot reach the server")
}

func TestCanvassUsageErrors(t *testing.T) {
	s := startCvServer(t)
	e := newCvEnv(t)
	e.vars["DOORSTEP_DEVICE_DIR"] = filepath.Join(t.TempDir(), "phone")
	e.mustRun(t, "", "canvass", "join", s.codeText)
	tests := []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no unit", []string{"record", "--choice", "rules=yes"}, 2, "--unit is required"},
		{"bad choice", []string{"record", "--unit", "1-1-101", "--choice", "rules=maybe"}, 2, "yes, no or abstain"},
		{"bad visit", []string{"record", "--unit", "1-1-101", "--visit", "asleep"}, 2, "not-home, refused, ballot-left or moved"},
		{"visit with choices", []string{"record", "--unit", "1-1-101", "--visit", "refused", "--choice", "rules=yes"}, 2, "leave out --choice"},
		{"unknown unit", []string{"record", "--unit", "9-9-909", "--choice", "rules=yes"}, 1, "not on this election's roster"},
		{"unknown item", []string{"record", "--unit", "1-1-101", "--choice", "pool=yes"}, 1, `unknown item id "pool"`},
		{"proxy without document", []string{"record", "--unit", "1-1-101", "--choice", "rules=yes", "--signer", "proxy"}, 1, "proxy document's reference"},
		{"no answer", []string{"record", "--unit", "1-1-101"}, 2, "or --blank if the owner returned the sheet blank"},
		{"blank with answers", []string{"record", "--unit", "1-1-101", "--blank", "--choice", "rules=yes"}, 2, "--blank is for a sheet with no answer"},
		{"unknown candidate name", []string{"record", "--unit", "1-1-101", "--pick", "board=赵六"}, 2, `"赵六" is not a candidate of board: give an id or a name (c1 张伟`},
		{"revise with nothing to revise", []string{"revise", "--unit", "1-1-102", "--choice", "rules=no"}, 1, "no ballot for unit"},
		{"join twice", []string{"join", s.codeText}, 1, "already joined"},
		{"walk both routes", []string{"walk", "--buildings", "1", "--units", "1-1-101"}, 2, "not both"},
		{"walk unknown building", []string{"walk", "--buildings", "9", "--offline"}, 1, `building "9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := e.run(t, "", append([]string{"canvass"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d; want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, out, errs)
			}
			wantContains(t, errs, tt.says)
		})
	}
	if out := e.mustRun(t, "", "canvass", "status"); !strings.Contains(out, "Records made here: 0") {
		t.Errorf("refused commands saved records:\n%s", out)
	}
}

func TestCanvassWalk(t *testing.T) {
	s := startCvServer(t)
	e := newCvEnv(t)
	e.vars["DOORSTEP_DEVICE"] = "v1"
	e.mustRun(t, "", "canvass", "join", s.codeText)

	answers := strings.Join([]string{
		// 1-1-101: a ballot, item by item, with a typo corrected.
		"b", "maybe", "yes", "1,9", "1，3", "", "王先生", "楼道灯坏了", "y",
		// 1-1-102: nobody home.
		"v", "1", "晚上再来",
		// 1-2-201: start a ballot, go back, skip.
		"b", "cancel", "s",
	}, "\n") + "\n"
	out := e.mustRun(t, answers, "canvass", "walk", "--buildings", "1", "--sync-every", "1h")
	wantContains(t, out,
		"Route: 3 units.",
		"Progress: 0 done / 3 left / 0 waiting to sync",
		"Unit 1-1-101 (building 1, 89.50 m²)",
		"Answer yes, no or abstain",
		`"9" is not a candidate`,
		"  修订管理规约: yes",
		"  选举业主委员会委员: 张伟, 李娜",
		"  signed by: owner (王先生)",
		"  comment: 楼道灯坏了",
		"Progress: 1 done / 2 left",
		"Saved on this device: not home.",
		"Nothing saved for 1-2-201.",
		"No more units to visit on this route",
		"Walk ended: 2 records saved in this walk.",
		"Everything is synced.",
	)
	m := receiptRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no receipt code in:\n%s", out)
	}
	rec, sr, res := e.record(t, "v1", 1)
	if got := ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature()); got != m[1] {
		t.Errorf("walk showed receipt %s; the record's is %s", m[1], got)
	}
	if res.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		t.Errorf("answer for the walk's ballot = %v", res)
	}
	if b := rec.GetBallot(); b.GetComment() != "楼道灯坏了" || strings.Join(b.GetSelections()[1].GetCandidateIds(), ",") != "c1,c3" {
		t.Errorf("walk's ballot = %v", b)
	}
	visit, _, _ := e.record(t, "v1", 2)
	if v := visit.GetVisit(); v.GetUnitId() != "1-1-102" || v.GetOutcome() != doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME || v.GetNote() != "晚上再来" {
		t.Errorf("walk's visit = %v", visit)
	}

	// The next walk starts where this one left off: 1-1-101 is done.
	s.stop()
	out = e.mustRun(t, "b\nno\n\nco-owner\n\n\ny\nq\n", "canvass", "walk", "--units", "1-1-101,2-1-101")
	wantContains(t, out,
		"Route: 2 units.",
		"Progress: 1 done / 1 left",
		"Unit 2-1-101",
		"Walk ended: 1 records saved in this walk.",
		"1 waiting to sync: saved on this device; will sync when the server is reachable.",
	)
	if strings.Contains(out, "Unit 1-1-101") {
		t.Errorf("the second walk offered a unit already done:\n%s", out)
	}

	// A sheet with nothing answered is saved only when said to be blank;
	// "q" typed as a comment is the comment.
	out = e.mustRun(t, "b\n\n\nn\nb\n\n\ny\n\n\nq\ny\n", "canvass", "walk", "--units", "1-2-201", "--offline")
	wantContains(t, out, "No item is answered. Save it as a blank ballot", "Nothing saved for 1-2-201.", "  comment: q\n", "Walk ended: 1 records saved in this walk.")
	blank, _, _ := e.record(t, "v1", 4)
	if b := blank.GetBallot(); b.GetUnitId() != "1-2-201" || len(b.GetSelections()) != 0 || b.GetComment() != "q" {
		t.Errorf("walk's blank ballot = %v", b)
	}
}
