package store

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sort"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
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
func (s *Store) ServerKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// VerifierKey is the note verifier key of an election's log.
func (s *Store) VerifierKey(electionID string) (string, error) {
	sg, err := ballotlog.NewSigner(s.Origin(electionID), s.key)
	if err != nil {
		return "", err
	}
	return sg.VerifierKey(), nil
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
	sg, err := ballotlog.NewSigner(s.Origin(electionID), s.key)
	if err != nil {
		return nil, err
	}
	cp, err := sg.Sign(size, root)
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
	var res tally.Result
	var size int64
	var root tlog.Hash
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		info := eb.Bucket(bucketInfo)
		t := tally.NewTotals(def)
		if v := info.Get(keyTotals); v != nil {
			if err := t.UnmarshalBinary(v); err != nil {
				return fmt.Errorf("store: totals: %w", err)
			}
		}
		res = tally.Decide(def, getI64(info.Get(keyRosterArea)), int(getI64(info.Get(keyRosterHead))), t)
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
	return &res, cp, nil
}

// DeviceRevoked reports whether the committee revoked a device. It reads
// only the device's record: call checks need nothing more.
func (s *Store) DeviceRevoked(ctx context.Context, electionID, deviceID string) (bool, error) {
	var revoked bool
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		v := eb.Bucket(bucketDevices).Get([]byte(deviceID))
		if v == nil {
			return election.Errorf(election.CodeNotFound, "device_id", "device %q is not enrolled in this election", deviceID)
		}
		dev, err := decodeDevice(v)
		revoked = err == nil && dev.revoked
		return err
	})
	return revoked, err
}

// DeviceState tells a device what the server holds of its chain.
func (s *Store) DeviceState(ctx context.Context, electionID, deviceID string) (*doorstepv1.GetDeviceStateResponse, error) {
	out := &doorstepv1.GetDeviceStateResponse{ServerTime: timestamppb.New(s.now())}
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		v := eb.Bucket(bucketDevices).Get([]byte(deviceID))
		if v == nil {
			return election.Errorf(election.CodeNotFound, "device_id", "device %q is not enrolled in this election", deviceID)
		}
		dev, err := decodeDevice(v)
		if err != nil {
			return err
		}
		out.HighSeq, out.HighHash, out.MaxSeq, out.Revoked = dev.contiguous, dev.contigHash, dev.maxSeq, dev.revoked
		cb := eb.Bucket(bucketChain)
		for seq := dev.contiguous + 1; seq < dev.maxSeq && len(out.MissingSeqs) < 1000; seq++ {
			if cb.Get(chainKey(deviceID, seq)) == nil {
				out.MissingSeqs = append(out.MissingSeqs, seq)
			}
		}
		return nil
	})
	return out, err
}

// UnitStatus returns units whose progress changed after the cursor, and
// the cursor to ask from next time.
func (s *Store) UnitStatus(ctx context.Context, electionID string, after uint64, limit int) ([]*doorstepv1.UnitStatus, uint64, error) {
	var out []*doorstepv1.UnitStatus
	next := after
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		pb := eb.Bucket(bucketProgress)
		c := eb.Bucket(bucketChanges).Cursor()
		for k, v := c.Seek(putU64(after + 1)); k != nil && len(out) < limit; k, v = c.Next() {
			p := decodeProgress(pb.Get(v))
			out = append(out, &doorstepv1.UnitStatus{
				UnitId:    string(v),
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

// Contested lists contested units after the given unit id, with their live
// ballots, and the split owners awaiting the committee.
func (s *Store) Contested(ctx context.Context, electionID, afterUnit string, limit int) (*doorstepv1.ListContestedUnitsResponse, error) {
	def, ok := s.Definition(electionID)
	if !ok {
		return nil, errNoElection(electionID)
	}
	out := &doorstepv1.ListContestedUnitsResponse{}
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		c := eb.Bucket(bucketContested).Cursor()
		k, _ := c.First()
		if afterUnit != "" {
			k, _ = c.Seek([]byte(afterUnit))
			if k != nil && string(k) == afterUnit {
				k, _ = c.Next()
			}
		}
		for ; k != nil; k, _ = c.Next() {
			if len(out.Units) == limit {
				out.NextPageToken = string(out.Units[len(out.Units)-1].UnitId)
				break
			}
			unitID := string(k)
			var o tally.UnitOutcome
			if err := o.UnmarshalBinary(eb.Bucket(bucketOutcome).Get(k)); err != nil {
				return err
			}
			cu := &doorstepv1.ContestedUnit{UnitId: unitID}
			bb := eb.Bucket(bucketBallots)
			for _, id := range o.Live {
				var b tally.Ballot
				if err := b.UnmarshalBinary(bb.Get(join(unitID, []byte(id)))); err != nil {
					return err
				}
				cu.Ballots = append(cu.Ballots, &doorstepv1.ContestedBallot{RecordId: b.RecordID, DeviceId: b.DeviceID, Hlc: b.HLC, Selections: rules.MarksProto(def, b.Marks)})
			}
			out.Units = append(out.Units, cu)
		}
		if afterUnit != "" {
			return nil // split owners come with the first page
		}
		sc := eb.Bucket(bucketSplit).Cursor()
		for k, _ := sc.First(); k != nil && len(out.SplitOwners) < 1000; k, _ = sc.Next() {
			owner, idx := splitKey(k)
			if idx < 0 || idx >= len(def.Items) {
				continue
			}
			out.SplitOwners = append(out.SplitOwners, &doorstepv1.SplitOwner{OwnerKey: owner, ItemId: def.Items[idx].ID})
		}
		return nil
	})
	sort.SliceStable(out.SplitOwners, func(i, j int) bool { return out.SplitOwners[i].OwnerKey < out.SplitOwners[j].OwnerKey })
	return out, err
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

// CommitteeState tells the committee's machine the chain the server holds.
func (s *Store) CommitteeState(ctx context.Context, electionID string) (*doorstepv1.GetCommitteeStateResponse, error) {
	st, err := s.DeviceState(ctx, electionID, election.CommitteeAuthor)
	if err != nil {
		return nil, err
	}
	return &doorstepv1.GetCommitteeStateResponse{HighSeq: st.HighSeq, HighHash: st.HighHash}, nil
}

// UnitOutcomes calls fn for every unit with ballots, in unit id order, with
// its reconciled outcome.
func (s *Store) UnitOutcomes(ctx context.Context, electionID string, fn func(unitID string, o tally.UnitOutcome) error) error {
	return s.view(electionID, func(eb *bolt.Bucket) error {
		return eb.Bucket(bucketOutcome).ForEach(func(k, v []byte) error {
			var o tally.UnitOutcome
			if err := o.UnmarshalBinary(v); err != nil {
				return err
			}
			return fn(string(k), o)
		})
	})
}
