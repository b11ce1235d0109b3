package store

import (
	"context"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// Read-only queries on the ballot log for the audit service and the
// election record export. None of them writes.

// logChunk bounds how much of the log one read transaction copies out: a
// long export then holds no transaction open while it sends, and bbolt can
// reuse freed pages between chunks.
const (
	logChunkEntries = 4096
	logChunkBytes   = 4 << 20
)

// LogSize returns the number of entries in the election's log.
func (s *Store) LogSize(ctx context.Context, electionID string) (int64, error) {
	var size int64
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		size = getI64(eb.Bucket(bucketInfo).Get(keyLogSize))
		return nil
	})
	return size, err
}

// LogEntries calls fn with each log entry numbered start to end-1, in
// order. The entry bytes are copies that fn may keep. Entries are read in
// chunks, each in its own read transaction, and fn runs outside any
// transaction, so a slow reader never holds the file. It fails with
// CodeInvalid when the range is out of order or reaches past the log, and
// returns the first error from fn or ctx.
func (s *Store) LogEntries(ctx context.Context, electionID string, start, end int64, fn func(idx int64, entry []byte) error) error {
	size, err := s.LogSize(ctx, electionID)
	if err != nil {
		return err
	}
	if start < 0 || start > end || end > size {
		return election.Errorf(election.CodeInvalid, "range", "entries %d to %d are not in a log of %d entries", start, end, size)
	}
	type item struct {
		idx   int64
		entry []byte
	}
	var chunk []item
	for next := start; next < end; {
		if err := ctx.Err(); err != nil {
			return err
		}
		chunk = chunk[:0]
		err := s.view(electionID, func(eb *bolt.Bucket) error {
			lb := eb.Bucket(bucketLog)
			n := 0
			for idx := next; idx < end && len(chunk) < logChunkEntries && n < logChunkBytes; idx++ {
				v := lb.Get(putI64(idx))
				if v == nil {
					return fmt.Errorf("store: log entry %d missing", idx)
				}
				chunk = append(chunk, item{idx, slices.Clone(v)}) // v lives only as long as the transaction
				n += len(v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, it := range chunk {
			if err := fn(it.idx, it.entry); err != nil {
				return err
			}
		}
		next += int64(len(chunk))
	}
	return nil
}

// InclusionProof proves that entry index is in the log's first size
// entries. size must not exceed the log's size now.
func (s *Store) InclusionProof(ctx context.Context, electionID string, index, size int64) (tlog.RecordProof, error) {
	var proof tlog.RecordProof
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		have := getI64(eb.Bucket(bucketInfo).Get(keyLogSize))
		if size <= 0 || size > have || index < 0 || index >= size {
			return election.Errorf(election.CodeInvalid, "index", "entry %d of a tree of %d entries cannot be proved: the log has %d entries", index, size, have)
		}
		var err error
		proof, err = ballotlog.ProveInclusion(index, size, hashReader(eb.Bucket(bucketLogHash)))
		return err
	})
	return proof, err
}

// ConsistencyProof proves that the log's first oldSize entries are a prefix
// of its first newSize entries. newSize must not exceed the log's size now.
func (s *Store) ConsistencyProof(ctx context.Context, electionID string, oldSize, newSize int64) (tlog.TreeProof, error) {
	var proof tlog.TreeProof
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		have := getI64(eb.Bucket(bucketInfo).Get(keyLogSize))
		if oldSize < 0 || oldSize > newSize || newSize > have {
			return election.Errorf(election.CodeInvalid, "old_size", "no proof from %d to %d entries: sizes out of order or past the log's %d entries", oldSize, newSize, have)
		}
		var err error
		proof, err = ballotlog.ProveConsistency(oldSize, newSize, hashReader(eb.Bucket(bucketLogHash)))
		return err
	})
	return proof, err
}

// Receipt is how a receipted ballot stands, without its choices.
type Receipt struct {
	Status doorstepv1.ReceiptStatus
	// UnitID and LogIndex are set unless Status is NOT_FOUND.
	UnitID   string
	LogIndex int64
	// Checkpoint is the log the answer was read from; Proof proves
	// LogIndex in it (empty for NOT_FOUND).
	Checkpoint *doorstepv1.Checkpoint
	Proof      tlog.RecordProof
	// LeafHash is the tree's leaf hash of entry LogIndex.
	LeafHash tlog.Hash
}

