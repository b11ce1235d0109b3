package tallyd_test

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/trace"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

var ingestPlaintext = flag.Bool("ingest.plaintext", false, "also run BenchmarkIngest's workload over plaintext, interleaved with the TLS runs, and compare")

var ingestTrace = flag.String("ingest.trace", "", "write a runtime trace of each timed ingest of BenchmarkIngest and BenchmarkWatch to PREFIX-N-bare.trace or PREFIX-N-watched.trace, N counting them from 1; `go tool trace` then shows, under goroutine analysis, how long the store's commit goroutine waited for a processor (tracing slows the ingest)")

// traced counts the ingests traced for -ingest.trace.
var traced int

// startTrace starts a runtime trace of one ingest if -ingest.trace asks
// for it, and returns what stops it.
func startTrace(b *testing.B, watched bool) (stop func()) {
	b.Helper()
	if *ingestTrace == "" {
		return func() {}
	}
	traced++
	kind := "bare"
	if watched {
		kind = "watched"
	}
	f, err := os.Create(fmt.Sprintf("%s-%d-%s.trace", *ingestTrace, traced, kind))
	if err != nil {
		b.Fatal(err)
	}
	if err := trace.Start(f); err != nil {
		f.Close()
		b.Fatal(err)
	}
	return func() {
		trace.Stop()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

var ingestRuns = flag.Int("ingest.runs", 5, "runs of BenchmarkIngest's workload, each against a fresh server; the figure is their median")

// startElection starts a real tallyd in dir, fsync on, with an open
// election whose roster is units unitID(0) … unitID(units-1), and enrolls
// devs.
func startElection(tb testing.TB, dir string, units int, devs []*signedtest.Author, plaintext bool) *tallyd.Server {
	tb.Helper()
	// The collector setting cmd/tallyd runs with; NoSync is left off, so
	// every answer is on disk before it is sent.
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: dir, Listen: "127.0.0.1:0", GCPercent: tallyd.DefaultGCPercent, Plaintext: plaintext, WatchInterval: *watchInterval})
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	com := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "committee", now.Add(-time.Hour))
	conn, err := srv.Client().New(srv.Addr(), grpc.WithDefaultCallOptions(signedCall(testElection, com.ID, com.Key, time.Now)))
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	ec, sc := doorstepv1.NewElectionServiceClient(conn), doorstepv1.NewSyncServiceClient(conn)
	ctx := context.Background()
	def, _ := exampleElection(tb)
	def.ElectionId, def.CommitteePublicKey, def.SyncDeadline = testElection, com.Public(), tsOf(now.Add(72*time.Hour))
	if _, err := ec.CreateElection(ctx, &doorstepv1.CreateElectionRequest{Record: com.Committee(tb, signedtest.Define(def))}, callauth.Operator(srv.OperatorToken())); err != nil {
		tb.Fatal(err)
	}
	roster := make([]election.Unit, units)
	for i := range roster {
		id := unitID(i)
		roster[i] = election.Unit{ID: id, Area: 6000 + int64(i%5000), OwnerKey: "owner-" + id}
	}
	submit := func(recs ...*doorstepv1.SignedRecord) {
		resp, err := ec.SubmitCommitteeRecords(ctx, &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection, Records: recs})
		if err != nil {
			tb.Fatal(err)
		}
		for _, r := range resp.Results {
			if r.Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
				tb.Fatalf("committee record: %v %s", r.Reason, r.Message)
			}
		}
	}
	for i := 0; i < len(roster); i += 5000 {
		submit(com.Committee(tb, signedtest.Roster(roster[i:min(i+5000, len(roster))])))
	}
	submit(com.Committee(tb, signedtest.Open(roster)))
	grants := make([]*doorstepv1.SignedRecord, len(devs))
	for i := range devs {
		tok := fmt.Sprintf("token-%d", i)
		grants[i] = com.Committee(tb, signedtest.Grant(tok, tok))
	}
	submit(grants...)
	for i, d := range devs {
		tok := fmt.Sprintf("token-%d", i)
		resp, err := sc.Enroll(ctx, &doorstepv1.EnrollRequest{ElectionId: testElection, EnrollmentToken: signedtest.Token(tok), DevicePublicKey: d.Public()})
		if err != nil {
			tb.Fatal(err)
		}
		if resp.DeviceId != d.ID {
			tb.Fatalf("device %d enrolled as %s; its records name %s", i, resp.DeviceId, d.ID)
		}
	}
	return srv
}

