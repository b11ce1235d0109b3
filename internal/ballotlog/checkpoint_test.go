package ballotlog_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

func testSigner(t testing.TB, origin string, seedByte byte) *ballotlog.Signer {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seedByte}, ed25519.SeedSize))
	s, err := ballotlog.NewSigner(origin, key)
	if err != nil {
		t.Fatalf("NewSigner(%q): %v", origin, err)
	}
	return s
}

func TestSignOpenCheckpoint(t *testing.T) {
	s := testSigner(t, "vote.example.org/estate-2026", 1)
	if s.Origin() != "vote.example.org/estate-2026" {
		t.Errorf("Origin = %q", s.Origin())
	}
	var b ballotlog.Builder
	for _, e := range testEntries(6) {
		if _, err := b.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	for size := int64(0); size <= b.Size(); size++ {
		root, err := b.TreeHash(size)
		if err != nil {
			t.Fatal(err)
		}
		c, err := s.Sign(size, root)
		if err != nil {
			t.Fatalf("Sign(%d): %v", size, err)
		}
		if c.Origin != s.Origin() || c.Size != uint64(size) || !bytes.Equal(c.RootHash, root[:]) {
			t.Errorf("Sign(%d) fields = %q, %d, %x", size, c.Origin, c.Size, c.RootHash)
		}
		wantText := s.Origin() + "\n" + strings.TrimPrefix(string(tlog.FormatTree(tlog.Tree{N: size, Hash: root})), "go.sum database tree\n")
		if !strings.HasPrefix(c.SignedNote, wantText+"\n— "+s.Origin()+" ") {
			t.Errorf("signed note %q is not the C2SP checkpoint %q with one signature", c.SignedNote, wantText)
		}
		origin, gotSize, gotRoot, err := ballotlog.OpenCheckpoint(c.SignedNote, s.VerifierKey())
		if err != nil {
			t.Fatalf("OpenCheckpoint(size %d): %v", size, err)
		}
		if origin != s.Origin() || gotSize != size || gotRoot != root {
			t.Errorf("OpenCheckpoint = %q, %d, %v; want %q, %d, %v", origin, gotSize, gotRoot, s.Origin(), size, root)
		}
		tree, err := ballotlog.VerifyCheckpoint(c, s.VerifierKey())
		if err != nil || tree != (tlog.Tree{N: size, Hash: root}) {
			t.Errorf("VerifyCheckpoint = %v, %v", tree, err)
		}
	}
}

// checkpointCase is a signed note and key OpenCheckpoint must refuse, with
// the error it must wrap.
type checkpointCase struct {
	name string
	note string
	vkey string
	want error
}

// checkpointCases builds the refusal table; it also seeds the fuzzer.
func checkpointCases(t testing.TB) []checkpointCase {
	t.Helper()
	s := testSigner(t, "vote.example.org/estate-2026", 1)
	other := testSigner(t, "vote.example.org/estate-2026", 2) // same name, other key
	otherLog := testSigner(t, "vote.example.org/other-estate", 1)
	root := tlog.RecordHash([]byte("x"))
	c, err := s.Sign(5, root)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := other.Sign(5, root)
	if err != nil {
		t.Fatal(err)
	}
	byOtherLog, err := otherLog.Sign(5, root)
	if err != nil {
		t.Fatal(err)
	}
	// A note signed with this log's key name and key, whose origin line
	// names another log: a misconfigured or malicious signer.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	skey := mustSignerKey(t, "vote.example.org/estate-2026", key)
	ns, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	swapped, err := note.Sign(&note.Note{Text: "vote.example.org/other-estate\n5\n" + root.String() + "\n"}, ns)
	if err != nil {
		t.Fatal(err)
	}
	garbled, err := note.Sign(&note.Note{Text: "vote.example.org/estate-2026\nfive\n" + root.String() + "\n"}, ns)
	if err != nil {
		t.Fatal(err)
	}
	twoLines, err := note.Sign(&note.Note{Text: "vote.example.org/estate-2026\n5\n"}, ns)
	if err != nil {
		t.Fatal(err)
	}

	return []checkpointCase{
		{"signed by another key", byOther.SignedNote, s.VerifierKey(), ballotlog.ErrUnknownKey},
		{"signed for another log", byOtherLog.SignedNote, s.VerifierKey(), ballotlog.ErrUnknownKey},
		{"size changed", strings.Replace(c.SignedNote, "\n5\n", "\n6\n", 1), s.VerifierKey(), ballotlog.ErrBadSignature},
		{"root changed", strings.Replace(c.SignedNote, root.String(), tlog.RecordHash([]byte("y")).String(), 1), s.VerifierKey(), ballotlog.ErrBadSignature},
		{"extension line added", strings.Replace(c.SignedNote, "\n\n", "\nextra\n\n", 1), s.VerifierKey(), ballotlog.ErrBadSignature},
		{"origin line says another log", string(swapped), s.VerifierKey(), ballotlog.ErrWrongOrigin},
		{"size not a number", string(garbled), s.VerifierKey(), ballotlog.ErrMalformedCheckpoint},
		{"root missing", string(twoLines), s.VerifierKey(), ballotlog.ErrMalformedCheckpoint},
		{"signature removed", strings.SplitAfter(c.SignedNote, "\n\n")[0], s.VerifierKey(), ballotlog.ErrMalformedCheckpoint},
		{"empty note", "", s.VerifierKey(), ballotlog.ErrMalformedCheckpoint},
		{"bad verifier key", c.SignedNote, "vote.example.org+00000000+AAAA", ballotlog.ErrMalformedCheckpoint},
		{"empty verifier key", c.SignedNote, "", ballotlog.ErrMalformedCheckpoint},
	}
}

func mustSignerKey(t testing.TB, name string, key ed25519.PrivateKey) string {
	t.Helper()
	// note's private key text form, built from the verifier key's hash.
	vkey, err := note.NewEd25519VerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	priv := append([]byte{1}, key.Seed()...)
	return "PRIVATE+KEY+" + name + fmt.Sprintf("+%08x+", v.KeyHash()) + base64.StdEncoding.EncodeToString(priv)
}

func TestOpenCheckpointRefuses(t *testing.T) {
	for _, tt := range checkpointCases(t) {
		t.Run(tt.name, func(t *testing.T) {
			origin, size, root, err := ballotlog.OpenCheckpoint(tt.note, tt.vkey)
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenCheckpoint = %q, %d, %v, %v; want error %v", origin, size, root, err, tt.want)
			}
		})
	}
}

