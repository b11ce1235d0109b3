package store

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

type signedCheckpoint struct {
	size int64
	cp   *doorstepv1.Checkpoint
}

// Origin is the checkpoint origin of an election's log.
func (s *Store) Origin(electionID string) string { return s.origin + "/" + electionID }

// OriginPrefix names this server's logs; each election's log is
// OriginPrefix()/<election id>.
func (s *Store) OriginPrefix() string { return s.origin }

// ServerKey is the public key that signs checkpoints.
func (s *Store) ServerKey() ed25519.PublicKey { return s.signer.PublicKey() }

// VerifierKey is the note verifier key of an election's log.
func (s *Store) VerifierKey(electionID string) (string, error) {
	return s.signer.VerifierKey(s.Origin(electionID))
}

func (s *Store) view(electionID string, fn func(eb *bolt.Bucket) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		eb := tx.Bucket(bucketElections).Bucket([]byte(electionID))
		if eb == nil {
			return errNoElection(electionID)
		}
		return fn(eb)
	})
}

// Checkpoint returns the signed checkpoint of the election's log as it is
// on disk now.
func (s *Store) Checkpoint(ctx context.Context, electionID string) (*doorstepv1.Checkpoint, error) {
	var size int64
	var root tlog.Hash
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		info := eb.Bucket(bucketInfo)
		size = getI64(info.Get(keyLogSize))
		copy(root[:], info.Get(keyLogRoot))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.sign(electionID, size, root)
}

func (s *Store) sign(electionID string, size int64, root tlog.Hash) (*doorstepv1.Checkpoint, error) {
	s.sigMu.Lock()
	defer s.sigMu.Unlock()
	if c, ok := s.sigs[electionID]; ok && c.size == size {
		return c.cp, nil
	}
	cp, err := s.signer.Sign(s.Origin(electionID), size, root)
	if err != nil {
		return nil, err
	}
	if c, ok := s.sigs[electionID]; !ok || c.size < size {
		s.sigs[electionID] = signedCheckpoint{size: size, cp: cp}
	}
	return cp, nil
}

// Definition returns an election's definition.
func (s *Store) Definition(electionID string) (*election.Definition, bool) {
	ec := s.cached(electionID)
	if ec == nil {
		return nil, false
	}
	return ec.def, true
}

// AuthorKey returns the public key of a device or of the committee
// ("committee"), for checking signed calls.
func (s *Store) AuthorKey(electionID, author string) (ed25519.PublicKey, bool) {
	k, _, ok := s.authorKey(electionID, author)
	return k, ok
}

// Tally is the live tally: the running totals read in O(1), the thresholds
// applied, and the checkpoint the totals belong to, all from one read
// transaction.
func (s *Store) Tally(ctx context.Context, electionID string) (*tally.Result, *doorstepv1.Checkpoint, error) {
	def, ok := s.Definition(electionID)
	if !ok {
		return nil, nil, errNoElection(electionID)
	}
	var res *tally.Result
	var size int64
	var root tlog.Hash
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		info := eb.Bucket(bucketInfo)
		var err error
		if res, err = readTally(def, info); err != nil {
			return err
		}
		size = getI64(info.Get(keyLogSize))
		copy(root[:], info.Get(keyLogRoot))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	cp, err := s.sign(electionID, size, root)
	if err != nil {
		return nil, nil, err
	}
	return res, cp, nil
}

// DeviceRevoked reports whether the committee revoked a device. It reads
// only the device's record: call checks need nothing more.
func (s *Store) DeviceRevoked(ctx context.Context, electionID, deviceID string) (bool, error) {
	var revoked bool
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		v := eb.Bucket(bucketDevices).Get([]byte(deviceID))
		if v == nil {
			return errNotEnrolled(deviceID)
		}
		dev, err := decodeDevice(v)
		revoked = err == nil && dev.revoked
		return err
	})
	return revoked, err
}

// Chain is what the server holds of an author's chain.
type Chain struct {
	// HighSeq is the highest record number with every record from 1 to it
	// held; HighHash is that record's body hash.
	HighSeq  uint64
	HighHash []byte
	// MaxSeq is the highest record number held.
	MaxSeq  uint64
	Revoked bool
	// MissingSeqs lists numbers between HighSeq and MaxSeq not held, the
	// first maxMissing of them.
	MissingSeqs []uint64
}

