package committee

import (
	"fmt"
	"testing"
)

func TestNextBatch(t *testing.T) {
	records := func(n, body int) []PendingRecord {
		ps := make([]PendingRecord, n)
		for i := range ps {
			ps[i] = PendingRecord{Body: make([]byte, body), Signature: make([]byte, 64)}
		}
		return ps
	}
	tests := []struct {
		name    string
		pending []PendingRecord
		want    int
	}{
		{"one", records(1, 200), 1},
		{"a few", records(17, 200), 17},
		{"more than a call takes", records(batchRecords+5, 200), batchRecords},
		{"bytes fill a call", records(4, batchBytes/3), 2},
		{"a record larger than a call goes alone", records(3, batchBytes+1), 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := nextBatch(tt.pending); got != tt.want {
				t.Errorf("nextBatch = %d; want %d", got, tt.want)
			}
		})
	}
	// Sending batch after batch sends every record once, in order.
	pending := records(2*batchRecords+3, 10)
	for i := range pending {
		pending[i].RecordID = fmt.Sprint(i)
	}
	sent := 0
	for rest := pending; len(rest) > 0; {
		n := nextBatch(rest)
		if n < 1 || n > len(rest) {
			t.Fatalf("nextBatch = %d of %d", n, len(rest))
		}
		if rest[0].RecordID != fmt.Sprint(sent) {
			t.Fatalf("batch starts at record %s; want %d", rest[0].RecordID, sent)
		}
		sent += n
		rest = rest[n:]
	}
	if sent != len(pending) {
		t.Errorf("sent %d of %d", sent, len(pending))
	}
}
