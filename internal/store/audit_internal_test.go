package store

import (
	"crypto/sha256"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
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