// maxMissing bounds the gaps one answer lists; a device resends them and
// asks again.
const maxMissing = 1000

// DeviceState tells what the server holds of an author's chain.
func (s *Store) DeviceState(ctx context.Context, electionID, deviceID string) (Chain, error) {
	var out Chain
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		v := eb.Bucket(bucketDevices).Get([]byte(deviceID))
		if v == nil {
			return errNotEnrolled(deviceID)
		}
		dev, err := decodeDevice(v)
		if err != nil {
			return err
		}
		out = Chain{HighSeq: dev.contiguous, HighHash: dev.contigHash, MaxSeq: dev.maxSeq, Revoked: dev.revoked}
		cb := eb.Bucket(bucketChain)
		for seq := dev.contiguous + 1; seq < dev.maxSeq && len(out.MissingSeqs) < maxMissing; seq++ {
			if cb.Get(chainKey(deviceID, seq)) == nil {
				out.MissingSeqs = append(out.MissingSeqs, seq)
			}
		}
		return nil
	})
	return out, err
}

// UnitProgress is how far canvassers got with a unit.
type UnitProgress struct {
	UnitID    string
	Progress  doorstepv1.UnitProgress
	LastVisit doorstepv1.VisitOutcome
	Visits    uint32
}

// UnitStatus returns units whose progress changed after the cursor, and
// the cursor to ask from next time.
func (s *Store) UnitStatus(ctx context.Context, electionID string, after uint64, limit int) ([]UnitProgress, uint64, error) {
	var out []UnitProgress
	next := after
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		pb := eb.Bucket(bucketProgress)
		c := eb.Bucket(bucketChanges).Cursor()
		for k, v := c.Seek(putU64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			p := decodeProgress(pb.Get(v))
			out = append(out, UnitProgress{
				UnitID:    string(v),
				Progress:  doorstepv1.UnitProgress(p.state),
				LastVisit: doorstepv1.VisitOutcome(p.lastVisit),
				Visits:    p.visits,
			})
			next = getU64(k)
		}
		return nil
	})
	return out, next, err
}

// ContestedUnit is a unit held for the committee, with its live ballots.
type ContestedUnit struct {
	UnitID  string
	Ballots []ContestedBallot
}

// ContestedBallot is one of a contested unit's live ballots, with what the
// committee needs to weigh it: who collected it, when, who signed and what
// the resident said.
type ContestedBallot struct {
	tally.Ballot
	DeviceLabel  string
	AuthorTime   time.Time
	Comment      string
	SignerKind   doorstepv1.SignerKind
	SignerName   string
	LateDoubtful bool
}

// SplitOwner is an owner whose units' counted ballots disagree on an
// item: the headcount vote is held until the committee settles it.
type SplitOwner struct {
	OwnerKey string
	Item     int // index in the definition
	UnitIDs  []string
	// Choices are the counted units' marks on the item, by unit id.
	Choices map[string]election.Mark
}

// ContestedPage is one page of what waits for the committee: contested
// units in unit id order, then split owners in owner key order.
type ContestedPage struct {
	Units       []ContestedUnit
	SplitOwners []SplitOwner
	// Next is where the next page starts; zero when this is the last.
	Next ContestedCursor
}

// ContestedCursor is a position in the contested list: after a unit, or
// (once Owners is set) after a split owner's item.
type ContestedCursor struct {
	Owners bool
	Key    string
}