// LookupReceipt finds the ballot with a receipt code (as a person typed
// it), optionally only in one unit, and says how it stands: COUNTED,
// SUPERSEDED, CONTESTED (its unit has differing live ballots, held or
// settled another way), INCLUDED (an identical ballot of its unit counts),
// REJECTED (logged, not counted; found by the hash of its exact bytes) or
// NOT_FOUND. It never returns choices. A code matching ballots of several
// units without unitID is a CodeInvalid error asking for the unit.
func (s *Store) LookupReceipt(ctx context.Context, electionID, code, unitID string) (*Receipt, error) {
	code, err := ballotlog.ParseReceiptCode(code)
	if err != nil {
		return nil, err
	}
	if unitID != "" {
		if err := election.CheckID("unit_id", unitID); err != nil {
			return nil, err
		}
	}
	r := &Receipt{Status: doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND}
	var size int64
	var root tlog.Hash
	err = s.view(electionID, func(eb *bolt.Bucket) error {
		info := eb.Bucket(bucketInfo)
		size = getI64(info.Get(keyLogSize))
		copy(root[:], info.Get(keyLogRoot))
		found, err := lookupAccepted(eb, code, unitID, r)
		if err != nil {
			return err
		}
		if !found {
			if found, err = lookupRejected(eb, code, unitID, r); err != nil || !found {
				return err
			}
		}
		hr := hashReader(eb.Bucket(bucketLogHash))
		leaf, err := hr.ReadHashes([]int64{tlog.StoredHashIndex(0, r.LogIndex)})
		if err != nil {
			return err
		}
		r.LeafHash = leaf[0]
		r.Proof, err = ballotlog.ProveInclusion(r.LogIndex, size, hr)
		return err
	})
	if err != nil {
		return nil, err
	}
	if r.Checkpoint, err = s.sign(electionID, size, root); err != nil {
		return nil, err
	}
	return r, nil
}

// lookupAccepted looks the code up among ballots the server stored.
func lookupAccepted(eb *bolt.Bucket, code, unitID string, r *Receipt) (bool, error) {
	type hit struct{ recordID, unitID string }
	var hits []hit
	prefix := join(code, nil)
	c := eb.Bucket(bucketReceipts).Cursor()
	for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		if unitID == "" || string(v) == unitID {
			hits = append(hits, hit{string(k[len(prefix):]), string(v)})
		}
	}
	if len(hits) == 0 {
		return false, nil
	}
	for _, h := range hits[1:] {
		if h.unitID != hits[0].unitID {
			return false, election.Errorf(election.CodeInvalid, "unit_id", "receipt code %s matches ballots of more than one unit: give the unit id as well", code)
		}
	}
	h := hits[0]
	var out tally.UnitOutcome
	if v := eb.Bucket(bucketOutcome).Get([]byte(h.unitID)); v != nil {
		if err := out.UnmarshalBinary(v); err != nil {
			return false, fmt.Errorf("store: outcome %q: %w", h.unitID, err)
		}
	}
	idx := eb.Bucket(bucketRecords).Get([]byte(h.recordID))
	if idx == nil {
		return false, fmt.Errorf("store: receipt %s names record %s, which is not stored", code, h.recordID)
	}
	r.Status, r.UnitID, r.LogIndex = rules.ReceiptStatus(out.Standing(h.recordID)), h.unitID, getI64(idx)
	return true, nil
}

