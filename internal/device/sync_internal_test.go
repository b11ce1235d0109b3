package device

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

// FuzzCheckpointVerify feeds the device's checkpoint check whatever a
// server might send: it must never panic, and it must accept only a
// checkpoint the pinned key signed for the pinned log, whose fields say
// what its signed text says.
func FuzzCheckpointVerify(f *testing.F) {
	seed := sha256.Sum256([]byte("fuzz server key"))
	key := ed25519.NewKeyFromSeed(seed[:])
	const origin = "doorstep.local/estate-2026"
	sg, err := ballotlog.NewSigner(origin, key)
	if err != nil {
		f.Fatal(err)
	}
	good, err := sg.Sign(8, tlog.Hash{1, 2, 3})
	if err != nil {
		f.Fatal(err)
	}
	enr := Enrollment{ServerKey: key.Public().(ed25519.PublicKey), LogOrigin: origin}
	f.Add(good.GetOrigin(), good.GetSize(), good.GetRootHash(), good.GetSignedNote(), origin)
	f.Add(good.GetOrigin(), good.GetSize()+1, good.GetRootHash(), good.GetSignedNote(), origin)
	f.Add(good.GetOrigin(), good.GetSize(), good.GetRootHash(), good.GetSignedNote(), "")
	f.Add(origin+"x", good.GetSize(), good.GetRootHash(), good.GetSignedNote(), origin+"x")
	f.Add("", uint64(0), []byte(nil), "", "")
	f.Add("a b", uint64(1), bytes.Repeat([]byte{9}, 32), "a b\n1\nAAAA\n\n— a b AAAA\n", "a+b")
	f.Fuzz(func(t *testing.T, cpOrigin string, size uint64, root []byte, signedNote, pinned string) {
		cp := &doorstepv1.Checkpoint{Origin: cpOrigin, Size: size, RootHash: root, SignedNote: signedNote}
		e := enr
		e.LogOrigin = pinned
		vkey, err := logVerifierKey(e, cp)
		if err != nil {
			return
		}
		tree, err := ballotlog.VerifyCheckpoint(cp, vkey)
		if err != nil {
			return
		}
		if pinned != "" && cp.GetOrigin() != pinned {
			t.Fatalf("accepted a checkpoint of log %q for pinned log %q", cp.GetOrigin(), pinned)
		}
		if uint64(tree.N) != cp.GetSize() || !bytes.Equal(tree.Hash[:], cp.GetRootHash()) {
			t.Fatalf("accepted fields (%d, %x) that differ from the signed tree %v", cp.GetSize(), cp.GetRootHash(), tree)
		}
		// Only the pinned key signs: what verifies must be what the
		// signer would produce for that tree.
		again, err := ballotlog.NewSigner(cp.GetOrigin(), key)
		if err != nil {
			t.Fatalf("accepted a checkpoint for origin %q no signer can have: %v", cp.GetOrigin(), err)
		}
		want, err := again.Sign(tree.N, tree.Hash)
		if err != nil {
			t.Fatal(err)
		}
		if want.GetSignedNote() != cp.GetSignedNote() {
			t.Fatalf("accepted a signed note the pinned key did not produce:\n%q\nwant\n%q", cp.GetSignedNote(), want.GetSignedNote())
		}
	})
}
