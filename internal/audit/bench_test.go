package audit_test

import (
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/audit"
)

var benchRecords = flag.Int("verify.records", 1_000_000, "signed ballots in BenchmarkVerify's generated log")

// BenchmarkVerify verifies a generated election record of -verify.records
// signed ballots from 8 devices (one per unit, so the roster is as large),
// signatures, chains, replay and tally included. Generating the log signs
// every ballot and takes longer than one verification; it is not timed.
// The last line printed is the median rate.
func BenchmarkVerify(b *testing.B) {
	n := *benchRecords
	s := newSynth(b, n)
	s.genBallots(8, n)
	s.close()
	dir := filepath.Join(b.TempDir(), "record")
	if rep := s.export(dir); !rep.OK() {
		b.Fatalf("the generated record does not verify:\n%s", findings(rep))
	}
	var rates []float64
	var records int64
	b.ResetTimer()
	for b.Loop() {
		start := time.Now()
		rep, err := audit.Verify(context.Background(), dir)
		if err != nil {
			b.Fatal(err)
		}
		if !rep.OK() {
			b.Fatalf("verify:\n%s", findings(rep))
		}
		records = rep.Stats.Records
		rates = append(rates, float64(records)/time.Since(start).Seconds())
	}
	slices.Sort(rates)
	median := rates[len(rates)/2]
	b.ReportMetric(median, "records/s")
	fmt.Printf("verify: %.0f records/s (median of %d runs, %d records, GOMAXPROCS %d)\n", median, len(rates), records, runtime.GOMAXPROCS(0))
}
