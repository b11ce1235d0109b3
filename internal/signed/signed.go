package signed

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/zip215"
)

// FormatVersion is the record format this code writes and reads.
const FormatVersion = 1

// Limits on one signed record; see api/SPEC.md.
const (
	// MaxBodyBytes bounds a device record body. Committee roster chunks may
	// be larger, up to MaxCommitteeBodyBytes.
	MaxBodyBytes          = 16 << 10
	MaxCommitteeBodyBytes = 4 << 20
)

// MaxMessageBytes bounds one gRPC message, either way, on the server and
// on every client; see api/SPEC.md. A batch of records travels in one
// message, so it is well above the record limits.
const MaxMessageBytes = 8 << 20

// signaturePrefix separates Doorstep record signatures from any other use
// of the same key.
const signaturePrefix = "doorstep-record-v1\n"

// ErrUnsupportedVersion reports a record of a format this code does not
// read.
var ErrUnsupportedVersion = errors.New("unsupported record format version")

// ErrBadSignature reports a signature that does not match the body and key.
var ErrBadSignature = errors.New("the signature does not match the record and the signer's key")

// Sign serializes rec once and signs those bytes.
func Sign(key ed25519.PrivateKey, rec *doorstepv1.Record) (*doorstepv1.SignedRecord, error) {
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encode record: %w", err)
	}
	return SignBody(key, body), nil
}

// SignBody signs already-serialized record bytes.
func SignBody(key ed25519.PrivateKey, body []byte) *doorstepv1.SignedRecord {
	return &doorstepv1.SignedRecord{Body: body, Signature: ed25519.Sign(key, message(body))}
}

// Verify checks the signature over the exact body bytes, under the one
// rule every Doorstep verifier uses (ZIP-215, api/SPEC.md section 1).
func Verify(pub ed25519.PublicKey, sr *doorstepv1.SignedRecord) error {
	if !zip215.Verify(pub, message(sr.GetBody()), sr.GetSignature()) {
		return ErrBadSignature
	}
	return nil
}

// VerifyMany checks many records at once, srs[i] against keys[i], and
// reports for each whether Verify accepts it; see Batch. It panics if the
// slices differ in length.
func VerifyMany(keys []ed25519.PublicKey, srs []*doorstepv1.SignedRecord) []bool {
	if len(keys) != len(srs) {
		panic(fmt.Sprintf("signed.VerifyMany: %d keys for %d records", len(keys), len(srs)))
	}
	var b Batch
	for i, sr := range srs {
		b.Add(keys[i], sr)
	}
	return b.Verify()
}

// Batch checks records' signatures together: for good records that costs
// well under calling Verify on each, and the answers are Verify's
// (internal/zip215). The zero value is an empty batch; Reset empties it
// for reuse, which saves memory. It holds the records it is given until
// Reset, and is not safe for concurrent use.
type Batch struct {
	keys []ed25519.PublicKey
	srs  []*doorstepv1.SignedRecord
	msgs []byte
	zb   zip215.Batch
}

// Add adds a record and the key to check it with.
func (b *Batch) Add(pub ed25519.PublicKey, sr *doorstepv1.SignedRecord) {
	b.keys = append(b.keys, pub)
	b.srs = append(b.srs, sr)
}

// Verify reports, for each record added since the last Reset and in the
// order added, whether Verify accepts it.
func (b *Batch) Verify() []bool {
	size := 0
	for _, sr := range b.srs {
		size += len(signaturePrefix) + len(sr.GetBody())
	}
	// One buffer holds every signed message; it is sized first, so the
	// messages taken from it stay put.
	if cap(b.msgs) < size {
		b.msgs = make([]byte, 0, size)
	}
	buf := b.msgs[:0]
	b.zb.Reset()
	for i, sr := range b.srs {
		start := len(buf)
		buf = append(append(buf, signaturePrefix...), sr.GetBody()...)
		b.zb.Add(b.keys[i], buf[start:len(buf):len(buf)], sr.GetSignature())
	}
	return b.zb.Verify()
}

