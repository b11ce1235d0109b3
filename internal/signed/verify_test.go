package signed_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

const prefix = "doorstep-record-v1\n" // api/SPEC.md section 1

// TestSignedRecordsVerifyEverywhere: records are still signed with
// crypto/ed25519, and every signature Sign makes verifies under
// crypto/ed25519's own rule as well as ours, alone and in a batch.
func TestSignedRecordsVerifyEverywhere(t *testing.T) {
	var keys []ed25519.PublicKey
	var srs []*doorstepv1.SignedRecord
	for d := range 5 {
		a := signedtest.NewAuthor("e1", fmt.Sprintf("dv-%d", d), fmt.Sprintf("seed %d", d), time.Unix(1e9, 0))
		for i := range 20 {
			sr := a.Ballot(t, fmt.Sprintf("1-1-%d", 100+i), "", signedtest.Yes("m"))
			if !ed25519.Verify(a.Public(), append([]byte(prefix), sr.Body...), sr.Signature) {
				t.Fatalf("author %d record %d: crypto/ed25519 rejects a signature Sign made", d, i)
			}
			if err := signed.Verify(a.Public(), sr); err != nil {
				t.Fatalf("author %d record %d: %v", d, i, err)
			}
			keys = append(keys, a.Public())
			srs = append(srs, sr)
		}
	}
	for i, ok := range signed.VerifyMany(keys, srs) {
		if !ok {
			t.Errorf("record %d: rejected by VerifyMany", i)
		}
	}
}

func TestVerifyManyAgreesWithVerify(t *testing.T) {
	a := signedtest.NewAuthor("e1", "dv-1", "seed", time.Unix(1e9, 0))
	b := signedtest.NewAuthor("e1", "dv-2", "other seed", time.Unix(1e9, 0))
	var keys []ed25519.PublicKey
	var srs []*doorstepv1.SignedRecord
	var want []bool
	add := func(pub ed25519.PublicKey, sr *doorstepv1.SignedRecord, ok bool) {
		keys, srs, want = append(keys, pub), append(srs, sr), append(want, ok)
	}
	for i := range 40 {
		sr := a.Ballot(t, fmt.Sprintf("1-1-%d", 100+i), "", signedtest.Yes("m"))
		switch i {
		case 3:
			add(b.Public(), sr, false) // someone else's key
		case 7:
			add(a.Public(), &doorstepv1.SignedRecord{Body: flip(sr.Body, 2), Signature: sr.Signature}, false)
		case 8:
			add(a.Public(), &doorstepv1.SignedRecord{Body: sr.Body, Signature: flip(sr.Signature, 50)}, false)
		case 9:
			add(a.Public(), &doorstepv1.SignedRecord{Body: sr.Body}, false)
		case 10:
			add(nil, sr, false)
		case 11:
			add(a.Public(), nil, false)
		default:
			add(a.Public(), sr, true)
		}
	}
	got := signed.VerifyMany(keys, srs)
	for i := range srs {
		if got[i] != want[i] {
			t.Errorf("record %d: VerifyMany = %v; want %v", i, got[i], want[i])
		}
		if single := signed.Verify(keys[i], srs[i]) == nil; single != got[i] {
			t.Errorf("record %d: Verify = %v, VerifyMany = %v", i, single, got[i])
		}
	}
	if got := signed.VerifyMany(nil, nil); len(got) != 0 {
		t.Errorf("VerifyMany of nothing = %v", got)
	}
}

// TestVerifyVectors runs the api/testdata ZIP-215 vectors whose message is
// a Doorstep record message through Verify and VerifyMany.
func TestVerifyVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "api", "testdata", "ed25519-zip215.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct {
			Name      string `json:"name"`
			PublicKey string `json:"public_key"`
			Message   string `json:"message"`
			Signature string `json:"signature"`
			Accept    bool   `json:"accept"`
		}
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var keys []ed25519.PublicKey
	var srs []*doorstepv1.SignedRecord
	var want []bool
	var accepted, rejected int
	for _, v := range f.Vectors {
		pub, err1 := hex.DecodeString(v.PublicKey)
		msg, err2 := hex.DecodeString(v.Message)
		sig, err3 := hex.DecodeString(v.Signature)
		if err1 != nil || err2 != nil || err3 != nil {
			t.Fatalf("%s: bad hex", v.Name)
		}
		body, ok := bytes.CutPrefix(msg, []byte(prefix))
		if !ok {
			continue
		}
		sr := &doorstepv1.SignedRecord{Body: body, Signature: sig}
		if got := signed.Verify(pub, sr) == nil; got != v.Accept {
			t.Errorf("%s: Verify = %v; want %v", v.Name, got, v.Accept)
		}
		keys, srs, want = append(keys, pub), append(srs, sr), append(want, v.Accept)
		if v.Accept {
			accepted++
		} else {
			rejected++
		}
	}
	if accepted < 3 || rejected < 3 {
		t.Fatalf("only %d accepted and %d rejected record vectors", accepted, rejected)
	}
	for i, ok := range signed.VerifyMany(keys, srs) {
		if ok != want[i] {
			t.Errorf("vector %d in VerifyMany = %v; want %v", i, ok, want[i])
		}
	}
}

// TestBatchReuse: a Batch emptied with Reset answers for its new records
// only, whatever the sizes of the bodies before.
func TestBatchReuse(t *testing.T) {
	a := signedtest.NewAuthor("e1", "dv-1", "seed", time.Unix(1e9, 0))
	var b signed.Batch
	for round, n := range []int{30, 5, 60} {
		var want []bool
		for i := range n {
			sr := a.Ballot(t, fmt.Sprintf("1-%d-%d", round, i), "", signedtest.Yes("m"))
			good := i%7 != 3
			if !good {
				sr = &doorstepv1.SignedRecord{Body: sr.Body, Signature: flip(sr.Signature, 1)}
			}
			b.Add(a.Public(), sr)
			want = append(want, good)
		}
		if b.Len() != n {
			t.Fatalf("round %d: Len = %d; want %d", round, b.Len(), n)
		}
		got := b.Verify()
		if len(got) != n {
			t.Fatalf("round %d: %d answers for %d records", round, len(got), n)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("round %d record %d: got %v; want %v", round, i, got[i], want[i])
			}
		}
		b.Reset()
	}
}
