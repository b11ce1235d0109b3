package zip215

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

var update = flag.Bool("update", false, "rewrite api/testdata/ed25519-zip215.json")

var vectorPath = filepath.Join("..", "..", "api", "testdata", "ed25519-zip215.json")

// TestVectorFile keeps the committed vectors what gen_test.go makes.
func TestVectorFile(t *testing.T) {
	got, err := json.MarshalIndent(genVectors(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(vectorPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what gen_test.go makes: run go test ./internal/zip215 -run TestVectorFile -update and review the diff", vectorPath)
	}
}

type decodedVector struct {
	vector
	pub, msg, sig []byte
}

func loadVectors(t *testing.T) []decodedVector {
	t.Helper()
	raw, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatal(err)
	}
	var f vectorFile
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	if len(f.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	var out []decodedVector
	for _, v := range f.Vectors {
		d := decodedVector{vector: v}
		for _, p := range []struct {
			dst *[]byte
			src string
		}{{&d.pub, v.PublicKey}, {&d.msg, v.Message}, {&d.sig, v.Signature}} {
			if *p.dst, err = hex.DecodeString(p.src); err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
		}
		out = append(out, d)
	}
	return out
}

// TestVectors checks every vector alone, in a batch of its own, among
// good signatures, and all of them in one mixed batch; and that Go's
// crypto/ed25519 answers as the file says.
func TestVectors(t *testing.T) {
	vs := loadVectors(t)
	good := goodItems(63)
	var all []Item
	for _, v := range vs {
		it := Item{v.pub, v.msg, v.sig}
		all = append(all, it)
		t.Run(v.Name, func(t *testing.T) {
			if got := Verify(v.pub, v.msg, v.sig); got != v.Accept {
				t.Errorf("Verify = %v; want %v", got, v.Accept)
			}
			if got := VerifyBatch([]Item{it}); got[0] != v.Accept {
				t.Errorf("batch of one = %v; want %v", got[0], v.Accept)
			}
			mixed := append(append([]Item{}, good[:31]...), it)
			mixed = append(mixed, good[31:]...)
			got := VerifyBatch(mixed)
			for i, ok := range got {
				want := true
				if i == 31 {
					want = v.Accept
				}
				if ok != want {
					t.Errorf("among good signatures, item %d = %v; want %v", i, ok, want)
				}
			}
			std := len(v.pub) == ed25519.PublicKeySize && ed25519.Verify(v.pub, v.msg, v.sig)
			if std != v.CryptoEd25519 {
				t.Errorf("crypto/ed25519 = %v; the file says %v", std, v.CryptoEd25519)
			}
		})
	}
	got := VerifyBatch(all)
	for i, v := range vs {
		if got[i] != v.Accept {
			t.Errorf("%s in the batch of all vectors = %v; want %v", v.Name, got[i], v.Accept)
		}
	}
}

// TestBatchEquationAcceptsEdgeCases checks that the batch equation itself,
// not the fallback, passes every accepted vector: otherwise such records
// would be correct but slow.
func TestBatchEquationAcceptsEdgeCases(t *testing.T) {
	bv := voi.NewBatchVerifier()
	n := 0
	for _, v := range loadVectors(t) {
		if v.Accept {
			bv.AddWithOptions(voi.PublicKey(v.pub), v.msg, v.sig, options)
			n++
		}
	}
	if n < 10 {
		t.Fatalf("only %d accepted vectors", n)
	}
	if !bv.VerifyBatchOnly(nil) {
		t.Error("the batch equation rejects the accepted vectors")
	}
}

func TestVectorsCoverTheEdgeCases(t *testing.T) {
	names := map[string]bool{}
	for _, v := range loadVectors(t) {
		names[v.Name] = true
	}
	for _, want := range []string{
		"valid", "flipped-message", "flipped-s", "s-plus-l",
		"mixed-order-key-cofactored-only", "small-order-r",
		"zip215-small-order-key-identity-r", "zip215-noncanonical-key-y-p-plus-1",
		"zip215-noncanonical-r-y-p", "speccheck-4", "speccheck-6", "speccheck-9", "speccheck-10",
	} {
		if !names[want] {
			t.Errorf("no vector %q", want)
		}
	}
}