// ingestRun is one run's figures.
type ingestRun struct {
	elapsed   time.Duration
	rate      float64       // new records stored per second
	heapStart uint64        // live heap when the timer started, bytes
	gcs       uint32        // collections during the run
	cpu       time.Duration // the process's CPU time (user and system) during the run
	// The 90th percentile of how long this process's goroutines waited,
	// runnable, for a processor during the run: near zero while the cores
	// have room, milliseconds once they are full.
	schedP90 time.Duration
}

// processCPU is the CPU time this process has used, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// schedWaits is the Go runtime's histogram of how long goroutines have
// waited, runnable, for a processor.
func schedWaits() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	metrics.Read(s)
	h := s[0].Value.Float64Histogram()
	return &metrics.Float64Histogram{Counts: slices.Clone(h.Counts), Buckets: h.Buckets}
}

// waitQuantile is the q-quantile of the waits counted between two
// readings of schedWaits, as the upper bound of its bucket.
func waitQuantile(before, after *metrics.Float64Histogram, q float64) time.Duration {
	var total uint64
	for i := range after.Counts {
		total += after.Counts[i] - before.Counts[i]
	}
	want := uint64(math.Ceil(q * float64(total)))
	var n uint64
	for i := range after.Counts {
		n += after.Counts[i] - before.Counts[i]
		if total > 0 && n >= want {
			bound := after.Buckets[i+1]
			if math.IsInf(bound, 1) {
				bound = after.Buckets[i]
			}
			return time.Duration(bound * float64(time.Second))
		}
	}
	return 0
}

// runIngest pushes the whole day to a fresh server in a fresh data folder,
// every device on its own connection, and checks every answer.
func runIngest(b *testing.B, day *canvassDay, plaintext bool) ingestRun {
	return runIngestWatched(b, day, plaintext, nil)
}

// ingestWatcher is what watches a run of runIngestWatched: attach starts
// before the timer, acked hears each push's answer as it arrives (device
// d, its checkpoint's size), and drain runs after the last answer, before
// the server stops.
type ingestWatcher interface {
	attach(b *testing.B, srv *tallyd.Server)
	acked(d int, at time.Time, size uint64)
	drain(b *testing.B)
}

