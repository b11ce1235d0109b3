package ballotlog_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
)

func TestReceiptCode(t *testing.T) {
	sig := vectorSignature()
	tests := []struct {
		name      string
		body, sig []byte
		want      string
	}{
		{"vector", []byte("doorstep test vector body 1"), sig, vectorReceipt1},
		// SHA-256 of nothing starts e3b0c44298fc1c…; its top 50 bits are
		// 11100 01110 11000 01100 01000 10000 10100 11000 11111 10000,
		// that is 28 14 24 12 8 16 20 24 31 16.
		{"empty", nil, nil, "WERC8-GMRZG"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ballotlog.ReceiptCode(tt.body, tt.sig); got != tt.want {
				t.Errorf("ReceiptCode = %s; want %s", got, tt.want)
			}
		})
	}

	// Any change to the body or signature changes the code; the split
	// between them does not matter because signatures have a fixed size.
	base := ballotlog.ReceiptCode([]byte("body"), sig)
	flippedSig := bytes.Clone(sig)
	flippedSig[63] ^= 1
	for name, got := range map[string]string{
		"body changed":      ballotlog.ReceiptCode([]byte("bodY"), sig),
		"signature changed": ballotlog.ReceiptCode([]byte("body"), flippedSig),
	} {
		if got == base {
			t.Errorf("%s: receipt code unchanged (%s)", name, got)
		}
	}
}

// parseCases are inputs ParseReceiptCode reads; they also seed the fuzzer.
var parseCases = []struct {
	in, want string // want "" means the input is refused
}{
	{"KS4ND-H7PJG", "KS4ND-H7PJG"},
	{"ks4nd-h7pjg", "KS4ND-H7PJG"},
	{"ks4ndh7pjg", "KS4ND-H7PJG"},
	{" KS4ND H7PJG ", "KS4ND-H7PJG"},
	{"K-S-4-N-D-H-7-P-J-G", "KS4ND-H7PJG"},
	{"oOiIl-L0123", "00111-10123"}, // O→0, I/L→1
	{"\tabcde-fghjk", "ABCDE-FGHJK"},
	{"KS4ND-H7PJ", ""},       // nine symbols
	{"KS4ND-H7PJGX", ""},     // eleven
	{"KS4ND-H7PJU", ""},      // U is not in the alphabet
	{"KS4ND_H7PJG", ""},      // underscore
	{"", ""},                 // nothing
	{"-----", ""},            // only dashes
	{"KS4ND-H7PJ\u0413", ""}, // Cyrillic lookalike
	{"KS4ND-H7PJ\xff", ""},   // invalid UTF-8
	{"ＫＳ４ＮＤ-Ｈ７ＰＪＧ", ""},      // full-width forms
}

func TestParseReceiptCode(t *testing.T) {
	for _, tt := range parseCases {
		t.Run(fmt.Sprintf("%q", tt.in), func(t *testing.T) {
			got, err := ballotlog.ParseReceiptCode(tt.in)
			if tt.want == "" {
				if err == nil {
					t.Fatalf("ParseReceiptCode = %q; want an error", got)
				}
				if election.ErrorCode(err) != election.CodeInvalid {
					t.Errorf("error %v has code %v; want invalid", err, election.ErrorCode(err))
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseReceiptCode = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestReceiptCodeParsesToItself(t *testing.T) {
	for i := range 200 {
		code := ballotlog.ReceiptCode(fmt.Appendf(nil, "body %d", i), vectorSignature())
		got, err := ballotlog.ParseReceiptCode(code)
		if err != nil || got != code {
			t.Fatalf("ParseReceiptCode(%q) = %q, %v", code, got, err)
		}
	}
}

func FuzzParseReceiptCode(f *testing.F) {
	for _, c := range parseCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ballotlog.ParseReceiptCode(s)
		if err != nil {
			if election.ErrorCode(err) != election.CodeInvalid {
				t.Fatalf("error %v is not an invalid-input error", err)
			}
			return
		}
		// A parsed code is canonical: two groups of five alphabet symbols,
		// and parsing it again changes nothing.
		if len(got) != 11 || got[5] != '-' {
			t.Fatalf("ParseReceiptCode(%q) = %q, not XXXXX-XXXXX", s, got)
		}
		for i, r := range got {
			if i != 5 && !bytes.ContainsRune([]byte("0123456789ABCDEFGHJKMNPQRSTVWXYZ"), r) {
				t.Fatalf("ParseReceiptCode(%q) = %q holds %q", s, got, r)
			}
		}
		again, err := ballotlog.ParseReceiptCode(got)
		if err != nil || again != got {
			t.Fatalf("ParseReceiptCode(%q) = %q, %v; want it unchanged", got, again, err)
		}
	})
}
