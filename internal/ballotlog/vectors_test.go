package ballotlog_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

// The test vectors of api/SPEC.md (section 12.1). Changing any of them breaks every
// independent verifier: they change only with the format version.

// vectorSignature is the stand-in signature of the vector records: the
// bytes 0x00, 0x01, …, 0x3f.
func vectorSignature() []byte {
	sig := make([]byte, ed25519.SignatureSize)
	for i := range sig {
		sig[i] = byte(i)
	}
	return sig
}

// vectorEntry is vector entry i (1, 2 or 3). The record body is opaque to
// the log, so the vectors use short text for it.
func vectorEntry(i int) *doorstepv1.LogEntry {
	return &doorstepv1.LogEntry{
		Record: &doorstepv1.SignedRecord{
			Body:      fmt.Appendf(nil, "doorstep test vector body %d", i),
			Signature: vectorSignature(),
		},
		Result: &doorstepv1.RecordResult{
			RecordId: fmt.Sprintf("0190f5a0-0000-7000-8000-00000000000%d", i),
			Status:   doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED,
			LogIndex: uint64(i - 1),
		},
		Received:   &timestamppb.Timestamp{Seconds: 1767225600 + int64(i)},
		ElectionId: "test-estate-2026",
	}
}

// vectorKey is the vector server key: the ed25519 key with seed 0x00…0x1f.
func vectorKey() ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = byte(i)
	}
	return ed25519.NewKeyFromSeed(seed)
}

const vectorOrigin = "doorstep.example/test-vector"

// The vector values, as api/SPEC.md states them.
const (
	vectorEntry1Hex = "0a5f0a1b646f6f7273746570207465737420766563746f7220626f647920311240000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f12280a2430313930663561302d303030302d373030302d383030302d30303030303030303030303110011a060881f2d6ca062a10746573742d6573746174652d32303236"
	vectorEntry2Hex = "0a5f0a1b646f6f7273746570207465737420766563746f7220626f647920321240000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f122a0a2430313930663561302d303030302d373030302d383030302d303030303030303030303032100140011a060882f2d6ca062a10746573742d6573746174652d32303236"
	vectorEntry3Hex = "0a5f0a1b646f6f7273746570207465737420766563746f7220626f647920331240000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f122a0a2430313930663561302d303030302d373030302d383030302d303030303030303030303033100140021a060883f2d6ca062a10746573742d6573746174652d32303236"

	vectorLeaf1Hex = "5c1cf550f9310ed6b659f97a5ee23053cb06c32c9a39b1a824f41ca7b56493c7"
	vectorLeaf2Hex = "66b73a8d565ba83e9564885caacc8fda1d6effaaab59edbb49e46aaa0bbc88d0"
	vectorLeaf3Hex = "ab7e1d4a0670b04ffb651623e53b537f9ee0d63e005adf2bad1578ff23bc4656"

	vectorRoot2Hex = "38cde22c184fa8505811f72259da0caf60385fb6b991a1572031d10b56085342"
	vectorRoot3Hex = "d00bb813e9bb38649e723dfe8cc3479d8bb90b3300c9369397da44d138dc3ab4"

	vectorReceipt1 = "KS4ND-H7PJG"

	vectorVerifierKey = "doorstep.example/test-vector+25bbfeb9+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4"
	vectorFingerprint = "SHA256:Vkdap1RjR0wChd9dvyvKtz2mUTWIOem3dIGy6rEHcIw"
	vectorCheckpoint3 = "doorstep.example/test-vector\n" +
		"3\n" +
		"0Au4E+m7OGSecj3+jMNHnYu5CzMAyTaTl9pE0TjcOrQ=\n" +
		"\n" +
		"\u2014 doorstep.example/test-vector Jbv+uYg8cYdhfiCSu9++8CADAPvR8HLStfJdPaObjTVwQlj2k3fTA6A7xVc3/JY7ylh5rlQ2RhMQU4kwcGZJj0yKJwY=\n"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test vector: %v", err)
	}
	return b
}