// Contested returns up to limit contested units and split owners after
// the cursor.
func (s *Store) Contested(ctx context.Context, electionID string, after ContestedCursor, limit int) (ContestedPage, error) {
	var out ContestedPage
	if _, ok := s.Definition(electionID); !ok {
		return out, errNoElection(electionID)
	}
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		n := 0
		if !after.Owners {
			c := eb.Bucket(bucketContested).Cursor()
			bb, ob := eb.Bucket(bucketBallots), eb.Bucket(bucketOutcome)
			for k, _ := seekAfter(c, after.Key); k != nil; k, _ = c.Next() {
				if n == limit {
					out.Next = ContestedCursor{Key: out.Units[len(out.Units)-1].UnitID}
					return nil
				}
				var o tally.UnitOutcome
				if err := o.UnmarshalBinary(ob.Get(k)); err != nil {
					return err
				}
				cu := ContestedUnit{UnitID: string(k)}
				for _, id := range o.Live {
					var b tally.Ballot
					if err := b.UnmarshalBinary(bb.Get(join(cu.UnitID, []byte(id)))); err != nil {
						return err
					}
					cb, err := contestedBallot(eb, b)
					if err != nil {
						return err
					}
					cu.Ballots = append(cu.Ballots, cb)
				}
				out.Units = append(out.Units, cu)
				n++
			}
			after = ContestedCursor{Owners: true}
		}
		c := eb.Bucket(bucketSplit).Cursor()
		var last []byte
		for k, _ := seekAfter(c, after.Key); k != nil; k, _ = c.Next() {
			if n == limit {
				out.Next = ContestedCursor{Owners: true, Key: string(last)}
				return nil
			}
			last = k
			owner, item := splitKey(k)
			so := SplitOwner{OwnerKey: owner, Item: item, Choices: map[string]election.Mark{}}
			prefix := join(owner, nil)
			uc := eb.Bucket(bucketOwnerUnits).Cursor()
			ob := eb.Bucket(bucketOutcome)
			for uk, _ := uc.Seek(prefix); uk != nil && hasPrefix(uk, prefix); uk, _ = uc.Next() {
				unit := string(uk[len(prefix):])
				so.UnitIDs = append(so.UnitIDs, unit)
				if ov := ob.Get([]byte(unit)); ov != nil {
					var o tally.UnitOutcome
					if err := o.UnmarshalBinary(ov); err != nil {
						return err
					}
					if o.Counted && item >= 0 && item < len(o.Marks) {
						so.Choices[unit] = o.Marks[item]
					}
				}
			}
			out.SplitOwners = append(out.SplitOwners, so)
			n++
		}
		return nil
	})
	return out, err
}

// contestedBallot reads what the committee weighs of a live ballot from
// its record in the log.
func contestedBallot(eb *bolt.Bucket, b tally.Ballot) (ContestedBallot, error) {
	cb := ContestedBallot{Ballot: b}
	if dv := eb.Bucket(bucketDevices).Get([]byte(b.DeviceID)); dv != nil {
		if d, err := decodeDevice(dv); err == nil {
			cb.DeviceLabel = d.label
		}
	}
	idx := eb.Bucket(bucketRecords).Get([]byte(b.RecordID))
	if idx == nil {
		return cb, fmt.Errorf("store: ballot %s is not in the log", b.RecordID)
	}
	e, err := readEntry(eb.Bucket(bucketLog), getI64(idx))
	if err != nil {
		return cb, err
	}
	rec, err := signed.Decode(e.GetRecord().GetBody())
	if err != nil {
		return cb, fmt.Errorf("store: ballot %s: %w", b.RecordID, err)
	}
	bl := rec.GetBallot()
	cb.AuthorTime, cb.Comment, cb.SignerKind, cb.SignerName = rec.GetAuthorTime().AsTime(), bl.GetComment(), bl.GetSignerKind(), bl.GetSignerName()
	for _, f := range e.GetResult().GetFlags() {
		cb.LateDoubtful = cb.LateDoubtful || f == doorstepv1.RecordFlag_RECORD_FLAG_LATE_DOUBTFUL
	}
	return cb, nil
}

// seekAfter positions c at the first key after key ("" for the first).
func seekAfter(c *bolt.Cursor, key string) ([]byte, []byte) {
	if key == "" {
		return c.First()
	}
	k, v := c.Seek([]byte(key))
	if k != nil && string(k) == key {
		return c.Next()
	}
	return k, v
}

func splitKey(k []byte) (string, int) {
	if len(k) < 9 {
		return "", -1
	}
	return string(k[:len(k)-9]), int(getU64(k[len(k)-8:]))
}

// CommitteeRecords returns the committee's signed records in order.
func (s *Store) CommitteeRecords(ctx context.Context, electionID string) ([]*doorstepv1.SignedRecord, error) {
	var out []*doorstepv1.SignedRecord
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		lb := eb.Bucket(bucketLog)
		return eb.Bucket(bucketCommittee).ForEach(func(_, v []byte) error {
			e, err := readEntry(lb, getI64(v))
			if err != nil {
				return err
			}
			out = append(out, e.GetRecord())
			return nil
		})
	})
	return out, err
}

// CommitteeState is what the server holds of the committee's chain.
func (s *Store) CommitteeState(ctx context.Context, electionID string) (Chain, error) {
	return s.DeviceState(ctx, electionID, election.CommitteeAuthor)
}