// lookupRejected finds a rejected ballot by its code. Rejections are keyed
// by SHA-256(body ‖ signature), whose first 50 bits are the receipt code,
// so a range scan over the key prefix finds them without another index.
func lookupRejected(eb *bolt.Bucket, code, unitID string, r *Receipt) (bool, error) {
	prefix, err := receiptPrefix(code)
	if err != nil {
		return false, err
	}
	lb := eb.Bucket(bucketLog)
	c := eb.Bucket(bucketRejected).Cursor()
	for k, v := c.Seek(prefix[:]); k != nil && matchesPrefix(k, prefix); k, v = c.Next() {
		idx := getI64(v)
		e, err := readEntry(lb, idx)
		if err != nil {
			return false, err
		}
		if ballotlog.ReceiptCode(e.GetRecord().GetBody(), e.GetRecord().GetSignature()) != code {
			continue
		}
		rec, err := signed.Decode(e.GetRecord().GetBody())
		if err != nil || rec.GetBallot() == nil {
			continue // receipts are for ballots; this was something else
		}
		if unitID != "" && rec.GetBallot().GetUnitId() != unitID {
			continue
		}
		r.Status, r.UnitID, r.LogIndex = doorstepv1.ReceiptStatus_RECEIPT_STATUS_REJECTED, rec.GetBallot().GetUnitId(), idx
		return true, nil
	}
	return false, nil
}

// receiptPrefix turns a receipt code in canonical form back into the
// first 50 bits of the hash it came from: six whole bytes and the top two
// bits of the seventh (the rest zero).
func receiptPrefix(code string) ([7]byte, error) {
	const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var v uint64
	n := 0
	for i := 0; i < len(code); i++ {
		if code[i] == '-' {
			continue
		}
		d := -1
		for j := 0; j < len(alphabet); j++ {
			if alphabet[j] == code[i] {
				d = j
				break
			}
		}
		if d < 0 {
			return [7]byte{}, election.Errorf(election.CodeInvalid, "receipt_code", "%q is not a receipt code", code)
		}
		v = v<<5 | uint64(d)
		n++
	}
	if n != 10 {
		return [7]byte{}, election.Errorf(election.CodeInvalid, "receipt_code", "%q is not a receipt code", code)
	}
	v <<= 64 - 50
	var p [7]byte
	for i := range p {
		p[i] = byte(v >> (56 - 8*i))
	}
	return p, nil
}

func matchesPrefix(k []byte, p [7]byte) bool {
	return len(k) >= 7 && string(k[:6]) == string(p[:6]) && k[6]&0xc0 == p[6]
}

// Published returns the tally of a closed election and the checkpoint it
// was computed at. Ballots made before the close keep arriving until the
// sync deadline, so the published tally may still grow until then; each
// answer names its checkpoint. Before the close it fails with
// CodeFailedPrecondition.
func (s *Store) Published(ctx context.Context, electionID string) (*tally.Result, *doorstepv1.Checkpoint, error) {
	var state rules.State
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		if v := eb.Bucket(bucketInfo).Get(keyState); len(v) == 1 {
			state = rules.State(v[0])
		}
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if state < rules.StateClosed {
		return nil, nil, election.Errorf(election.CodeFailedPrecondition, "election_id", "election %q is not closed yet; the tally is published once the committee closes it", electionID)
	}
	return s.Tally(ctx, electionID)
}

// RecordSource is an election's log and published tally in the shape the
// election record export reads (record.Source), for callers that hold the
// store itself, such as the demo.
type RecordSource struct {
	s  *Store
	id string
}

// RecordSource returns the export source of one election.
func (s *Store) RecordSource(electionID string) *RecordSource {
	return &RecordSource{s: s, id: electionID}
}

// Tally returns the published tally's canonical JSON and its checkpoint.
func (r *RecordSource) Tally(ctx context.Context) ([]byte, *doorstepv1.Checkpoint, error) {
	res, cp, err := r.s.Published(ctx, r.id)
	if err != nil {
		return nil, nil, err
	}
	return res.CanonicalJSON(), cp, nil
}

// VerifierKey returns the note verifier key of the election's log.
func (r *RecordSource) VerifierKey(ctx context.Context) (string, error) {
	return r.s.VerifierKey(r.id)
}

// LogEntries streams entries [start, end) as Store.LogEntries does.
func (r *RecordSource) LogEntries(ctx context.Context, start, end int64, fn func(idx int64, entry []byte) error) error {
	return r.s.LogEntries(ctx, r.id, start, end, fn)
}