// runIngestWatched is runIngest with w (if not nil) attached.
func runIngestWatched(b *testing.B, day *canvassDay, plaintext bool, w ingestWatcher) ingestRun {
	b.Helper()
	dir := b.TempDir()
	defer os.RemoveAll(dir)
	srv := startElection(b, filepath.Join(dir, "data"), day.roster, day.devs, plaintext)
	defer srv.Close()
	if w != nil {
		w.attach(b, srv)
		defer w.drain(b)
	}
	ctx := context.Background()
	conns := make([]*grpc.ClientConn, len(day.devs))
	for i := range conns {
		c, err := srv.Client().New(srv.Addr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
		// Connect now, not on the timer.
		if _, err := doorstepv1.NewSyncServiceClient(c).GetServerInfo(ctx, &doorstepv1.GetServerInfoRequest{}, grpc.WaitForReady(true)); err != nil {
			b.Fatal(err)
		}
	}
	got := make([][]answer, len(day.devs))
	for d := range got {
		got[d] = make([]answer, len(day.want[d]))
	}
	errs := make([]error, len(day.devs))
	bad := make([]mismatches, len(day.devs))
	raw := grpc.ForceCodecV2(wireCodec{})
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	b.StartTimer()
	stopTrace := startTrace(b, w != nil)
	cpu0 := processCPU()
	waits0 := schedWaits()
	start := time.Now()
	for d := range day.devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var prev []*doorstepv1.RecordResult
			// Each push is a call signed by its device, as a real device's is.
			signer := &callauth.Signer{ElectionID: testElection, KeyID: day.devs[d].ID, Key: day.devs[d].Key}
			for k, p := range day.pushes[d] {
				resp := new(doorstepv1.PushRecordsResponse)
				md, err := signer.Metadata(doorstepv1.SyncService_PushRecords_FullMethodName, p.hash)
				if err != nil {
					errs[d] = err
					return
				}
				if err := conns[d].Invoke(metadata.NewOutgoingContext(ctx, md), doorstepv1.SyncService_PushRecords_FullMethodName, p.wire, resp, raw); err != nil {
					errs[d] = fmt.Errorf("device %d push %d: %w", d, k, err)
					return
				}
				if w != nil {
					w.acked(d, time.Now(), resp.GetCheckpoint().GetSize())
				}
				day.checkPush(d, k, resp.Results, prev, got[d], &bad[d])
				prev = resp.Results
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	schedP90 := waitQuantile(waits0, schedWaits(), 0.9)
	stopTrace()
	b.StopTimer()
	runtime.ReadMemStats(&after)
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
	t, _, err := srv.Store().Tally(ctx, testElection)
	if err != nil {
		b.Fatal(err)
	}
	for d := 1; d < len(bad); d++ {
		bad[0].merge(&bad[d])
	}
	if err := day.checkRun(got, t, &bad[0]); err != nil {
		b.Fatal(err)
	}
	return ingestRun{elapsed: elapsed, rate: float64(day.records) / elapsed.Seconds(), heapStart: before.HeapAlloc, gcs: after.NumGC - before.NumGC, cpu: cpu, schedP90: schedP90}
}

// verifyCeiling is the rate at which this machine checks record
// signatures with crypto/ed25519 on all cores: the most any ingest could do
// if checking each record's one signature were all it did.
func verifyCeiling(day *canvassDay, dur time.Duration) float64 {
	procs := runtime.GOMAXPROCS(0)
	var total atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(dur)
	for g := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for i := g * 97; ; i++ {
				if !ed25519Verify(day.samples[i%len(day.samples)]) {
					panic("a verified signature stopped verifying")
				}
				n++
				if n%32 == 0 && time.Now().After(deadline) {
					break
				}
			}
			total.Add(int64(n))
		}()
	}
	wg.Wait()
	return float64(total.Load()) / time.Since(start).Seconds()
}

