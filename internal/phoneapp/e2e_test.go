package phoneapp_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/browsertest"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tally"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

const electionID = "phone-2026"

// phoneElection is an open election on a real tallyd whose browser side
// serves the app over plain HTTP on loopback: http://127.0.0.1 is a secure
// context, so the service worker and WebCrypto work as on https.
type phoneElection struct {
	srv   *tallyd.Server
	com   *signedtest.Author
	units []election.Unit
	base  string // http://127.0.0.1:PORT/app/
}

func newPhoneElection(t testing.TB, nUnits int, tokens ...string) *phoneElection {
	t.Helper()
	srv, err := tallyd.Start(context.Background(), tallyd.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebListen: "127.0.0.1:0", Plaintext: true, Now: time.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("stop tallyd: %v", err)
		}
	})
	e := &phoneElection{srv: srv, base: "http://" + srv.WebAddr() + "/app/"}
	e.com = signedtest.NewAuthor(electionID, election.CommitteeAuthor, "phone committee", time.Now().Add(-time.Hour))
	for i := range nUnits {
		b, floor, room := 1+i/15, 1+(i%15)/3, 1+i%3
		e.units = append(e.units, election.Unit{
			ID: fmt.Sprintf("%d-1-%d%02d", b, floor, room), Area: int64(8000 + 10*i),
			OwnerKey: fmt.Sprintf("owner-%d", i), Building: strconv.Itoa(b),
		})
	}
	motion := func(id, title string, th doorstepv1.ThresholdClass) *doorstepv1.Item {
		return &doorstepv1.Item{ItemId: id, Title: title, Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: th}}}
	}
	def := &doorstepv1.ElectionDefinition{
		ElectionId: electionID, Title: "第五届业主委员会换届选举", CommitteePublicKey: e.com.Public(),
		Items: []*doorstepv1.Item{
			motion("rules", "修订管理规约", doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY),
			motion("fund", "续筹专项维修资金", doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL),
			{ItemId: "board", Title: "选举业主委员会委员", Kind: &doorstepv1.Item_Candidates{Candidates: &doorstepv1.CandidateElection{
				Seats: 2, Candidates: []*doorstepv1.Candidate{{CandidateId: "c1", Name: "张伟"}, {CandidateId: "c2", Name: "王芳"}, {CandidateId: "c3", Name: "李娜"}},
			}}},
		},
		ContestPolicy: doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD,
		SyncDeadline:  timestamppb.New(time.Now().Add(72 * time.Hour)),
		RulesVersion:  "2009-guidance",
	}
	if _, _, err := srv.Store().CreateElection(context.Background(), e.com.Committee(t, signedtest.Define(def))); err != nil {
		t.Fatal(err)
	}
	acts := []*doorstepv1.CommitteeAction{signedtest.Roster(e.units)}
	for _, tok := range tokens {
		acts = append(acts, signedtest.Grant(tok, "phone "+tok))
	}
	e.committee(t, append(acts, signedtest.Open(e.units))...)
	return e
}

func (e *phoneElection) committee(t testing.TB, acts ...*doorstepv1.CommitteeAction) {
	t.Helper()
	var recs []*doorstepv1.SignedRecord
	for _, a := range acts {
		recs = append(recs, e.com.Committee(t, a))
	}
	res, _, err := e.srv.Store().SubmitCommittee(context.Background(), electionID, recs)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			t.Fatalf("committee record rejected: %v", r.GetMessage())
		}
	}
}

// code is the enrollment code the committee hands a canvasser.
func (e *phoneElection) code(token string) string {
	return enrollcode.Encode(enrollcode.Code{
		Server: e.srv.Addr(), ElectionID: electionID, Token: signedtest.Token(token),
		Fingerprint: e.srv.Fingerprint(), TLS: servercert.Plaintext,
	})
}

func do(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// waitTrue polls a JavaScript condition in the page.
func waitTrue(t testing.TB, ctx context.Context, what, js string, limit time.Duration) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if _, err := chromedp.Run(c, chromedp.Poll[bool](js, chromedp.WithPollingInterval(50*time.Millisecond))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, js, err)
	}
}

