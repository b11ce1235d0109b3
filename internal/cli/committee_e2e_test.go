package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

const exampleElection = "cuihu-2026-4th"

// cmServer is a real tallyd on loopback with its own data folder.
type cmServer struct {
	t   *testing.T
	dir string
	srv *tallyd.Server
}

func startCmServer(t *testing.T, dir string) *cmServer {
	t.Helper()
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	s := &cmServer{t: t, dir: dir, srv: srv}
	t.Cleanup(s.stop)
	return s
}

func (s *cmServer) stop() {
	if s.srv == nil {
		return
	}
	if err := s.srv.Close(); err != nil {
		s.t.Errorf("stop tallyd: %v", err)
	}
	s.srv = nil
}

var codeRE = regexp.MustCompile(`(?m)^doorstep:enroll\?\S+$`)

// committeeState asks the server for the committee chain it holds.
func committeeState(t *testing.T, addr, dir string) *doorstepv1.GetCommitteeStateResponse {
	t.Helper()
	key, err := committee.LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The pin this committee machine learned on first contact.
	pin, _, err := committee.ServerPin(context.Background(), dir, addr, "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := client.ForPin(pin).New(addr, grpc.WithDefaultCallOptions((&callauth.Signer{ElectionID: exampleElection, KeyID: election.CommitteeAuthor, Key: key}).CallOption()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := doorstepv1.NewElectionServiceClient(conn).GetCommitteeState(ctx, &doorstepv1.GetCommitteeStateRequest{ElectionId: exampleElection})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestCommitteeEndToEnd runs the committee's day against a real tallyd:
// create, roster import, open, enroll a canvasser, settle a contested
// unit, revoke, close, and read the tally at each step.
func TestCommitteeEndToEnd(t *testing.T) {
	srv := startCmServer(t, t.TempDir())
	e := newCmEnv(t)
	e.vars["DOORSTEP_SERVER"] = srv.srv.Addr()
	e.vars["DOORSTEP_OPERATOR_TOKEN"] = srv.srv.OperatorToken()
	electionFile, rosterFile := writeExamples(t)
	committeeDir := filepath.Join(e.config, "committee")

	e.mustRun(t, "committee", "init")
	out := e.mustRun(t, "election", "create", "--file", electionFile)
	cmWant(t, out, "Created election "+exampleElection, "elect up to 7 of 9 candidates", "special motion", "key fingerprint "+srv.srv.Fingerprint())

	// Creating it again is refused before anything is signed.
	code, _, errs := e.run(t, "election", "create", "--file", electionFile)
	if code != 1 || !strings.Contains(errs, "already created") {
		t.Errorf("second create: exit %d, stderr %q", code, errs)
	}

	out = e.mustRun(t, "roster", "import", "--election", exampleElection, "--file", rosterFile)
	cmWant(t, out, "Imported the roster", "Units: 288 (20 developer-held)", "Owners (headcount): 255", "Roster sha256: ")
	// The same file again is recognised; another one is refused.
	cmWant(t, e.mustRun(t, "roster", "import", "--election", exampleElection, "--file", rosterFile), "already imported")
	other := filepath.Join(t.TempDir(), "other.csv")
	if err := os.WriteFile(other, []byte("unit_id,building,area_m2,owner_key,developer_held\n9-9-999,9,50,x,false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := e.run(t, "roster", "import", "--election", exampleElection, "--file", other); code != 1 || !strings.Contains(errs, "a different roster") {
		t.Errorf("other roster: exit %d, stderr %q", code, errs)
	}

	cmWant(t, e.mustRun(t, "election", "open", "--election", exampleElection), "is open", "288 units")

	// A canvasser joins with the code, exactly as printed.
	out = e.mustRun(t, "device", "enroll", "--election", exampleElection, "--label", "王芳 3栋", "--qr", "none")
	text := codeRE.FindString(out)
	if text == "" {
		t.Fatalf("no enrollment code in:\n%s", out)
	}
	code1, err := enrollcode.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if code1.Fingerprint != srv.srv.Fingerprint() || code1.Server != srv.srv.Addr() || code1.ElectionID != exampleElection {
		t.Errorf("code = %+v; want this server, its fingerprint and the election", code1)
	}
	canvasser := newCvEnv(t)
	cmWant(t, canvasser.mustRun(t, "", "canvass", "join", text), exampleElection)
	// A code works once.
	if code, _, errs := newCvEnv(t).run(t, "", "canvass", "join", text); code == 0 {
		t.Errorf("a second device joined with the same code: %s", errs)
	}
	// The QR form is printed by default.
	out = e.mustRun(t, "device", "enroll", "--election", exampleElection, "--server-public", "tally.example.org:443")
	cmWant(t, out, "█", "server=tally.example.org%3A443")

	// A test device, enrolled with a third code, makes two differing
	// ballots for one unit: the unit is contested.
	out = e.mustRun(t, "device", "enroll", "--election", exampleElection, "--qr", "none", "--server-fingerprint", srv.srv.Fingerprint())
	code3, err := enrollcode.Parse(codeRE.FindString(out))
	if err != nil {
		t.Fatal(err)
	}
	dev := signedtest.NewAuthor(exampleElection, "", "test device", time.Now().Add(-time.Minute))
	conn, err := srv.srv.Client().New(srv.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sync := doorstepv1.NewSyncServiceClient(conn)
	enr, err := sync.Enroll(ctx, &doorstepv1.EnrollRequest{ElectionId: exampleElection, EnrollmentToken: code3.Token, DevicePublicKey: dev.Public()})
	if err != nil {
		t.Fatalf("enroll with the committee's code: %v", err)
	}
	dev.ID = enr.GetDeviceId()
	b1 := dev.Ballot(t, "3-2-501", "", signedtest.Yes("rules"), signedtest.Pick("committee", "c1", "c2"))
	b2 := dev.Ballot(t, "3-2-501", "", signedtest.No("rules"), signedtest.Pick("committee", "c3"))
	push, err := sync.PushRecords(ctx, &doorstepv1.PushRecordsRequest{ElectionId: exampleElection, Records: []*doorstepv1.SignedRecord{b1, b2}},
		(&callauth.Signer{ElectionID: exampleElection, KeyID: dev.ID, Key: dev.Key}).CallOption())
	if err != nil {
		t.Fatal(err)
	}
	// The device hears only "accepted"; the committee's tally below shows
	// the unit held.
	if s := push.GetResults()[1].GetStatus(); s != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		t.Fatalf("second ballot: %v; want accepted, as the device is told", s)
	}

	out = e.mustRun(t, "tally", "show", "--election", exampleElection)
	cmWant(t, out, "Tally of election "+exampleElection+": 翠湖苑", "Roster: 288 units", "Contested (held for the committee): 1",
		"1. committee", "c1 王建国", "quorum of 2/3 NOT met", "Outcome: quorum not met", "Computed at ballot log checkpoint")
	js := e.mustRun(t, "tally", "show", "--election", exampleElection, "--json")
	var parsed map[string]any
	if err := json.Unmarshal([]byte(js), &parsed); err != nil {
		t.Errorf("tally --json is not JSON: %v\n%s", err, js)
	}

	b1ID := signedtest.RecordID(t, b1)
	out = e.mustRun(t, "adjudicate", "list", "--election", exampleElection)
	cmWant(t, out, "Contested units: 1", "Unit 3-2-501", b1ID, signedtest.RecordID(t, b2), "rules: yes", "committee: c1,c2")
	cmWant(t, e.mustRun(t, "adjudicate", "unit", "--election", exampleElection, "--unit", "3-2-501", "--count", b1ID, "--reason", "业主本人确认第一张"),
		"ballot "+b1ID+" counts")
	cmWant(t, e.mustRun(t, "adjudicate", "list", "--election", exampleElection), "Nothing waits")
	cmWant(t, e.mustRun(t, "tally", "show", "--election", exampleElection), "Counted: 1 units", "Contested (held for the committee): 0")

	// An owner decision naming an unknown item is caught before signing.
	if code, _, errs := e.run(t, "adjudicate", "owner", "--election", exampleElection, "--owner", "holder-01", "--item", "nope", "--choice", "yes", "--reason", "r"); code != 2 || !strings.Contains(errs, "unknown item") {
		t.Errorf("owner decision on an unknown item: exit %d, stderr %q", code, errs)
	}
	cmWant(t, e.mustRun(t, "adjudicate", "owner", "--election", exampleElection, "--owner", "holder-01", "--item", "rules", "--choice", "yes", "--reason", "业主书面说明"),
		"holder-01")
	// A record the server refuses is reported, and the chain goes on.
	if code, _, errs := e.run(t, "adjudicate", "unit", "--election", exampleElection, "--unit", "99-9-999", "--count-none", "--reason", "r"); code != 1 || !strings.Contains(errs, "invalid action") {
		t.Errorf("adjudicating an unknown unit: exit %d, stderr %q", code, errs)
	}

	cmWant(t, e.mustRun(t, "device", "revoke", "--election", exampleElection, "--device", dev.ID, "--reason", "phone lost in the rain"), "Revoked device "+dev.ID)

	// The server goes away: a committee record is signed and kept, then
	// sent first when the server is back.
	addr := srv.srv.Addr()
	srv.stop()
	if code, _, errs := e.run(t, "election", "close", "--election", exampleElection, "--server", addr, "--timeout", "15s"); code != 1 || !strings.Contains(errs, "cannot reach") {
		t.Fatalf("close with the server down: exit %d, stderr %q", code, errs)
	}
	srv = startCmServer(t, srv.dir)
	e.vars["DOORSTEP_SERVER"] = srv.srv.Addr()
	e.vars["DOORSTEP_OPERATOR_TOKEN"] = srv.srv.OperatorToken()
	local, ok, err := committee.ReadState(committeeDir, exampleElection)
	if err != nil || !ok {
		t.Fatal(err)
	}
	if len(local.Pending) != 0 {
		t.Errorf("%d records pending after a failed call that signed nothing new", len(local.Pending))
	}
	out = e.mustRun(t, "election", "close", "--election", exampleElection)
	cmWant(t, out, "is closed", "sync deadline")
	local, _, _ = committee.ReadState(committeeDir, exampleElection)
	st := committeeState(t, srv.srv.Addr(), committeeDir)
	if st.GetHighSeq() != local.Seq || len(local.Pending) != 0 {
		t.Errorf("server holds committee records up to %d, this machine signed %d with %d unanswered", st.GetHighSeq(), local.Seq, len(local.Pending))
	}

	// Another machine with a copy of the key is refused, not forked.
	otherDir := filepath.Join(t.TempDir(), "committee")
	if err := os.MkdirAll(otherDir, 0o700); err != nil {
		t.Fatal(err)
	}
	keyBytes, err := os.ReadFile(filepath.Join(committeeDir, committee.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(otherDir, committee.KeyFile), keyBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = e.run(t, "device", "revoke", "--election", exampleElection, "--device", dev.ID, "--reason", "x", "--committee-dir", otherDir)
	if code != 1 || !strings.Contains(errs, "another machine is signing with this committee key") {
		t.Errorf("second machine: exit %d, stderr %q", code, errs)
	}
	cmWant(t, e.mustRun(t, "committee", "show"), exampleElection, "288 units", srv.srv.Fingerprint())
}

// TestCommitteeResendsUnansweredRecords checks that records signed while
// the server was down are sent, unchanged, before new ones.
func TestCommitteeResendsUnansweredRecords(t *testing.T) {
	srv := startCmServer(t, t.TempDir())
	e := newCmEnv(t)
	e.vars["DOORSTEP_SERVER"] = srv.srv.Addr()
	e.vars["DOORSTEP_OPERATOR_TOKEN"] = srv.srv.OperatorToken()
	electionFile, rosterFile := writeExamples(t)
	committeeDir := filepath.Join(e.config, "committee")
	e.mustRun(t, "committee", "init")
	e.mustRun(t, "election", "create", "--file", electionFile)
	e.mustRun(t, "roster", "import", "--election", exampleElection, "--file", rosterFile)

	// Sign an open record as if the machine crashed before sending it.
	s, err := committee.Open(committeeDir, exampleElection, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	r := s.State().Roster
	if _, err := s.Sign(&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: r.SHA256}}}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	// The next command sends the open first, then its own record.
	_, out, errs := e.run(t, "election", "close", "--election", exampleElection)
	if !strings.Contains(errs, "Sending 1 committee record(s) signed earlier") || !strings.Contains(out, "is closed") {
		t.Errorf("stdout %q stderr %q; want the earlier record sent and the election closed", out, errs)
	}
	local, _, _ := committee.ReadState(committeeDir, exampleElection)
	if st := committeeState(t, srv.srv.Addr(), committeeDir); st.GetHighSeq() != local.Seq {
		t.Errorf("server holds %d, local chain %d", st.GetHighSeq(), local.Seq)
	}
}

// TestEnrollRefusesChangedServerKey: a code tells devices which server to
// trust, so a server whose key changed since the election was created is
// not put into one without a person's confirmation.
func TestEnrollRefusesChangedServerKey(t *testing.T) {
	first := startCmServer(t, t.TempDir())
	e := newCmEnv(t)
	electionFile, _ := writeExamples(t)
	e.mustRun(t, "committee", "init")
	e.mustRun(t, "election", "create", "--file", electionFile, "--server", first.srv.Addr(), "--operator-token", first.srv.OperatorToken())
	other := startCmServer(t, t.TempDir())
	code, _, errs := e.run(t, "device", "enroll", "--election", exampleElection, "--server", other.srv.Addr(), "--qr", "none")
	if code != 1 || !strings.Contains(errs, "now has key fingerprint "+other.srv.Fingerprint()) || !strings.Contains(errs, first.srv.Fingerprint()) {
		t.Errorf("exit %d, stderr %q; want a refusal naming both fingerprints", code, errs)
	}
	code, _, errs = e.run(t, "device", "enroll", "--election", exampleElection, "--server", other.srv.Addr(), "--server-fingerprint", first.srv.Fingerprint())
	if code != 1 || !strings.Contains(errs, "not "+first.srv.Fingerprint()+" as --server-fingerprint says") {
		t.Errorf("exit %d, stderr %q; want the expected fingerprint refused", code, errs)
	}
}

// TestRosterImportChunks: a big estate's roster goes out in records of at
// most 5,000 units, and the server's hash of what arrived is the one the
// committee opens with.
func TestRosterImportChunks(t *testing.T) {
	srv := startCmServer(t, t.TempDir())
	e := newCmEnv(t)
	e.vars["DOORSTEP_SERVER"] = srv.srv.Addr()
	e.vars["DOORSTEP_OPERATOR_TOKEN"] = srv.srv.OperatorToken()
	electionFile, _ := writeExamples(t)
	var b strings.Builder
	b.WriteString("unit_id,building,area_m2,owner_key,developer_held\n")
	for i := range 12001 {
		id := fmt.Sprintf("%d-%d-%d%02d", i/600+1, i/300%2+1, i/10%30+1, i%10+1)
		fmt.Fprintf(&b, "%s,%d,%d.%02d,owner-%s,false\n", id, i/600+1, 60+i%80, i%100, id)
	}
	rosterFile := filepath.Join(t.TempDir(), "big.csv")
	if err := os.WriteFile(rosterFile, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, "committee", "init")
	e.mustRun(t, "election", "create", "--file", electionFile)
	cmWant(t, e.mustRun(t, "roster", "import", "--election", exampleElection, "--file", rosterFile), "in 3 record(s)", "Units: 12001")
	cmWant(t, e.mustRun(t, "election", "open", "--election", exampleElection), "is open", "12001 units")
}