// BenchmarkIngest drives a canvassing day through a real tallyd on
// loopback with fsync on: 100 devices, each on its own connection, push
// pre-signed batches of 100 records, about 87% ballots (some revising the
// device's own earlier ballot, some a second canvasser's at a door that
// has one: duplicate or contested), 13% visits, plus exact re-sends of
// whole batches answered from the log. b.N is the new records of one run
// (ns/op: the median run's time per new record); every answer is checked
// against what the workload intended. It runs
// -ingest.runs times against fresh servers, measuring the signature verify
// ceiling after each, and prints the median rate, the median ceiling and
// their ratio on its last line.
//
//	go test -run '^$' -bench BenchmarkIngest -benchtime 200000x ./internal/tallyd/
func BenchmarkIngest(b *testing.B) {
	const devices, batch = 100, 100
	if *ingestRuns < 1 {
		b.Fatal("-ingest.runs must be at least 1")
	}
	perDevice := max(b.N, devices*batch) / devices
	day := planCanvassDay(b, devices, perDevice, batch)
	b.ResetTimer()
	b.StopTimer()
	var runs, plain []ingestRun
	var ceilings []float64
	for i := range *ingestRuns {
		r := runIngest(b, day, false)
		runs = append(runs, r)
		if *ingestPlaintext {
			// Interleaved with the TLS runs, so both see the same machine.
			p := runIngest(b, day, true)
			plain = append(plain, p)
			fmt.Printf("ingest run %d/%d over plaintext: %s records/s\n", i+1, *ingestRuns, thousands(p.rate))
		}
		// A slice of the ceiling after each run, so that the ratio compares
		// figures taken under the same conditions even on a shared machine.
		ceilings = append(ceilings, verifyCeiling(day, max(1500*time.Millisecond/time.Duration(*ingestRuns), 200*time.Millisecond)))
		fmt.Printf("ingest run %d/%d of %s records: %s records/s (%.2f s; %d collections, live heap %d MB at the start; goroutines waited for a processor %s, p90); verify ceiling %s signatures/s\n",
			i+1, *ingestRuns, thousands(float64(day.records)), thousands(r.rate), r.elapsed.Seconds(), r.gcs, r.heapStart>>20, r.schedP90.Round(100*time.Microsecond), thousands(ceilings[i]))
	}
	slices.SortFunc(runs, func(x, y ingestRun) int { return cmp.Compare(x.elapsed, y.elapsed) })
	median := runs[len(runs)/2]
	slices.Sort(ceilings)
	ceiling := ceilings[len(ceilings)/2]
	ratio := median.rate / ceiling
	b.ReportMetric(median.rate, "records/s")
	b.ReportMetric(ceiling, "verify-sigs/s")
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(median.elapsed.Nanoseconds())/float64(day.records), "ns/op")
	fmt.Printf("ingest: median %s records/s over %d runs (%s new records a run, of them %s ballots: %s first at a door, %s revisions, %s second canvasser (%s duplicate, %s contested); %s visits; plus %s records re-sent and answered from the log, not counted; runs %s–%s records/s; %d devices, batches of %d, fsync before ack, gc-percent %d); verify ceiling %s signatures/s on %d cores (median of %d slices after the runs); ratio %.2f\n",
		thousands(median.rate), len(runs), thousands(float64(day.records)), thousands(float64(day.ballots)), thousands(float64(day.firsts)),
		thousands(float64(day.revisions)), thousands(float64(day.dups+day.contests)), thousands(float64(day.dups)), thousands(float64(day.contests)),
		thousands(float64(day.visits)), thousands(float64(day.resent)), thousands(runs[len(runs)-1].rate), thousands(runs[0].rate),
		devices, batch, tallyd.DefaultGCPercent, thousands(ceiling), runtime.GOMAXPROCS(0), len(ceilings), ratio)
	if len(plain) > 0 {
		slices.SortFunc(plain, func(x, y ingestRun) int { return cmp.Compare(x.elapsed, y.elapsed) })
		pm := plain[len(plain)/2]
		b.ReportMetric(pm.rate/ceiling, "ratio-plaintext")
		fmt.Printf("ingest: over TLS median %s records/s, ratio %.2f; over plaintext median %s records/s, ratio %.2f; TLS costs %.1f%% of the ratio (same run, interleaved)\n",
			thousands(median.rate), ratio, thousands(pm.rate), pm.rate/ceiling, 100*(1-median.rate/pm.rate))
	}
}

// thousands writes x rounded to a whole number with thousands separators.
func thousands(x float64) string {
	s := strconv.FormatInt(int64(x+0.5), 10)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func TestWaitQuantile(t *testing.T) {
	buckets := []float64{0, 0.001, 0.002, 0.004, math.Inf(1)}
	hist := func(counts ...uint64) *metrics.Float64Histogram {
		return &metrics.Float64Histogram{Counts: counts, Buckets: buckets}
	}
	before := hist(5, 5, 5, 5)
	for _, tc := range []struct {
		name  string
		after *metrics.Float64Histogram
		q     float64
		want  time.Duration
	}{
		{"nothing counted in between", hist(5, 5, 5, 5), 0.9, 0},
		{"all in the first bucket", hist(15, 5, 5, 5), 0.9, time.Millisecond},
		{"p90 in the third bucket", hist(5+80, 5+5, 5+10, 5+5), 0.9, 4 * time.Millisecond},
		{"p50 in the first bucket", hist(5+80, 5+5, 5+10, 5+5), 0.5, time.Millisecond},
		{"the open last bucket gives its lower bound", hist(5, 5, 5, 5+1), 0.9, 4 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := waitQuantile(before, tc.after, tc.q); got != tc.want {
				t.Errorf("waitQuantile(q=%v) = %v, want %v", tc.q, got, tc.want)
			}
		})
	}
}