// offline cuts the tab's network, for the page and its service worker
// alike, and tells the page it is offline, as DevTools' "Offline" does.
func offline(t testing.TB, ctx context.Context, off bool) {
	t.Helper()
	if _, err := chromedp.Call(ctx, network.Enable, network.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	conds := []*network.Conditions{}
	if off {
		conds = append(conds, &network.Conditions{Offline: true, DownloadThroughput: -1, UploadThroughput: -1})
	}
	sw := off
	if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{
		EmulateOfflineServiceWorker: &sw, MatchedNetworkConditions: conds,
	}); err != nil {
		t.Fatalf("network emulation: %v", err)
	}
	if _, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: off, DownloadThroughput: -1, UploadThroughput: -1}); err != nil {
		t.Fatalf("network state: %v", err)
	}
}

// join opens the app, joins with the code and waits for the walk list.
func join(t testing.TB, ctx context.Context, e *phoneElection, token string) {
	t.Helper()
	do(t, ctx, "open the app", chromedp.Navigate(e.base), chromedp.WaitVisible("#code"))
	do(t, ctx, "join",
		chromedp.SetValue("#code", e.code(token)),
		chromedp.SetValue("#label", "楼长 "+token),
		chromedp.Click("#join"),
		chromedp.WaitVisible("#walk"),
	)
	waitTrue(t, ctx, "the walk list", `document.querySelectorAll("#walk a[data-unit]").length > 0`, 20*time.Second)
	waitTrue(t, ctx, "the service worker to control the page", `navigator.serviceWorker.controller !== null`, 20*time.Second)
}

// ballot is what the canvasser enters for one unit.
type ballot struct {
	rules, fund string   // yes, no, abstain or "" (not answered)
	board       []string // candidate ids
	blank       bool
	signer      string // owner, co_owner, proxy
	proxyRef    string
	comment     string
}

func (b ballot) clicks() []chromedp.Action[chromedp.Void] {
	var a []chromedp.Action[chromedp.Void]
	if b.rules != "" {
		a = append(a, chromedp.Click(`input[name="item-rules"][value="`+b.rules+`"]`))
	}
	if b.fund != "" {
		a = append(a, chromedp.Click(`input[name="item-fund"][value="`+b.fund+`"]`))
	}
	for _, c := range b.board {
		a = append(a, chromedp.Click(`input[name="item-board"][value="`+c+`"]`))
	}
	if b.blank {
		a = append(a, chromedp.Click("#blank"))
	}
	a = append(a, chromedp.Click(`input[name="signer"][value="`+b.signer+`"]`))
	if b.proxyRef != "" {
		a = append(a, chromedp.SetValue("#proxy-ref", b.proxyRef))
	}
	if b.comment != "" {
		a = append(a, chromedp.SetValue("#comment", b.comment))
	}
	return a
}

func openUnit(t testing.TB, ctx context.Context, unit string) {
	t.Helper()
	do(t, ctx, "walk list", chromedp.Evaluate[chromedp.Void](`location.hash = "#home"`))
	waitTrue(t, ctx, "the walk list", `!!document.querySelector('#walk a[data-unit="`+unit+`"]')`, 15*time.Second)
	// The list is drawn anew when a sync ends; a tap on a link being
	// replaced is tapped again, as a canvasser would.
	var err error
	for range 3 {
		if err = chromedp.Do(ctx, chromedp.Click(`#walk a[data-unit="`+unit+`"]`)); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("open unit %s: %v", unit, err)
	}
	waitTrue(t, ctx, "unit "+unit, `(document.getElementById("unit-title")?.textContent ?? "").includes("`+unit+`")`, 15*time.Second)
}

// recordBallot fills in, reviews and saves a ballot; it returns the
// receipt code the app shows.
func recordBallot(t testing.TB, ctx context.Context, unit string, b ballot, shot string) string {
	t.Helper()
	openUnit(t, ctx, unit)
	do(t, ctx, "new ballot", chromedp.Click("#new-ballot"), chromedp.WaitVisible("#ballot-form"))
	do(t, ctx, "fill in "+unit, b.clicks()...)
	if shot != "" {
		browsertest.Screenshot(ctx, t, shot)
	}
	return reviewAndSave(t, ctx, unit)
}