func TestSpecVectors(t *testing.T) {
	entries := []struct{ entry, leaf string }{
		{vectorEntry1Hex, vectorLeaf1Hex},
		{vectorEntry2Hex, vectorLeaf2Hex},
		{vectorEntry3Hex, vectorLeaf3Hex},
	}
	var b ballotlog.Builder
	for i, v := range entries {
		t.Run(fmt.Sprintf("entry%d", i+1), func(t *testing.T) {
			got, err := ballotlog.EncodeEntry(vectorEntry(i + 1))
			if err != nil {
				t.Fatalf("EncodeEntry: %v", err)
			}
			if want := mustHex(t, v.entry); !bytes.Equal(got, want) {
				t.Fatalf("entry bytes\n got %x\nwant %x", got, want)
			}
			if leaf := ballotlog.LeafHash(got); hex.EncodeToString(leaf[:]) != v.leaf {
				t.Errorf("leaf hash %x; want %s", leaf[:], v.leaf)
			}
			if _, err := b.Append(got); err != nil {
				t.Fatalf("Append: %v", err)
			}
		})
	}
	roots := []struct {
		size int64
		want string
	}{
		{1, vectorLeaf1Hex}, // a one-entry tree's root is its leaf hash
		{2, vectorRoot2Hex},
		{3, vectorRoot3Hex},
	}
	for _, r := range roots {
		got, err := b.TreeHash(r.size)
		if err != nil {
			t.Fatalf("TreeHash(%d): %v", r.size, err)
		}
		if hex.EncodeToString(got[:]) != r.want {
			t.Errorf("root at size %d = %x; want %s", r.size, got[:], r.want)
		}
	}

	t.Run("receipt", func(t *testing.T) {
		e := vectorEntry(1)
		if got := ballotlog.ReceiptCode(e.Record.Body, e.Record.Signature); got != vectorReceipt1 {
			t.Errorf("ReceiptCode = %s; want %s", got, vectorReceipt1)
		}
	})

	t.Run("checkpoint", func(t *testing.T) {
		s, err := ballotlog.NewSigner(vectorOrigin, vectorKey())
		if err != nil {
			t.Fatalf("NewSigner: %v", err)
		}
		if got := s.VerifierKey(); got != vectorVerifierKey {
			t.Errorf("VerifierKey = %s; want %s", got, vectorVerifierKey)
		}
		if got := ballotlog.Fingerprint(vectorKey().Public().(ed25519.PublicKey)); got != vectorFingerprint {
			t.Errorf("Fingerprint = %s; want %s", got, vectorFingerprint)
		}
		root, err := b.TreeHash(3)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Sign(3, root)
		if err != nil {
			t.Fatalf("Sign: %v", err)
		}
		if c.SignedNote != vectorCheckpoint3 {
			t.Errorf("signed checkpoint\n got %q\nwant %q", c.SignedNote, vectorCheckpoint3)
		}
		origin, size, gotRoot, err := ballotlog.OpenCheckpoint(vectorCheckpoint3, vectorVerifierKey)
		if err != nil {
			t.Fatalf("OpenCheckpoint: %v", err)
		}
		if origin != vectorOrigin || size != 3 || hex.EncodeToString(gotRoot[:]) != vectorRoot3Hex {
			t.Errorf("OpenCheckpoint = %q, %d, %x; want %q, 3, %s", origin, size, gotRoot[:], vectorOrigin, vectorRoot3Hex)
		}
	})
}

// TestSpecTextHasVectors keeps the vectors printed in the specification
// equal to the ones asserted above.
func TestSpecTextHasVectors(t *testing.T) {
	const specFile = "../../api/SPEC.md"
	spec, err := os.ReadFile(specFile)
	if err != nil {
		t.Fatal(err)
	}
	// Long hex strings are wrapped in the text; compare without newlines.
	flat := strings.ReplaceAll(string(spec), "\n", "")
	for _, v := range []string{
		vectorEntry1Hex, vectorEntry2Hex, vectorEntry3Hex,
		vectorLeaf1Hex, vectorLeaf2Hex, vectorLeaf3Hex,
		vectorRoot2Hex, vectorRoot3Hex,
		vectorReceipt1, vectorVerifierKey, vectorFingerprint,
	} {
		if !strings.Contains(flat, v) {
			t.Errorf("%s does not state vector %s", specFile, v)
		}
	}
	if !strings.Contains(string(spec), vectorCheckpoint3) {
		t.Errorf("%s does not state the signed checkpoint %q", specFile, vectorCheckpoint3)
	}
}
