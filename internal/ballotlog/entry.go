package ballotlog

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// MaxEntryBytes bounds one encoded log entry, and so one frame of the
// election record's log (api/SPEC.md sections 10 and 11). The largest
// entry the server logs is a committee record: its body, at most
// signed.MaxCommitteeBodyBytes, and its 64-byte signature, with the
// decision (record id, status, reason, flags, a message of a few hundred
// bytes at most, receipt code, index), the time and the election id.
// EntryMargin covers all that but the body many times over. The total is
// well under signed.MaxMessageBytes less the few bytes a
// StreamLogEntriesResponse adds, so every entry can be streamed.
const MaxEntryBytes = signed.MaxCommitteeBodyBytes + EntryMargin

// EntryMargin is what MaxEntryBytes allows an entry besides its record's
// body.
const EntryMargin = 64 << 10

// ErrMalformedEntry is returned (wrapped) by [DecodeEntry] and [EncodeEntry]
// for bytes that are not a well-formed log entry.
var ErrMalformedEntry = errors.New("malformed ballot log entry")

// EncodeEntry serializes e once, for the log. The result is what is stored,
// hashed and served: the bytes are never re-encoded, because deterministic
// protobuf output is only stable within one build of one library, not across
// versions or languages.
//
// An entry must be about exactly one thing: a signed record or a device
// enrollment.
func EncodeEntry(e *doorstepv1.LogEntry) ([]byte, error) {
	if err := checkEntry(e); err != nil {
		return nil, err
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode ballot log entry: %w", err)
	}
	return b, nil
}

// DecodeEntry parses entry bytes as stored in the log. The caller keeps the
// bytes it was given for hashing; the returned message is for reading only.
// Errors wrap [ErrMalformedEntry].
func DecodeEntry(b []byte) (*doorstepv1.LogEntry, error) {
	e := new(doorstepv1.LogEntry)
	if err := proto.Unmarshal(b, e); err != nil {
		return nil, fmt.Errorf("%w: not a doorstep.v1.LogEntry (%d bytes): %w", ErrMalformedEntry, len(b), err)
	}
	if err := checkEntry(e); err != nil {
		return nil, err
	}
	return e, nil
}

// checkEntry enforces what makes an entry meaningful to a verifier: it says
// what it is about. The decision in it is judged by the tally, not here.
func checkEntry(e *doorstepv1.LogEntry) error {
	switch {
	case e == nil:
		return fmt.Errorf("%w: no entry", ErrMalformedEntry)
	case e.GetRecord() == nil && e.GetEnrollment() == nil:
		return fmt.Errorf("%w: the entry has neither a record nor an enrollment", ErrMalformedEntry)
	case e.GetRecord() != nil && e.GetEnrollment() != nil:
		return fmt.Errorf("%w: the entry has both a record and an enrollment; each needs its own entry", ErrMalformedEntry)
	}
	return nil
}

// LeafHash is the Merkle leaf hash of entry bytes:
// SHA-256(0x00 || entry), the RFC 6962 leaf hash.
func LeafHash(entry []byte) tlog.Hash {
	return tlog.RecordHash(entry)
}
