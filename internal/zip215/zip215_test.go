package zip215

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// goodItems makes n signatures by crypto/ed25519 from 4 keys, as a batch
// of records from a few devices would be.
func goodItems(n int) []Item {
	keys := make([]ed25519.PrivateKey, 4)
	for i := range keys {
		seed := sha256.Sum256(fmt.Appendf(nil, "zip215 test key %d", i))
		keys[i] = ed25519.NewKeyFromSeed(seed[:])
	}
	items := make([]Item, n)
	for i := range items {
		k := keys[i%len(keys)]
		msg := fmt.Appendf(nil, "doorstep-record-v1\nbody %d", i)
		items[i] = Item{Key: k.Public().(ed25519.PublicKey), Message: msg, Signature: ed25519.Sign(k, msg)}
	}
	return items
}

func TestCryptoEd25519SignaturesVerify(t *testing.T) {
	items := goodItems(200)
	for i, it := range items {
		if !Verify(it.Key, it.Message, it.Signature) {
			t.Fatalf("item %d: a crypto/ed25519 signature does not verify", i)
		}
	}
	for i, ok := range VerifyBatch(items) {
		if !ok {
			t.Fatalf("item %d: rejected in a batch", i)
		}
	}
}

func TestBatchFindsTheBadOnes(t *testing.T) {
	corrupt := func(it Item, how string) Item {
		switch how {
		case "message":
			it.Message = append([]byte(nil), it.Message...)
			it.Message[0] ^= 1
		case "signature":
			it.Signature = append([]byte(nil), it.Signature...)
			it.Signature[40] ^= 1
		case "key":
			it.Key = append(ed25519.PublicKey(nil), it.Key...)
			it.Key[0] ^= 1
		case "short signature":
			it.Signature = it.Signature[:63]
		case "long signature":
			it.Signature = append(append([]byte(nil), it.Signature...), 0)
		case "short key":
			it.Key = it.Key[:31]
		case "nil":
			it = Item{}
		}
		return it
	}
	tests := []struct {
		name string
		n    int
		bad  map[int]string
	}{
		{"empty", 0, nil},
		{"one good", 1, nil},
		{"one bad", 1, map[int]string{0: "signature"}},
		{"all good", 64, nil},
		{"first bad", 64, map[int]string{0: "message"}},
		{"last bad", 64, map[int]string{63: "key"}},
		{"several bad", 256, map[int]string{3: "signature", 100: "message", 101: "key", 255: "signature"}},
		{"wrong sizes only", 64, map[int]string{5: "short signature", 6: "long signature", 7: "short key", 8: "nil"}},
		{"all bad", 8, map[int]string{0: "key", 1: "key", 2: "message", 3: "signature", 4: "nil", 5: "key", 6: "message", 7: "signature"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := goodItems(tt.n)
			for i, how := range tt.bad {
				items[i] = corrupt(items[i], how)
			}
			got := VerifyBatch(items)
			if len(got) != tt.n {
				t.Fatalf("got %d answers for %d items", len(got), tt.n)
			}
			for i, ok := range got {
				_, bad := tt.bad[i]
				if ok == bad {
					t.Errorf("item %d: got %v; want %v", i, ok, !bad)
				}
				if single := Verify(items[i].Key, items[i].Message, items[i].Signature); single != ok {
					t.Errorf("item %d: batch says %v, single %v", i, ok, single)
				}
			}
		})
	}
}

func TestBatchReuse(t *testing.T) {
	items := goodItems(10)
	var b Batch
	for round := range 3 {
		for i, it := range items {
			if round == 1 && i == 4 {
				it.Signature = make([]byte, SignatureSize)
			}
			b.Add(it.Key, it.Message, it.Signature)
		}
		if b.Len() != len(items) {
			t.Fatalf("round %d: Len = %d; want %d", round, b.Len(), len(items))
		}
		for i, ok := range b.Verify() {
			if want := round != 1 || i != 4; ok != want {
				t.Errorf("round %d item %d: got %v; want %v", round, i, ok, want)
			}
		}
		b.Reset()
		if b.Len() != 0 {
			t.Fatalf("Len after Reset = %d", b.Len())
		}
	}
}

// FuzzVerify checks that any key, message and signature gets the same
// answer alone, in a batch of its own and among good signatures.
func FuzzVerify(f *testing.F) {
	for _, it := range goodItems(2) {
		f.Add([]byte(it.Key), it.Message, it.Signature)
	}
	f.Add(make([]byte, 32), []byte("Zcash"), make([]byte, 64))
	f.Add([]byte{1}, []byte{}, []byte{2})
	good := goodItems(3)
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		want := Verify(pub, msg, sig)
		if got := VerifyBatch([]Item{{pub, msg, sig}}); got[0] != want {
			t.Fatalf("batch of one = %v; Verify = %v", got[0], want)
		}
		got := VerifyBatch([]Item{good[0], {pub, msg, sig}, good[1], good[2]})
		if got[1] != want || !got[0] || !got[2] || !got[3] {
			t.Fatalf("in a batch: %v; Verify = %v", got, want)
		}
	})
}

// BenchmarkVerify compares one signature's cost under crypto/ed25519,
// this package's single check, and batches. The last line printed is the
// median µs per signature of each over the runs (-count).
func BenchmarkVerify(b *testing.B) {
	items := goodItems(256)
	var names []string
	results := map[string][]float64{} // µs per signature, each run (-count)
	report := func(b *testing.B, perOp int) {
		us := float64(b.Elapsed().Nanoseconds()) / 1e3 / float64(b.N*perOp)
		b.ReportMetric(us, "µs/sig")
		if _, ok := results[b.Name()]; !ok {
			names = append(names, b.Name())
		}
		results[b.Name()] = append(results[b.Name()], us)
	}
	b.Run("crypto-ed25519", func(b *testing.B) {
		i := 0
		for b.Loop() {
			it := items[i%len(items)]
			if !ed25519.Verify(it.Key, it.Message, it.Signature) {
				b.Fatal("rejected")
			}
			i++
		}
		report(b, 1)
	})
	b.Run("zip215-single", func(b *testing.B) {
		i := 0
		for b.Loop() {
			it := items[i%len(items)]
			if !Verify(it.Key, it.Message, it.Signature) {
				b.Fatal("rejected")
			}
			i++
		}
		report(b, 1)
	})
	for _, n := range []int{16, 64, 256} {
		b.Run(fmt.Sprintf("zip215-batch-%d", n), func(b *testing.B) {
			var batch Batch
			for b.Loop() {
				batch.Reset()
				for _, it := range items[:n] {
					batch.Add(it.Key, it.Message, it.Signature)
				}
				for _, ok := range batch.Verify() {
					if !ok {
						b.Fatal("rejected")
					}
				}
			}
			report(b, n)
		})
	}
	line := "µs/signature (median):"
	for _, n := range names {
		rs := slices.Sorted(slices.Values(results[n]))
		line += fmt.Sprintf(" %s %.1f", strings.TrimPrefix(n, b.Name()+"/"), rs[len(rs)/2])
	}
	fmt.Println(line)
}