func TestSignerMatchesNoteSigner(t *testing.T) {
	// The in-memory signer must sign exactly as note's own signer made from
	// the same key in note's text encoding.
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	s, err := ballotlog.NewSigner("vote.example.org/x", key)
	if err != nil {
		t.Fatal(err)
	}
	root := tlog.RecordHash([]byte("r"))
	c, err := s.Sign(42, root)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := note.NewSigner(mustSignerKey(t, "vote.example.org/x", key))
	if err != nil {
		t.Fatal(err)
	}
	want, err := note.Sign(&note.Note{Text: "vote.example.org/x\n42\n" + root.String() + "\n"}, ns)
	if err != nil {
		t.Fatal(err)
	}
	if c.SignedNote != string(want) {
		t.Errorf("signed note\n got %q\nwant %q", c.SignedNote, want)
	}
}

func TestVerifyCheckpointFields(t *testing.T) {
	s := testSigner(t, "vote.example.org/estate-2026", 1)
	root := tlog.RecordHash([]byte("x"))
	tests := []struct {
		name   string
		change func(size *uint64, origin *string, root *[]byte)
	}{
		{"size", func(size *uint64, _ *string, _ *[]byte) { *size++ }},
		{"origin", func(_ *uint64, origin *string, _ *[]byte) { *origin = "vote.example.org/other" }},
		{"root", func(_ *uint64, _ *string, root *[]byte) { (*root)[0] ^= 1 }},
		{"root missing", func(_ *uint64, _ *string, root *[]byte) { *root = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := s.Sign(7, root)
			if err != nil {
				t.Fatal(err)
			}
			tt.change(&c.Size, &c.Origin, &c.RootHash)
			if _, err := ballotlog.VerifyCheckpoint(c, s.VerifierKey()); !errors.Is(err, ballotlog.ErrMalformedCheckpoint) {
				t.Errorf("VerifyCheckpoint = %v; want ErrMalformedCheckpoint", err)
			}
		})
	}
	if _, err := ballotlog.VerifyCheckpoint(nil, s.VerifierKey()); !errors.Is(err, ballotlog.ErrMalformedCheckpoint) {
		t.Errorf("VerifyCheckpoint(nil) = %v; want ErrMalformedCheckpoint", err)
	}
}

func TestNewSignerErrors(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	tests := []struct {
		name   string
		origin string
		key    ed25519.PrivateKey
	}{
		{"empty origin", "", key},
		{"space in origin", "vote example", key},
		{"newline in origin", "vote\nexample", key},
		{"plus in origin", "vote+example", key},
		{"invalid utf8", "vote\xff", key},
		{"short key", "vote.example", key[:32]},
		{"no key", "vote.example", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if s, err := ballotlog.NewSigner(tt.origin, tt.key); err == nil {
				t.Errorf("NewSigner = %v; want an error", s)
			}
		})
	}
	s := testSigner(t, "vote.example", 1)
	if c, err := s.Sign(-1, tlog.Hash{}); err == nil {
		t.Errorf("Sign(-1) = %v; want an error", c)
	}
}

func FuzzOpenCheckpoint(f *testing.F) {
	s := testSigner(f, "vote.example.org/estate-2026", 1)
	for _, size := range []int64{0, 1, 5, 1 << 40} {
		c, err := s.Sign(size, tlog.RecordHash([]byte{byte(size)}))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(c.SignedNote, s.VerifierKey())
	}
	for _, c := range checkpointCases(f) {
		f.Add(c.note, c.vkey)
	}
	f.Fuzz(func(t *testing.T, signed, vkey string) {
		origin, size, root, err := ballotlog.OpenCheckpoint(signed, vkey)
		if err != nil {
			for _, known := range []error{ballotlog.ErrMalformedCheckpoint, ballotlog.ErrUnknownKey,
				ballotlog.ErrBadSignature, ballotlog.ErrWrongOrigin} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("OpenCheckpoint error %v wraps none of the package's errors", err)
		}
		// Whatever opens must name the key's log and begin with the exact
		// checkpoint lines for what it returned.
		name, _, _ := strings.Cut(vkey, "+")
		if origin != name {
			t.Fatalf("opened checkpoint of log %q with a key for %q", origin, name)
		}
		want := origin + "\n" + strings.TrimPrefix(string(tlog.FormatTree(tlog.Tree{N: size, Hash: root})), "go.sum database tree\n")
		if !strings.HasPrefix(signed, want) {
			t.Fatalf("opened %q as %q", signed, want)
		}
	})
}
