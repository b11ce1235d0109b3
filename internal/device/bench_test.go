package device_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// BenchmarkRecordBallot saves ballots durably (signed, committed and
// fsynced) as a canvasser does at the door, and prints the median time of
// one save. The target is under 10 ms.
func BenchmarkRecordBallot(b *testing.B) {
	f := newFixture(b)
	d, _ := f.joined(b, "bench")
	f.stop() // saving needs no server
	ctx := context.Background()
	ballot := owner("1-1-101", yes("rules"), pick("board", "c1", "c2"))
	ballot.Comment = "楼道灯坏了很久，希望新一届业委会尽快处理。"
	var took []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		if _, err := d.RecordBallot(ctx, ballot); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	median := float64(took[len(took)/2]) / float64(time.Millisecond)
	b.ReportMetric(median, "ms/ballot")
	fmt.Printf("device save: %.2f ms/ballot\n", median)
}

// BenchmarkSyncQueued syncs 10,000 ballots queued offline, one per unit, to
// a real tallyd on loopback, and prints the time the sync took. The target
// is under 3 s.
func BenchmarkSyncQueued(b *testing.B) {
	const queued = 10_000
	units := make([]election.Unit, queued)
	for i := range units {
		id := fmt.Sprintf("%d-%d-%d", i/500+1, i/100%5+1, i%100+101)
		units[i] = election.Unit{ID: id, Area: 9000 + int64(i%40)*100, OwnerKey: "o" + id}
	}
	f := newFixtureUnits(b, units)
	ctx := context.Background()
	var took []time.Duration
	for b.Loop() {
		b.StopTimer()
		d, _ := f.joined(b, "bench")
		for _, u := range units {
			mustRecord(b, d, owner(u.ID, yes("rules"), pick("board", "c2")))
		}
		b.StartTimer()
		start := time.Now()
		rep, err := d.Sync(ctx, 1)
		took = append(took, time.Since(start))
		if err != nil || rep.Answered != queued || rep.Pending != 0 {
			b.Fatalf("sync: %+v, %v", rep, err)
		}
		b.StopTimer()
		closeDevice(b, d)
		b.StartTimer()
	}
	slices.Sort(took)
	median := took[len(took)/2]
	b.ReportMetric(median.Seconds(), "s/10k")
	fmt.Printf("device sync: %d queued ballots in %.2f s\n", queued, median.Seconds())
}