func reviewAndSave(t testing.TB, ctx context.Context, unit string) string {
	t.Helper()
	do(t, ctx, "review "+unit, chromedp.Click("#review"), chromedp.WaitVisible("#review-list"), chromedp.Click("#save"), chromedp.WaitVisible("#receipt"))
	code, err := chromedp.Run(ctx, chromedp.Text("#receipt"))
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// TestPhoneAppEndToEnd is the "done means": a real Chromium, a
// real tallyd, a real enrollment code; the app keeps working offline and
// across a browser restart, and what it recorded is counted and audited.
func TestPhoneAppEndToEnd(t *testing.T) {
	e := newPhoneElection(t, 30, "phone")
	b := browsertest.Start(t)
	ctx, cancel := b.Tab(4 * time.Minute)
	defer cancel()
	join(t, ctx, e, "phone")
	if got := eval[string](t, ctx, `document.documentElement.lang`); got != "zh" {
		t.Errorf("the app's language is %q, want Chinese by default", got)
	}
	if got := eval[string](t, ctx, `document.getElementById("persist")?.dataset.persisted ?? "missing"`); got == "missing" {
		t.Error("the answer of navigator.storage.persist() is not shown")
	}
	// English on request, and back.
	do(t, ctx, "English", chromedp.Click("#lang"))
	waitTrue(t, ctx, "English", `document.documentElement.lang === "en" && document.getElementById("lang").textContent === "中文" && document.querySelector('.chip[data-status="todo"]').textContent.startsWith("not visited")`, 15*time.Second)
	do(t, ctx, "Chinese", chromedp.Click("#lang"))
	waitTrue(t, ctx, "Chinese", `document.documentElement.lang === "zh"`, 15*time.Second)

	// The network goes; the app reloads from its service worker.
	offline(t, ctx, true)
	do(t, ctx, "reload offline", chromedp.Reload(), chromedp.WaitVisible("#walk"))
	if got := eval[string](t, ctx, `fetch("/doorstep.v1.SyncService/GetServerInfo", {method: "POST"}).then(() => "reached", () => "offline")`); got != "offline" {
		t.Fatalf("the server is %s with the network cut", got)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#walk a[data-unit]").length`); n != len(e.units) {
		t.Fatalf("offline walk list has %d units, want %d", n, len(e.units))
	}

	// 20 ballots, explicit blank included, and visits, offline.
	plan := map[string]ballot{}
	var order []string
	for i := range 20 {
		u := e.units[i].ID
		bl := ballot{rules: map[bool]string{true: "yes", false: "no"}[i%3 != 0], fund: map[bool]string{true: "yes", false: "no"}[i%2 == 0], signer: "owner"}
		bl.board = []string{"c1"}
		if i%2 == 1 {
			bl.board = []string{"c1", "c2"}
		}
		switch i {
		case 1:
			bl.signer, bl.proxyRef = "proxy", "委托书 WT-2026-001"
		case 2:
			bl.signer, bl.comment = "co_owner", "电梯要修\n谢谢"
		case 19:
			bl = ballot{blank: true, signer: "owner"}
		}
		plan[u] = bl
		order = append(order, u)
	}
	receipts := map[string]string{}
	for i, u := range order {
		shot := ""
		if i == 4 {
			shot = "phoneapp-ballot-form.png"
		}
		receipts[u] = recordBallot(t, ctx, u, plan[u], shot)
		if len(receipts[u]) != 11 {
			t.Fatalf("unit %s: receipt %q", u, receipts[u])
		}
	}

	// A ballot with no choice at all is refused unless it is an explicit blank.
	openUnit(t, ctx, e.units[20].ID)
	do(t, ctx, "empty ballot", chromedp.Click("#new-ballot"), chromedp.WaitVisible("#ballot-form"), chromedp.Click(`input[name="signer"][value="owner"]`), chromedp.Click("#review"))
	waitTrue(t, ctx, "the form's answer", `document.getElementById("form-error")?.textContent !== ""`, 15*time.Second)
	if msg := eval[string](t, ctx, `document.getElementById("form-error").textContent`); !strings.Contains(msg, "空白票") {
		t.Errorf("an empty ballot says %q, want it to ask for an explicit blank", msg)
	}
	// A second ballot for a unit is only ever a revision.
	openUnit(t, ctx, order[3])
	if n := eval[int](t, ctx, `document.querySelectorAll("#new-ballot").length`); n != 0 {
		t.Error("a unit with a ballot offers a second new ballot")
	}

	// Visits.
	visits := map[string]string{e.units[20].ID: "NOT_HOME", e.units[21].ID: "REFUSED", e.units[22].ID: "BALLOT_LEFT"}
	for u, outcome := range visits {
		openUnit(t, ctx, u)
		do(t, ctx, "visit "+u, chromedp.SetValue("#visit-note", "下午再来"), chromedp.Click(`button.visit[data-outcome="`+outcome+`"]`))
		waitTrue(t, ctx, "visit saved", `document.querySelectorAll('#unit-records li[data-kind="visit"]').length === 1`, 15*time.Second)
	}

	// One revised: it starts from the earlier ballot and shows what changed.
	rev := order[0]
	openUnit(t, ctx, rev)
	do(t, ctx, "revise", chromedp.Click("#revise"), chromedp.WaitVisible("#ballot-form"))
	if got := eval[bool](t, ctx, `document.querySelector('input[name="item-rules"][value="no"]').checked && document.querySelector('input[name="item-board"][value="c1"]').checked`); !got {
		t.Fatal("the revision does not start from the earlier ballot")
	}
	do(t, ctx, "change fund", chromedp.Click(`input[name="item-fund"][value="no"]`), chromedp.Click("#review"), chromedp.WaitVisible("#changes"))
	changes := eval[[]string](t, ctx, `[...document.querySelectorAll("#changes .change")].map(c => c.textContent)`)
	if len(changes) != 1 || !strings.Contains(changes[0], "续筹专项维修资金") || !strings.Contains(changes[0], "同意") || !strings.Contains(changes[0], "反对") {
		t.Errorf("the review shows changes %q, want only fund: yes → no", changes)
	}
	do(t, ctx, "save the revision", chromedp.Click("#save"), chromedp.WaitVisible("#receipt"))
	revised := plan[rev]
	revised.fund = "no"
	plan[rev] = revised

	do(t, ctx, "walk list", chromedp.Evaluate[chromedp.Void](`location.hash = "#home"`), chromedp.WaitVisible("#walk"))
	waitTrue(t, ctx, "the walk list's counts", `document.querySelector('.chip[data-status="done"]')?.dataset.count === "20"`, 15*time.Second)
	browsertest.Screenshot(ctx, t, "phoneapp-walk-list.png")
	const wantRecords = 20 + 1 + 3
	waitTrue(t, ctx, "the outbox count", fmt.Sprintf(`document.getElementById("waiting")?.dataset.records === "%d" && document.getElementById("waiting")?.dataset.ballots === "21"`, wantRecords), 15*time.Second)
	if n, _ := e.srv.Store().LogSize(context.Background(), electionID); n > 5 {
		t.Fatalf("the server's log grew to %d entries with the network cut", n)
	}

	// The browser is closed and opened again, still offline: the outbox is intact.
	cancel()
	b.Close()
	b2 := browsertest.StartProfile(t, b.Profile)
	ctx2, cancel2 := b2.Tab(3 * time.Minute)
	defer cancel2()
	do(t, ctx2, "open a tab")
	offline(t, ctx2, true)
	do(t, ctx2, "open the app again offline", chromedp.Navigate(e.base), chromedp.WaitVisible("#walk"))
	waitTrue(t, ctx2, "the outbox after the restart", fmt.Sprintf(`document.getElementById("waiting")?.dataset.records === "%d"`, wantRecords), 20*time.Second)

	// The network returns; everything syncs by itself.
	offline(t, ctx2, false)
	waitTrue(t, ctx2, "everything sent", `document.getElementById("waiting")?.dataset.records === "0"`, 60*time.Second)
	rows := eval[[]map[string]any](t, ctx2, `new Promise((ok, bad) => { const r = indexedDB.open("doorstep"); r.onerror = bad; r.onsuccess = () => { const q = r.result.transaction("records").objectStore("records").getAll(); q.onsuccess = () => ok(q.result.map(x => ({seq: x.seq, pending: x.pending, status: x.status, kind: x.kind}))); q.onerror = bad; }; })`)
	if len(rows) != wantRecords {
		t.Fatalf("the phone holds %d records, want %d", len(rows), wantRecords)
	}
	for _, r := range rows {
		if r["pending"].(float64) != 0 || r["status"] != "ACCEPTED" {
			t.Errorf("record %v: pending %v, status %v; want answered and accepted", r["seq"], r["pending"], r["status"])
		}
	}

	// The walk list came back from the server: every unit visited or done.
	units := eval[map[string]float64](t, ctx2, `new Promise((ok, bad) => { const r = indexedDB.open("doorstep"); r.onerror = bad; r.onsuccess = () => { const q = r.result.transaction("units").objectStore("units").getAll(); q.onsuccess = () => ok(Object.fromEntries(q.result.map(u => [u.unitId, u.progress]))); q.onerror = bad; }; })`)
	for _, u := range order {
		if units[u] != 3 { // UNIT_PROGRESS_DONE
			t.Errorf("the server's walk list has unit %s at progress %v, want done", u, units[u])
		}
	}
	for u := range visits {
		if units[u] != 2 { // UNIT_PROGRESS_VISITED
			t.Errorf("the server's walk list has unit %s at progress %v, want visited", u, units[u])
		}
	}

	// The server counts exactly those ballots.
	res, _, err := e.srv.Store().Tally(context.Background(), electionID)
	if err != nil {
		t.Fatal(err)
	}
	if res.UnitsCounted != 20 || res.UnitsContested != 0 || res.UnitsDouble != 0 {
		t.Errorf("tally: %d units counted, %d contested, %d double; want 20, 0, 0", res.UnitsCounted, res.UnitsContested, res.UnitsDouble)
	}
	want := map[string]map[string]int64{"rules": {}, "fund": {}, "board": {}}
	for _, u := range order {
		p := plan[u]
		for item, c := range map[string]string{"rules": p.rules, "fund": p.fund} {
			if c == "" {
				c = "abstain"
			}
			want[item][c]++
		}
		for _, c := range p.board {
			want["board"][c]++
		}
	}
	for _, it := range res.Items {
		got := map[string]int64{}
		if it.Kind == "candidates" {
			for _, c := range it.Candidates {
				if c.Support.Headcount > 0 {
					got[c.CandidateID] = c.Support.Headcount
				}
			}
		} else {
			for k, c := range map[string]tally.Count{"yes": it.Yes, "no": it.No, "abstain": it.Abstain} {
				if c.Headcount > 0 {
					got[k] = c.Headcount
				}
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want[it.ItemID]) {
			t.Errorf("item %s: headcounts %v, want %v", it.ItemID, got, want[it.ItemID])
		}
	}

	// The committee closes; the exported election record verifies.
	e.committee(t, signedtest.Close())
	dir := filepath.Join(t.TempDir(), "record")
	if _, err := audit.Export(context.Background(), e.srv.Store().RecordSource(electionID), dir); err != nil {
		t.Fatalf("export: %v", err)
	}
	rep, err := audit.Verify(context.Background(), dir)
	if err != nil {
		t.Fatalf("audit verify: %v", err)
	}
	if len(rep.Discrepancies) > 0 || !rep.TallyMatches || rep.Devices != 1 {
		t.Errorf("audit verify: %d discrepancies %v, tally matches %v, %d devices", len(rep.Discrepancies), rep.Discrepancies, rep.TallyMatches, rep.Devices)
	}
}
