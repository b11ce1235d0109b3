package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// BenchmarkTallyRead fills a store with DOORSTEP_BENCH_BALLOTS ballots
// (default 1,000,000, one per unit, signed by 100 devices), then measures
// the live tally read, the Go heap of the process holding the open store,
// and the time to reopen the store and serve the first tally.
//
//	go test -run '^$' -bench BenchmarkTallyRead -benchtime 2000x -timeout 30m ./internal/store/
func BenchmarkTallyRead(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("DOORSTEP_BENCH_BALLOTS")); err == nil && v > 0 {
		n = v
	}
	// The benchmark function runs several times with growing b.N; fill the
	// store once.
	filled.once.Do(func() { filled.s, filled.fill, filled.dir = fillStore(b, n) })
	s, dir := filled.s, filled.dir
	ctx := context.Background()
	if s == nil {
		b.Fatal("fill failed")
	}
	// Two collections: the first only moves sync.Pool contents (bbolt's
	// page buffers, gRPC's) to the victim cache; the second frees them.
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap := ms.HeapAlloc

	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		res, _, err := s.Tally(ctx, eid)
		if err != nil || res.UnitsCounted != n {
			b.Fatalf("tally: %v, counted %d of %d", err, res.UnitsCounted, n)
		}
	}
	perRead := time.Since(start) / time.Duration(b.N)
	b.StopTimer()

	s.Close()
	restartStart := time.Now()
	s, err := store.Open(ctx, store.Config{Path: filepath.Join(dir, "tally.db"), Signer: ballotlog.NewKeySigner(signedtest.NewKey("server")), Origin: "bench",
		Now: func() time.Time { return t0.Add(time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	if _, _, err := s.Tally(ctx, eid); err != nil {
		b.Fatal(err)
	}
	restart := time.Since(restartStart)
	filled.s = s
	b.ReportMetric(float64(perRead.Nanoseconds())/1000, "µs/read")
	b.ReportMetric(float64(heap)/(1<<20), "heap-MB")
	fmt.Printf("tally read: %.1f µs at %d ballots (Go heap %.0f MB with the store open, restart to first tally %d ms, fill %.0f ballots/s)\n",
		float64(perRead.Nanoseconds())/1000, n, float64(heap)/(1<<20), restart.Milliseconds(), float64(n)/filled.fill.Seconds())
}

var filled struct {
	once sync.Once
	s    *store.Store
	dir  string
	fill time.Duration
}

// fillStore makes a store with n ballots, one per unit, pushed by 100
// devices in batches of 1000 with fsync on.
func fillStore(b *testing.B, n int) (*store.Store, time.Duration, string) {
	dir, err := os.MkdirTemp("", "doorstep-bench-")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	open := func() *store.Store {
		s, err := store.Open(ctx, store.Config{Path: filepath.Join(dir, "tally.db"), Signer: ballotlog.NewKeySigner(signedtest.NewKey("server")), Origin: "bench",
			Now: func() time.Time { return t0.Add(time.Hour) }})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	s := open()
	units := make([]election.Unit, n)
	for i := range units {
		id := fmt.Sprintf("%d-%d-%d", i/10000+1, i/100%100+1, i%100+101)
		units[i] = election.Unit{ID: id, Area: 6000 + int64(i%7000), OwnerKey: "o" + strconv.Itoa(i*7/10)}
	}
	com := signedtest.NewAuthor(eid, election.CommitteeAuthor, "committee", t0)
	def := propDefinition(com.Public())
	def.SyncDeadline = tsOf(t0.Add(48 * time.Hour))
	if _, _, err := s.CreateElection(ctx, com.Committee(b, signedtest.Define(def))); err != nil {
		b.Fatal(err)
	}
	var recs []*doorstepv1.SignedRecord
	for i := 0; i < n; i += 20000 {
		recs = append(recs, com.Committee(b, signedtest.Roster(units[i:min(i+20000, n)])))
	}
	recs = append(recs, com.Committee(b, signedtest.Open(units)))
	const devices = 100
	for i := 0; i < devices; i++ {
		recs = append(recs, com.Committee(b, signedtest.Grant(fmt.Sprint("tok", i), "")))
	}
	for i := 0; i < len(recs); i += 100 {
		if _, _, err := s.SubmitCommittee(ctx, eid, recs[i:min(i+100, len(recs))]); err != nil {
			b.Fatal(err)
		}
	}
	devs := make([]*signedtest.Author, devices)
	for i := range devs {
		devs[i] = signedtest.NewAuthor(eid, "", fmt.Sprint("d", i), t0)
		id, err := s.Enroll(ctx, eid, signedtest.Token(fmt.Sprint("tok", i)), devs[i].Public(), "")
		if err != nil {
			b.Fatal(err)
		}
		devs[i].ID = id
	}
	fillStart := time.Now()
	var wg sync.WaitGroup
	for d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []*doorstepv1.SignedRecord
			flush := func() {
				if _, _, err := s.Push(ctx, eid, batch); err != nil {
					b.Error(err)
				}
				batch = batch[:0]
			}
			for i := d; i < n; i += devices {
				batch = append(batch, devs[d].Ballot(nil, units[i].ID, "", signedtest.Yes("m"), signedtest.No("s"), signedtest.Pick("c", "x")))
				if len(batch) == 1000 {
					flush()
				}
			}
			if len(batch) > 0 {
				flush()
			}
		}()
	}
	wg.Wait()
	return s, time.Since(fillStart), dir
}

// TestMain removes the benchmark's store folder.
func TestMain(m *testing.M) {
	code := m.Run()
	if filled.s != nil {
		filled.s.Close()
		os.RemoveAll(filled.dir)
	}
	os.Exit(code)
}
