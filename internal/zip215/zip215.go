// Package zip215 is Doorstep's one rule for checking Ed25519 signatures:
// ZIP-215 (https://zips.z.cash/zip-0215), for one signature at a time and
// for batches. Batch verification is cofactored, so the single check is
// cofactored too, and both accept exactly the same signatures: a record
// the server accepts is a record every verifier accepts. api/SPEC.md
// section 1 states the rule; api/testdata/ed25519-zip215.json holds its
// edge cases.
//
// Signing is unchanged: every signature crypto/ed25519 makes verifies
// under this rule.
package zip215

import (
	"crypto/ed25519"

	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// Sizes of what Verify accepts; anything else is rejected.
const (
	PublicKeySize = ed25519.PublicKeySize
	SignatureSize = ed25519.SignatureSize
)

var options = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// Verify reports whether sig is a ZIP-215 signature of msg by pub: A and R
// decode as points (non-canonical encodings and small order allowed), S is
// below the group order L, and [8][S]B = [8]R + [8][k]A with
// k = SHA-512(R || A || msg) mod L over the bytes as given. A key that is
// not 32 bytes or a signature that is not 64 is rejected.
func Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != PublicKeySize || len(sig) != SignatureSize {
		return false
	}
	return voi.VerifyWithOptions(voi.PublicKey(pub), msg, sig, options)
}

// Item is one signature in a batch.
type Item struct {
	Key       ed25519.PublicKey
	Message   []byte
	Signature []byte
}

// VerifyBatch reports, for each item, whether Verify accepts it; see
// Batch.Verify.
func VerifyBatch(items []Item) []bool {
	b := Batch{items: items}
	return b.Verify()
}

// Batch gathers signatures to check together. The zero value is an empty
// batch. A Batch holds the slices it is given until Reset, and is not
// safe for concurrent use. Reusing one (Reset) saves memory and the
// decoding of keys it has already seen.
type Batch struct {
	v     *voi.BatchVerifier // reused across Reset
	items []Item
	keys  map[string]*voi.ExpandedPublicKey // decoded keys, nil if not a point; kept across Reset
}

// maxKeys bounds the decoded keys a Batch keeps (each about 1.5 KiB).
const maxKeys = 4096

// Add adds one signature to the batch.
func (b *Batch) Add(pub ed25519.PublicKey, msg, sig []byte) {
	b.items = append(b.items, Item{Key: pub, Message: msg, Signature: sig})
}

// Len is the number of signatures added since the last Reset.
func (b *Batch) Len() int { return len(b.items) }

// Verify reports, for each signature added since the last Reset and in
// the order added, whether Verify accepts it. It checks the batch's
// signatures together, which for good signatures costs well under a single
// check each, and only when that check fails checks each one alone to
// find the bad ones. The batch check passes only if every signature in it
// is good (but for a chance of about 2^-128 over the random coefficients
// it draws), so the answers are always Verify's.
func (b *Batch) Verify() []bool {
	ok := make([]bool, len(b.items))
	if b.v == nil {
		b.v = voi.NewBatchVerifierWithCapacity(len(b.items))
	}
	b.v.Reset()
	// A batch holds few distinct keys (one per device), so each is
	// decoded once, not once per signature.
	if b.keys == nil || len(b.keys) > maxKeys {
		b.keys = make(map[string]*voi.ExpandedPublicKey)
	}
	n := 0
	for i, it := range b.items {
		// A wrong size is rejected here and kept out of the batch, so it
		// does not send the good signatures to the slow path.
		if len(it.Key) != PublicKeySize || len(it.Signature) != SignatureSize {
			continue
		}
		k, seen := b.keys[string(it.Key)]
		if !seen {
			k, _ = voi.NewExpandedPublicKey(voi.PublicKey(it.Key))
			b.keys[string(it.Key)] = k
		}
		if k == nil {
			// Not a point: Verify rejects it, but let it say so.
			ok[i] = Verify(it.Key, it.Message, it.Signature)
			continue
		}
		b.v.AddExpandedWithOptions(k, it.Message, it.Signature, options)
		ok[i] = true
		n++
	}
	if n == 0 || b.v.VerifyBatchOnly(nil) {
		return ok
	}
	for i, it := range b.items {
		if ok[i] {
			ok[i] = Verify(it.Key, it.Message, it.Signature)
		}
	}
	return ok
}

// Reset empties the batch, keeping its memory and decoded keys for the
// next one.
func (b *Batch) Reset() {
	clear(b.items)
	b.items = b.items[:0]
	if b.v != nil {
		b.v.Reset()
	}
}
