package store

import (
	"crypto/sha256"
	"testing"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// FuzzReceiptPrefix: the prefix read back from a receipt code is exactly
// the first 50 bits of the hash the code was made from, so the rejected
// bucket's range scan finds the ballot.
func FuzzReceiptPrefix(f *testing.F) {
	f.Add([]byte("body"), []byte("signature"))
	f.Add([]byte{}, []byte{})
	f.Add([]byte{0xff, 0xff}, make([]byte, 64))
	f.Fuzz(func(t *testing.T, body, sig []byte) {
		code := ballotlog.ReceiptCode(body, sig)
		p, err := receiptPrefix(code)
		if err != nil {
			t.Fatalf("receiptPrefix(%q): %v", code, err)
		}
		h := sha256.New()
		h.Write(body)
		h.Write(sig)
		sum := h.Sum(nil)
		if !matchesPrefix(sum, p) {
			t.Fatalf("prefix %x does not match hash %x", p, sum[:7])
		}
		if p[6]&0x3f != 0 {
			t.Fatalf("prefix %x has bits past the 50th", p)
		}
		other := append([]byte{}, sum...)
		other[5] ^= 1
		if matchesPrefix(other, p) {
			t.Fatalf("prefix %x matches a hash differing in bit 47", p)
		}
	})
}

func TestReceiptPrefixRefuses(t *testing.T) {
	for _, s := range []string{"", "ABCDE-FGHJ", "ABCDE-FGHJKM", "ABCDE-FGHJU", "abcde-fghjk"} {
		if _, err := receiptPrefix(s); err == nil {
			t.Errorf("receiptPrefix(%q) succeeded", s)
		}
	}
}

func TestReceiptStatus(t *testing.T) {
	tests := []struct {
		name string
		out  tally.UnitOutcome
		id   string
		want doorstepv1.ReceiptStatus
	}{
		{"counted", tally.UnitOutcome{Counted: true, CountedID: "a", Live: []string{"a"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED},
		{"superseded", tally.UnitOutcome{Counted: true, CountedID: "b", Live: []string{"b"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_SUPERSEDED},
		{"held", tally.UnitOutcome{Contested: true, Live: []string{"a", "b"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED},
		{"settled for the other", tally.UnitOutcome{Contested: true, Adjudicated: true, Counted: true, CountedID: "b", Live: []string{"a", "b"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED},
		{"settled for none", tally.UnitOutcome{Adjudicated: true, Live: []string{"a"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED},
		{"double visit copy", tally.UnitOutcome{Counted: true, Double: true, CountedID: "a", Live: []string{"a", "b"}}, "b", doorstepv1.ReceiptStatus_RECEIPT_STATUS_INCLUDED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := receiptStatus(tt.out, tt.id); got != tt.want {
				t.Errorf("receiptStatus = %v; want %v", got, tt.want)
			}
		})
	}
}
