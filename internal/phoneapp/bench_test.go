package phoneapp_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/doorstep-vote/doorstep/internal/browsertest"
)

// fillBallots drives the app's own screens from inside the page (no
// DevTools round trip per click): for each unit, open it, fill in a
// ballot, review, save and wait for the receipt. It resolves to the
// number saved.
const fillBallots = `async (units) => {
  const until = async (sel) => { for (let i = 0; !document.querySelector(sel); i++) { if (i > 5000) throw new Error("no " + sel + " at " + location.hash + ": " + document.getElementById("app").innerText.slice(0, 300)); await new Promise(r => setTimeout(r, 1)); } return document.querySelector(sel); };
  let n = 0;
  for (const u of units) {
    location.hash = "#unit/" + encodeURIComponent(u);
    (await until("#new-ballot")).click();
    await until("#ballot-form");
    document.querySelector('input[name="item-rules"][value="yes"]').click();
    document.querySelector('input[name="item-board"][value="c2"]').click();
    document.querySelector('input[name="signer"][value="owner"]').click();
    document.getElementById("review").click();
    (await until("#save")).click();
    await until("#receipt");
    n++;
  }
  return n;
}`

// noThrottle lets the page change its location more than 200 times in 10
// seconds: Chromium ignores such changes beyond that (its IPC flooding
// protection), and the benchmarks move through the app's screens faster
// than any canvasser.
var noThrottle = chromedp.Flag("disable-ipc-flooding-protection", true)

// BenchmarkBallotSaved measures, in headless Chromium, the time from the
// canvasser's "confirm and save" to the app showing the ballot as saved:
// the record made and signed (WebCrypto), its IndexedDB transaction
// committed, the receipt shown. It reports the median and the 95th
// percentile of the app's own performance measure.
func BenchmarkBallotSaved(b *testing.B) {
	n := max(b.N, 1)
	e := newPhoneElection(b, n+1, "bench")
	br := browsertest.Start(b, noThrottle)
	ctx, cancel := br.Tab(10 * time.Minute)
	defer cancel()
	join(b, ctx, e, "bench")
	offline(b, ctx, true) // nothing but the phone's own work is timed
	units := make([]string, n)
	for i := range n {
		units[i] = e.units[i].ID
	}
	arg, _ := json.Marshal(units)
	b.ResetTimer()
	got := eval[int](b, ctx, "("+fillBallots+")("+string(arg)+")")
	b.StopTimer()
	if got != n {
		b.Fatalf("saved %d ballots, want %d", got, n)
	}
	ms := eval[[]float64](b, ctx, `performance.getEntriesByName("doorstep-ballot-saved").map(m => m.duration)`)
	if len(ms) != n {
		b.Fatalf("%d measures for %d ballots", len(ms), n)
	}
	slices.Sort(ms)
	b.ReportMetric(ms[len(ms)/2], "ms-saved-median")
	b.ReportMetric(ms[len(ms)*95/100], "ms-saved-p95")
}

// BenchmarkSync1000 queues 1,000 ballots on the phone offline, then
// brings the network back and measures the time until the server has
// answered for every one (the app's own measure of its sync pass, and the
// wall time until the page shows nothing waiting).
func BenchmarkSync1000(b *testing.B) {
	const queued = 1000
	for range b.N {
		b.StopTimer()
		e := newPhoneElection(b, queued, "sync")
		br := browsertest.Start(b, noThrottle)
		ctx, cancel := br.Tab(15 * time.Minute)
		join(b, ctx, e, "sync")
		offline(b, ctx, true)
		units := make([]string, queued)
		for i := range queued {
			units[i] = e.units[i].ID
		}
		arg, _ := json.Marshal(units)
		if got := eval[int](b, ctx, "("+fillBallots+")("+string(arg)+")"); got != queued {
			b.Fatalf("queued %d", got)
		}
		do(b, ctx, "home", chromedp.Evaluate[chromedp.Void](`location.hash = "#home"`))
		waitTrue(b, ctx, "the queue", fmt.Sprintf(`document.getElementById("waiting")?.dataset.records === "%d"`, queued), time.Minute)
		eval[int](b, ctx, `performance.clearMeasures("doorstep-sync"), 0`)
		b.StartTimer()
		start := time.Now()
		online := eval[float64](b, ctx, `performance.now()`)
		offline(b, ctx, false)
		waitTrue(b, ctx, "everything sent", `document.getElementById("waiting")?.dataset.records === "0"`, 5*time.Minute)
		wall := time.Since(start)
		b.StopTimer()
		pass := eval[[]map[string]any](b, ctx, `performance.getEntriesByName("doorstep-sync").map(m => ({ms: m.duration, start: m.startTime, pushed: m.detail?.pushed ?? 0}))`)
		var passMS, passStart float64
		for _, p := range pass {
			if p["pushed"].(float64) == queued {
				passMS, passStart = p["ms"].(float64), p["start"].(float64)
			}
		}
		if passMS == 0 {
			b.Fatalf("no sync pass pushed all %d: %v", queued, pass)
		}
		n, err := e.srv.Store().LogSize(ctx, electionID)
		if err != nil || n < queued {
			b.Fatalf("the server's log has %d entries (%v), want at least %d", n, err, queued)
		}
		b.ReportMetric(passMS, "ms-sync-pass")
		b.ReportMetric(passStart-online, "ms-network-back-to-pass")
		b.ReportMetric(float64(wall.Milliseconds()), "ms-until-nothing-waiting")
		cancel()
		br.Close()
	}
}
