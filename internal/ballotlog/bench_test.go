package ballotlog_test

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

// BenchmarkBuilder rebuilds a 1,000,000-entry log of 300-byte entries, as
// the auditor's verifier does, and reports the root's cost per entry.
func BenchmarkBuilder(b *testing.B) {
	const entries = 1_000_000
	entry := make([]byte, 300)
	for i := range entry {
		entry[i] = byte(i)
	}
	b.SetBytes(entries * int64(len(entry)))
	b.ReportAllocs()
	for b.Loop() {
		var lb ballotlog.Builder
		lb.Grow(entries)
		for i := range uint64(entries) {
			binary.BigEndian.PutUint64(entry, i) // distinct entries
			if _, err := lb.Append(entry); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := lb.TreeHash(lb.Size()); err != nil {
			b.Fatal(err)
		}
	}
	rate := float64(entries) * float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "entries/s")
	fmt.Printf("log build: %.0f entries/s\n", rate)
}