// Len is the number of records added since the last Reset.
func (b *Batch) Len() int { return len(b.srs) }

// Reset empties the batch, keeping its memory for the next one.
func (b *Batch) Reset() {
	clear(b.keys)
	clear(b.srs)
	b.keys, b.srs = b.keys[:0], b.srs[:0]
	b.zb.Reset()
}

func message(body []byte) []byte {
	m := make([]byte, 0, len(signaturePrefix)+len(body))
	m = append(m, signaturePrefix...)
	return append(m, body...)
}

// BodyHash is the SHA-256 of a record body: the link in an author's chain.
func BodyHash(body []byte) [32]byte { return sha256.Sum256(body) }

// Decode parses a body and checks the envelope fields every record needs:
// format version, a UUIDv7 record id, election, author and sequence. It
// does not check the signature nor the kind-specific content: callers
// decode first only to learn the author whose key must verify the exact
// bytes with [Verify], and trust nothing else in the body until it has.
func Decode(body []byte) (*doorstepv1.Record, error) {
	if len(body) == 0 {
		return nil, election.Errorf(election.CodeInvalid, "body", "is empty")
	}
	if len(body) > MaxCommitteeBodyBytes {
		return nil, election.Errorf(election.CodeTooLarge, "body", "is %d bytes; the limit is %d", len(body), MaxCommitteeBodyBytes)
	}
	rec := &doorstepv1.Record{}
	if err := proto.Unmarshal(body, rec); err != nil {
		return nil, election.Errorf(election.CodeInvalid, "body", "is not a doorstep.v1.Record: %v", err)
	}
	switch v := rec.GetFormatVersion(); {
	case v == 0:
		return nil, election.Errorf(election.CodeInvalid, "format_version", "is missing: the bytes are not a Doorstep record")
	case v != FormatVersion:
		return nil, fmt.Errorf("%w: %w", ErrUnsupportedVersion, election.Errorf(election.CodeInvalid, "format_version", "is %d; this software reads version %d: update it", v, FormatVersion))
	}
	if err := CheckRecordID("record_id", rec.GetRecordId()); err != nil {
		return nil, err
	}
	if err := election.CheckID("election_id", rec.GetElectionId()); err != nil {
		return nil, err
	}
	if err := election.CheckID("author_id", rec.GetAuthorId()); err != nil {
		return nil, err
	}
	if rec.GetAuthorSeq() == 0 {
		return nil, election.Errorf(election.CodeInvalid, "author_seq", "must start at 1")
	}
	if rec.GetAuthorSeq() == 1 && len(rec.GetPrevHash()) != 0 {
		return nil, election.Errorf(election.CodeInvalid, "prev_hash", "must be empty on an author's first record")
	}
	if rec.GetAuthorSeq() > 1 && len(rec.GetPrevHash()) != sha256.Size {
		return nil, election.Errorf(election.CodeInvalid, "prev_hash", "must be the %d-byte SHA-256 of the previous record", sha256.Size)
	}
	if rec.GetBody() == nil {
		return nil, election.Errorf(election.CodeInvalid, "body", "record has no ballot, visit or committee action")
	}
	if len(body) > MaxBodyBytes && rec.GetCommittee() == nil {
		return nil, election.Errorf(election.CodeTooLarge, "body", "is %d bytes; a device record may be at most %d", len(body), MaxBodyBytes)
	}
	return rec, nil
}

// CheckRecordID requires the canonical text form of a UUIDv7.
func CheckRecordID(field, s string) error {
	id, err := uuid.Parse(s)
	if err != nil || id.String() != s {
		return election.Errorf(election.CodeInvalid, field, "%q is not a UUID in canonical lower-case form", s)
	}
	if id.Version() != 7 {
		return election.Errorf(election.CodeInvalid, field, "%q is a version %d UUID; records use UUIDv7", s, id.Version())
	}
	return nil
}
