package cli_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/examples"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// testClock is the real clock moved ahead by hand, shared by tallyd and the
// committee's machine, so the objection period can pass in a test.
type testClock struct{ ahead atomic.Int64 }

func (c *testClock) now() time.Time       { return time.Now().Add(time.Duration(c.ahead.Load())) }
func (c *testClock) skip(d time.Duration) { c.ahead.Add(int64(d)) }

// dayDevice is a canvasser's device talking to tallyd directly, so the
// test says exactly what it holds unsent at each push.
type dayDevice struct {
	*signedtest.Author
	sync doorstepv1.SyncServiceClient
	clk  *testClock
}

func (d *dayDevice) push(t *testing.T, unsent uint64, recs ...*doorstepv1.SignedRecord) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := d.sync.PushRecords(ctx, &doorstepv1.PushRecordsRequest{ElectionId: exampleElection, Records: recs, Unsent: proto.Uint64(unsent)},
		(&callauth.Signer{ElectionID: exampleElection, KeyID: d.ID, Key: d.Key, Now: d.clk.now}).CallOption())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.GetResults() {
		if r.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
			t.Fatalf("push: %v", r)
		}
	}
}

func (d *dayDevice) ballot(t *testing.T, unit, comment string, sels ...*doorstepv1.Selection) *doorstepv1.SignedRecord {
	t.Helper()
	return d.Next(t, func(r *doorstepv1.Record) {
		r.Body = &doorstepv1.Record_Ballot{Ballot: &doorstepv1.Ballot{UnitId: unit, Selections: sels, SignerKind: doorstepv1.SignerKind_SIGNER_KIND_OWNER, SignerName: "业主本人", Comment: comment}}
	})
}

func jsonOut[T any](t *testing.T, out string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	return v
}

type devicesJSON struct {
	ElectionID string `json:"election_id"`
	Devices    []struct {
		Label       string  `json:"label"`
		DeviceID    string  `json:"device_id"`
		LastSync    *string `json:"last_sync"`
		RecordsHeld uint64  `json:"records_held"`
		Unsent      *uint64 `json:"unsent"`
		Revoked     bool    `json:"revoked"`
	} `json:"devices"`
}

// unsentOf returns what device list --json says device id holds unsent
// (-1: unknown).
func unsentOf(t *testing.T, e *cmEnv, id string) int {
	t.Helper()
	for _, d := range jsonOut[devicesJSON](t, e.mustRun(t, "device", "list", "--election", exampleElection, "--json")).Devices {
		if d.DeviceID == id {
			if d.Unsent == nil {
				return -1
			}
			return int(*d.Unsent)
		}
	}
	t.Fatalf("device %s not listed", id)
	return 0
}

// TestCommitteeDay runs the committee's day through real gRPC on
// loopback: devices listed with their labels and what they hold unsent
// until they sync; a contested unit listed with labels and comments,
// settled and counted; the comments as a list and a CSV; close, the
// preliminary notice, certify after the objection period, the final
// notice, and an adjudication refused after it.
func TestCommitteeDay(t *testing.T) {
	clk := &testClock{}
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	e := newCmEnv(t)
	e.now = clk.now
	e.vars["DOORSTEP_SERVER"] = srv.Addr()
	e.vars["DOORSTEP_OPERATOR_TOKEN"] = srv.OperatorToken()
	dir := t.TempDir()
	deadline := clk.now().Add(2 * time.Hour).UTC().Format(time.RFC3339)
	def := strings.Replace(string(examples.ElectionJSON), `"sync_deadline": "2027-12-31T20:00:00+08:00"`, `"sync_deadline": "`+deadline+`", "objection_period": "1h"`, 1)
	if def == string(examples.ElectionJSON) {
		t.Fatal("the example's sync deadline moved: fix this test's definition")
	}
	electionFile, rosterFile := filepath.Join(dir, "election.json"), filepath.Join(dir, "roster.csv")
	if err := os.WriteFile(electionFile, []byte(def), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rosterFile, examples.RosterCSV, 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun(t, "committee", "init")
	e.mustRun(t, "election", "create", "--file", electionFile)
	e.mustRun(t, "roster", "import", "--election", exampleElection, "--file", rosterFile)
	e.mustRun(t, "election", "open", "--election", exampleElection)
	cmWant(t, e.mustRun(t, "device", "list", "--election", exampleElection), "No device is enrolled")
	cmWant(t, e.mustRun(t, "tally", "show", "--election", exampleElection), "Election state: open since")

	conn, err := srv.Client().New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	enroll := func(label string) *dayDevice {
		t.Helper()
		code, err := enrollcode.Parse(codeRE.FindString(e.mustRun(t, "device", "enroll", "--election", exampleElection, "--label", label, "--qr", "none")))
		if err != nil {
			t.Fatal(err)
		}
		d := &dayDevice{Author: signedtest.NewAuthor(exampleElection, "", label, clk.now().Add(-time.Minute)), sync: doorstepv1.NewSyncServiceClient(conn), clk: clk}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		resp, err := d.sync.Enroll(ctx, &doorstepv1.EnrollRequest{ElectionId: exampleElection, EnrollmentToken: code.Token, DevicePublicKey: d.Public()})
		if err != nil {
			t.Fatal(err)
		}
		d.ID = resp.GetDeviceId()
		return d
	}
	wang, li := enroll("王阿姨"), enroll("李师傅")

	// Before any sync nothing is known of what they hold.
	out := e.mustRun(t, "device", "list", "--election", exampleElection)
	cmWant(t, out, "Devices of election "+exampleElection+": 2", "王阿姨", "李师傅", wang.ID, li.ID, "unknown", "never")
	if n := unsentOf(t, e, wang.ID); n != -1 {
		t.Errorf("before any sync: unsent %d; want unknown (null)", n)
	}

	// 王阿姨 syncs one ballot of two; 李师傅 a differing ballot for the
	// same unit, and nothing else.
	b1 := wang.ballot(t, "3-2-501", "请尽快修电梯", signedtest.Yes("rules"), signedtest.Pick("committee", "c1", "c2"))
	b3 := wang.ballot(t, "3-2-502", "", signedtest.No("rules"))
	wang.push(t, 1, b1)
	b2 := li.ballot(t, "3-2-501", "楼道灯坏了", signedtest.No("rules"), signedtest.Pick("committee", "c3"))
	li.push(t, 0, b2)
	if n := unsentOf(t, e, wang.ID); n != 1 {
		t.Errorf("王阿姨 holds 1 unsent; device list says %d", n)
	}
	if n := unsentOf(t, e, li.ID); n != 0 {
		t.Errorf("李师傅 holds nothing unsent; device list says %d", n)
	}
	cmWant(t, e.mustRun(t, "device", "list", "--election", exampleElection), "1 device(s) still hold records unsent")
	cmWant(t, e.mustRun(t, "device", "list", "--election", exampleElection, "--lang", "zh"), "采集员", "未发送", "1 台设备上还有未发送的记录")

	// The contested unit, with the canvassers' labels, names and comments.
	b1ID, b2ID := signedtest.RecordID(t, b1), signedtest.RecordID(t, b2)
	out = e.mustRun(t, "adjudicate", "list", "--election", exampleElection)
	cmWant(t, out, "Contested units: 1", "Unit 3-2-501", b1ID, b2ID, "canvasser 王阿姨 ("+wang.ID+")", "canvasser 李师傅",
		"committee: c1,c2 (王建国, 李秀英)", "rules: yes", "resident's comment: 请尽快修电梯", "resident's comment: 楼道灯坏了", "signed by: owner 业主本人")
	if strings.Contains(out, "dv-") && !strings.Contains(out, "王阿姨") {
		t.Errorf("devices named by id only:\n%s", out)
	}
	type adjJSON struct {
		Units []struct {
			UnitID  string `json:"unit_id"`
			Ballots []struct {
				RecordID    string  `json:"record_id"`
				DeviceLabel string  `json:"device_label"`
				DeviceTime  *string `json:"device_time"`
				Comment     string  `json:"comment"`
				SignerKind  string  `json:"signer_kind"`
				Selections  []struct {
					ItemID         string   `json:"item_id"`
					Choice         string   `json:"choice"`
					CandidateNames []string `json:"candidate_names"`
				} `json:"selections"`
			} `json:"ballots"`
		} `json:"contested_units"`
		SplitOwners []any `json:"split_owners"`
	}
	adj := jsonOut[adjJSON](t, e.mustRun(t, "adjudicate", "list", "--election", exampleElection, "--json"))
	if len(adj.Units) != 1 || len(adj.Units[0].Ballots) != 2 || adj.SplitOwners == nil {
		t.Fatalf("adjudicate list --json: %+v", adj)
	}
	for _, b := range adj.Units[0].Ballots {
		want := map[string]string{b1ID: "王阿姨", b2ID: "李师傅"}[b.RecordID]
		if b.DeviceLabel != want || b.Comment == "" || b.SignerKind != "owner" || b.DeviceTime == nil || len(b.Selections) != 4 {
			t.Errorf("ballot %+v; want label %q, a comment, the owner's signature, a time and four selections", b, want)
		}
		if b.RecordID == b1ID && (len(b.Selections) < 2 || b.Selections[0].ItemID != "committee" || strings.Join(b.Selections[0].CandidateNames, ",") != "王建国,李秀英" || b.Selections[1].Choice != "yes") {
			t.Errorf("ballot 1's selections: %+v", b.Selections)
		}
	}

	// The residents' comments, on screen and as a CSV for the property
	// management.
	cmWant(t, e.mustRun(t, "comments", "list", "--election", exampleElection), "Residents' comments in election "+exampleElection+": 2",
		"Unit 3-2-501 (building 3)", "canvasser 王阿姨", "请尽快修电梯", "楼道灯坏了")
	csvFile := filepath.Join(dir, "comments.csv")
	cmWant(t, e.mustRun(t, "comments", "list", "--election", exampleElection, "--csv", csvFile, "--lang", "zh"), "已将 2 条居民意见写入")
	data, err := os.ReadFile(csvFile)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(data), "\uFEFF户号,楼栋,时间,意见建议,采集员,设备编号,记录编号\n") || !strings.Contains(string(data), "3-2-501,3,") || !strings.Contains(string(data), ",请尽快修电梯,王阿姨,"+wang.ID+","+b1ID) {
		t.Errorf("comments CSV:\n%s", data)
	}
	e.vars["LANG"] = "en_GB.UTF-8"
	e.mustRun(t, "comments", "list", "--election", exampleElection, "--csv", csvFile)
	if data, _ := os.ReadFile(csvFile); !strings.HasPrefix(string(data), "\uFEFFUnit,Building,Time,Comment,Canvasser,") {
		t.Errorf("comments CSV under an English locale:\n%s", data)
	}
	type commentsJSON struct {
		Comments []struct {
			UnitID, Building, Comment, DeviceLabel string
			Time                                   *string
		} `json:"comments"`
	}
	if cs := jsonOut[commentsJSON](t, e.mustRun(t, "comments", "list", "--election", exampleElection, "--json")).Comments; len(cs) != 2 || cs[0].Time == nil || cs[0].Building != "3" {
		t.Errorf("comments --json: %+v", cs)
	}

	// 王阿姨 syncs the rest: she no longer appears as holding records.
	wang.push(t, 0, b3)
	if n := unsentOf(t, e, wang.ID); n != 0 {
		t.Errorf("after her sync 王阿姨 holds %d unsent; want 0", n)
	}
	if out := e.mustRun(t, "device", "list", "--election", exampleElection); strings.Contains(out, "still hold records unsent") {
		t.Errorf("everyone synced, yet:\n%s", out)
	}

	// No notice while the election is open.
	notice := filepath.Join(dir, "notice.html")
	if code, _, errs := e.run(t, "tally", "notice", "--election", exampleElection, "--out", notice); code != 1 || !strings.Contains(errs, "Election "+exampleElection+" is not closed yet") {
		t.Errorf("notice while open: exit %d, stderr %q", code, errs)
	}

	// Settled, then counted.
	cmWant(t, e.mustRun(t, "adjudicate", "unit", "--election", exampleElection, "--unit", "3-2-501", "--count", b1ID, "--reason", "业主本人确认第一张"), b1ID+" counts")
	cmWant(t, e.mustRun(t, "tally", "show", "--election", exampleElection), "Counted: 2 units", "Contested (held for the committee): 0")

	cmWant(t, e.mustRun(t, "election", "close", "--election", exampleElection), "is closed")
	out = e.mustRun(t, "tally", "show", "--election", exampleElection)
	cmWant(t, out, "Election state: closed since", "objection period of the preliminary notice runs until")
	cmWant(t, e.mustRun(t, "tally", "show", "--election", exampleElection, "--lang", "zh"), "选举状态：已截止", "公示期（异议期）至", "名册：288 户")

	// The preliminary notice, in Chinese by default whatever the locale.
	cmWant(t, e.mustRun(t, "tally", "notice", "--election", exampleElection, "--out", notice), "Wrote the preliminary results notice (公示) to "+notice)
	page := readFile(t, notice)
	cmWant(t, page, "选举结果公示（初步）", "翠湖苑", "3-2-501 户", "计入选票 "+b1ID, "业主本人确认第一张", `<span data-fig="units.counted">2</span>`,
		`<span data-fig="roster.units">288</span>`, "doorstep audit receipt --election "+exampleElection)
	// The final one waits for the certification.
	if code, _, errs := e.run(t, "tally", "notice", "--election", exampleElection, "--out", notice, "--final"); code != 1 || !strings.Contains(errs, "is not certified yet") {
		t.Errorf("final notice before certification: exit %d, stderr %q", code, errs)
	}

	// Certifying during the objection period is refused by the server.
	if code, _, errs := e.run(t, "election", "certify", "--election", exampleElection, "--yes"); code != 1 || !strings.Contains(errs, "objection period of the preliminary notice runs until") {
		t.Errorf("certify during the objection period: exit %d, stderr %q", code, errs)
	}
	clk.skip(3 * time.Hour)
	cmWant(t, e.mustRun(t, "tally", "show", "--election", exampleElection), "The objection period ended")

	// Not confirmed: nothing signed.
	before, _, _ := committee.ReadState(filepath.Join(e.config, "committee"), exampleElection)
	e.stdin = "no\n"
	code, out, errs := e.run(t, "election", "certify", "--election", exampleElection)
	if code != 1 || !strings.Contains(out, "Tally SHA-256: ") || !strings.Contains(errs, "nothing was signed") {
		t.Errorf("certify answered no: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if after, _, _ := committee.ReadState(filepath.Join(e.config, "committee"), exampleElection); after.Seq != before.Seq {
		t.Errorf("a refused confirmation signed %d record(s)", after.Seq-before.Seq)
	}
	e.stdin = "yes\n"
	cmWant(t, e.mustRun(t, "election", "certify", "--election", exampleElection), "Type yes", "is certified and final")
	cmWant(t, e.mustRun(t, "tally", "show", "--election", exampleElection), "Election state: certified (final) on", "Counted: 2 units")

	// The final notice, in English when asked.
	cmWant(t, e.mustRun(t, "tally", "notice", "--election", exampleElection, "--out", notice, "--final", "--lang", "en"), "Wrote the final results notice to "+notice)
	cmWant(t, readFile(t, notice), `lang="en"`, "Results notice (final)", "certified this result on", "ballot "+b1ID+" counts")
	if code, _, errs := e.run(t, "tally", "notice", "--election", exampleElection, "--out", notice); code != 1 || !strings.Contains(errs, "--final") {
		t.Errorf("preliminary notice after certification: exit %d, stderr %q", code, errs)
	}

	// Nothing changes the count any more: the server says so.
	code, _, errs = e.run(t, "adjudicate", "unit", "--election", exampleElection, "--unit", "3-2-501", "--count", b2ID, "--reason", "改判")
	if code != 1 || !strings.Contains(errs, "the result was certified: nothing can change it any more") {
		t.Errorf("adjudication after certification: exit %d, stderr %q", code, errs)
	}
	cmWant(t, e.mustRun(t, "adjudicate", "list", "--election", exampleElection), "Nothing waits")
	if code, _, errs := e.run(t, "election", "certify", "--election", exampleElection, "--yes"); code != 1 || !strings.Contains(errs, "already certified") {
		t.Errorf("certifying twice: exit %d, stderr %q", code, errs)
	}
	// Which devices are trusted may still change, and the canvasser is
	// named as the committee knows them.
	cmWant(t, e.mustRun(t, "device", "revoke", "--election", exampleElection, "--device", li.ID, "--reason", "手机丢失"), "Revoked device "+li.ID+" (李师傅)")
	cmWant(t, e.mustRun(t, "device", "list", "--election", exampleElection, "--lang", "zh"), "李师傅", "是")
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCommitteeReadErrors: a wrong --election says the election is not on
// the server, and a read that fails promises nothing about signed records.
func TestCommitteeReadErrors(t *testing.T) {
	srv := startCmServer(t, t.TempDir())
	e := newCmEnv(t)
	e.vars["DOORSTEP_SERVER"] = srv.srv.Addr()
	e.vars["DOORSTEP_OPERATOR_TOKEN"] = srv.srv.OperatorToken()
	electionFile, _ := writeExamples(t)
	e.mustRun(t, "committee", "init")
	e.mustRun(t, "election", "create", "--file", electionFile)
	for _, cmd := range [][]string{
		{"tally", "show"}, {"device", "list"}, {"comments", "list"}, {"adjudicate", "list"}, {"tally", "notice", "--out", filepath.Join(t.TempDir(), "n.html")},
	} {
		t.Run(strings.Join(cmd, " "), func(t *testing.T) {
			code, _, errs := e.run(t, append(cmd, "--election", "no-such-election")...)
			if code != 1 || !strings.Contains(errs, "election no-such-election is not on the server at "+srv.srv.Addr()) || strings.Contains(errs, "enrollment code") {
				t.Errorf("wrong --election: exit %d, stderr %q; want it to say the election is not on the server", code, errs)
			}
		})
	}
	// In Chinese, by --lang or by the locale.
	code, _, errs := e.run(t, "tally", "show", "--lang", "zh", "--election", "no-such-election")
	if want := "读取计票结果：选举 no-such-election 不在服务器 " + srv.srv.Addr() + " 上"; code != 1 || !strings.Contains(errs, want) {
		t.Errorf("wrong --election, --lang zh: exit %d, stderr %q; want %q", code, errs, want)
	}
	e.vars["LANG"] = "zh_CN.UTF-8"
	code, _, errs = e.run(t, "device", "list", "--election", "no-such-election")
	delete(e.vars, "LANG")
	if want := "列出设备：选举 no-such-election 不在服务器"; code != 1 || !strings.Contains(errs, want) {
		t.Errorf("wrong --election, LANG=zh_CN.UTF-8: exit %d, stderr %q; want %q", code, errs, want)
	}

	// Another committee's machine: told the key is not this election's,
	// not how devices join.
	other := newCmEnv(t)
	other.vars = e.vars
	other.mustRun(t, "committee", "init")
	code, _, errs = other.run(t, "tally", "show", "--election", exampleElection)
	if code != 1 || !strings.Contains(errs, "does not accept this committee key for election "+exampleElection) || strings.Contains(errs, "enrollment code") {
		t.Errorf("another committee's key: exit %d, stderr %q", code, errs)
	}

	// A server that does not answer: the read signed nothing, so it says
	// nothing about sending it later.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := lis.Addr().String()
	lis.Close()
	code, _, errs = e.run(t, "tally", "show", "--election", exampleElection, "--server", dead, "--server-pin", "sha256/"+strings.Repeat("A", 43), "--timeout", "2s")
	if code != 1 || strings.Contains(errs, "kept and sent next time") || !strings.Contains(errs, "cannot reach the tally server at "+dead) {
		t.Errorf("unreachable server: exit %d, stderr %q", code, errs)
	}
}
