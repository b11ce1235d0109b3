package device

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// dbFile is the device's bbolt file in the device folder.
const dbFile = "device.db"

// ErrInUse means another process has the device folder open.
var ErrInUse = errors.New("this device folder is open in another doorstep command; finish that one first")

// store is the device's bbolt file. It is the only code that touches bbolt:
// everything else reads through rtx and writes through wtx, whose methods
// copy bytes out before the transaction ends.
type store struct {
	db *bolt.DB
}

func openStore(dir string) (*store, error) {
	path := filepath.Join(dir, dbFile)
	// The file lock keeps two processes from writing one device's chain; a
	// second process gives up after a second rather than wait forever.
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, fmt.Errorf("open %s: %w", path, ErrInUse)
		}
		return nil, fmt.Errorf("open device file %s: %w", path, err)
	}
	s := &store{db: db}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		switch v := meta.Get(metaSchema); {
		case v == nil:
			if err := meta.Put(metaSchema, []byte{schemaVersion}); err != nil {
				return err
			}
			return meta.Put(metaChain, chainHead{}.encode())
		case len(v) != 1 || v[0] != schemaVersion:
			return fmt.Errorf("%s has layout version %v; this doorstep reads version %d: use the doorstep release that made it", path, v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open device file: %w", err)
	}
	if err := s.read(func(r *rtx) error { return r.checkChain() }); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func (s *store) close() error { return s.db.Close() }

// read runs fn in a read transaction.
func (s *store) read(fn func(*rtx) error) error {
	return s.db.View(func(tx *bolt.Tx) error { return fn(&rtx{tx: tx}) })
}

// write runs fn in a write transaction that commits, and fsyncs, when fn
// returns nil; on an error or panic nothing is written.
func (s *store) write(fn func(*wtx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error { return fn(&wtx{rtx{tx: tx}}) })
}

// check runs bbolt's consistency check over the whole file.
func (s *store) check() error {
	return s.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	})
}

// rtx reads the device file. Values it returns are copies, valid after the
// transaction ends.
type rtx struct{ tx *bolt.Tx }

func (r *rtx) meta(key []byte) []byte { return r.tx.Bucket(bucketMeta).Get(key) }

func unmarshal(b []byte, m proto.Message, what string) error {
	if err := proto.Unmarshal(b, m); err != nil {
		return fmt.Errorf("%s: %w: %w", what, errCorrupt, err)
	}
	return nil
}

// enrollment returns the enrollment, if the device has joined.
func (r *rtx) enrollment() (Enrollment, bool, error) {
	v := r.meta(metaEnrollment)
	if v == nil {
		return Enrollment{}, false, nil
	}
	e, err := decodeEnrollment(v)
	return e, err == nil, err
}

func (r *rtx) chain() (chainHead, error) { return decodeChain(r.meta(metaChain)) }

// checkChain compares the chain head with the last stored record, so a
// damaged file is noticed at open rather than by the server.
func (r *rtx) checkChain() error {
	head, err := r.chain()
	if err != nil {
		return err
	}
	k, v := r.tx.Bucket(bucketRecords).Cursor().Last()
	if k == nil {
		if head.Seq != 0 {
			return fmt.Errorf("%w: the chain head is at record %d but no records are stored", errCorrupt, head.Seq)
		}
		return nil
	}
	seq, err := decodeSeqKey(k)
	if err != nil {
		return err
	}
	sr := new(doorstepv1.SignedRecord)
	if err := unmarshal(v, sr, "record"); err != nil {
		return err
	}
	if seq != head.Seq || signed.BodyHash(sr.GetBody()) != head.Hash {
		return fmt.Errorf("%w: the chain head (record %d) does not match the last stored record (%d)", errCorrupt, head.Seq, seq)
	}
	return nil
}

func (r *rtx) hlc() (uint64, error) {
	v := r.meta(metaHLC)
	if v == nil {
		return 0, nil
	}
	return decodeUint64(v)
}

func (r *rtx) electionState() (electionState, bool, error) {
	v := r.meta(metaElection)
	if v == nil {
		return electionState{}, false, nil
	}
	s, err := decodeElectionState(v)
	return s, err == nil, err
}

// committeeRecords returns the stored committee records by committee seq.
func (r *rtx) committeeRecords() (map[uint64]*doorstepv1.SignedRecord, error) {
	out := make(map[uint64]*doorstepv1.SignedRecord)
	err := r.tx.Bucket(bucketCommittee).ForEach(func(k, v []byte) error {
		seq, err := decodeSeqKey(k)
		if err != nil {
			return err
		}
		sr := new(doorstepv1.SignedRecord)
		if err := unmarshal(v, sr, "committee record"); err != nil {
			return err
		}
		out[seq] = sr
		return nil
	})
	return out, err
}

// definition returns the stored define_election record.
func (r *rtx) definition() (*doorstepv1.SignedRecord, bool, error) {
	k := r.meta(metaDefinition)
	if k == nil {
		return nil, false, nil
	}
	v := r.tx.Bucket(bucketCommittee).Get(k)
	if v == nil {
		return nil, false, fmt.Errorf("%w: the definition record is missing", errCorrupt)
	}
	sr := new(doorstepv1.SignedRecord)
	if err := unmarshal(v, sr, "definition record"); err != nil {
		return nil, false, err
	}
	return sr, true, nil
}

func (r *rtx) rosterUnits() ([]election.Unit, error) {
	b := r.tx.Bucket(bucketRoster)
	units := make([]*doorstepv1.Unit, 0, b.Stats().KeyN)
	err := b.ForEach(func(k, v []byte) error {
		u := new(doorstepv1.Unit)
		if err := unmarshal(v, u, "roster unit"); err != nil {
			return err
		}
		if u.GetUnitId() != string(k) {
			return fmt.Errorf("%w: roster unit %q stored under %q", errCorrupt, u.GetUnitId(), k)
		}
		units = append(units, u)
		return nil
	})
	return rules.Units(units), err
}

// record returns the device's own record with the given seq.
func (r *rtx) record(seq uint64) (*doorstepv1.SignedRecord, bool, error) {
	v := r.tx.Bucket(bucketRecords).Get(seqKey(seq))
	if v == nil {
		return nil, false, nil
	}
	sr := new(doorstepv1.SignedRecord)
	if err := unmarshal(v, sr, "record"); err != nil {
		return nil, false, err
	}
	return sr, true, nil
}

// pendingSeqs lists the outbox in chain order.
func (r *rtx) pendingSeqs() ([]uint64, error) {
	var out []uint64
	err := r.tx.Bucket(bucketPending).ForEach(func(k, _ []byte) error {
		seq, err := decodeSeqKey(k)
		out = append(out, seq)
		return err
	})
	return out, err
}

func (r *rtx) pendingCount() int { return r.tx.Bucket(bucketPending).Stats().KeyN }

func (r *rtx) result(seq uint64) (*doorstepv1.RecordResult, bool, error) {
	v := r.tx.Bucket(bucketResults).Get(seqKey(seq))
	if v == nil {
		return nil, false, nil
	}
	res := new(doorstepv1.RecordResult)
	if err := unmarshal(v, res, "record result"); err != nil {
		return nil, false, err
	}
	return res, true, nil
}

// forEachResult calls fn for every answered record in chain order.
func (r *rtx) forEachResult(fn func(seq uint64, res *doorstepv1.RecordResult) error) error {
	return r.tx.Bucket(bucketResults).ForEach(func(k, v []byte) error {
		seq, err := decodeSeqKey(k)
		if err != nil {
			return err
		}
		res := new(doorstepv1.RecordResult)
		if err := unmarshal(v, res, "record result"); err != nil {
			return err
		}
		return fn(seq, res)
	})
}

func (r *rtx) unitState(unitID string) (unitState, error) {
	v := r.tx.Bucket(bucketOwn).Get([]byte(unitID))
	if v == nil {
		return unitState{}, nil
	}
	return decodeUnitState(v)
}

func (r *rtx) unitStatus(unitID string) (*doorstepv1.UnitStatus, error) {
	v := r.tx.Bucket(bucketStatus).Get([]byte(unitID))
	if v == nil {
		return nil, nil
	}
	st := new(doorstepv1.UnitStatus)
	return st, unmarshal(v, st, "unit status")
}

func (r *rtx) cursor() string { return string(r.meta(metaCursor)) }

func (r *rtx) checkpoint() (*doorstepv1.Checkpoint, error) {
	v := r.meta(metaCheckpoint)
	if v == nil {
		return nil, nil
	}
	cp := new(doorstepv1.Checkpoint)
	return cp, unmarshal(v, cp, "checkpoint")
}

func (r *rtx) syncInfo() (syncInfo, error) {
	v := r.meta(metaSync)
	if v == nil {
		return syncInfo{}, nil
	}
	return decodeSyncInfo(v)
}

// wtx writes the device file; it reads like rtx.
type wtx struct{ rtx }

func (w *wtx) putMeta(key, value []byte) error {
	if err := w.tx.Bucket(bucketMeta).Put(key, value); err != nil {
		return fmt.Errorf("store %s: %w", key, err)
	}
	return nil
}

func (w *wtx) putProto(bucket, key []byte, m proto.Message) error {
	b, err := proto.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode %T: %w", m, err)
	}
	if err := w.tx.Bucket(bucket).Put(key, b); err != nil {
		return fmt.Errorf("store %s: %w", bucket, err)
	}
	return nil
}

func (w *wtx) putEnrollment(e Enrollment) error { return w.putMeta(metaEnrollment, encodeJSON(e)) }
func (w *wtx) putChain(c chainHead) error       { return w.putMeta(metaChain, c.encode()) }
func (w *wtx) putHLC(v uint64) error            { return w.putMeta(metaHLC, encodeUint64(v)) }
func (w *wtx) putCursor(token string) error     { return w.putMeta(metaCursor, []byte(token)) }
func (w *wtx) putSyncInfo(s syncInfo) error     { return w.putMeta(metaSync, encodeJSON(s)) }
func (w *wtx) putElectionState(s electionState) error {
	return w.putMeta(metaElection, encodeJSON(s))
}
func (w *wtx) putDefinitionSeq(seq uint64) error { return w.putMeta(metaDefinition, seqKey(seq)) }
func (w *wtx) putCheckpoint(cp *doorstepv1.Checkpoint) error {
	return w.putProto(bucketMeta, metaCheckpoint, cp)
}

// putCommitteeRecord stores a verified committee record, refusing to
// replace a different one at the same seq.
func (w *wtx) putCommitteeRecord(seq uint64, sr *doorstepv1.SignedRecord) error {
	b := w.tx.Bucket(bucketCommittee)
	if old := b.Get(seqKey(seq)); old != nil {
		prev := new(doorstepv1.SignedRecord)
		if err := unmarshal(old, prev, "committee record"); err != nil {
			return err
		}
		if !bytes.Equal(prev.GetBody(), sr.GetBody()) || !bytes.Equal(prev.GetSignature(), sr.GetSignature()) {
			return fmt.Errorf("committee record %d: %w", seq, ErrEquivocation)
		}
		return nil
	}
	return w.putProto(bucketCommittee, seqKey(seq), sr)
}

// replaceRoster stores units as the whole roster.
func (w *wtx) replaceRoster(units []election.Unit) error {
	if err := w.tx.DeleteBucket(bucketRoster); err != nil && !errors.Is(err, bolt.ErrBucketNotFound) {
		return fmt.Errorf("clear roster: %w", err)
	}
	if _, err := w.tx.CreateBucket(bucketRoster); err != nil {
		return fmt.Errorf("clear roster: %w", err)
	}
	for _, u := range rules.UnitsProto(units) {
		if err := w.putProto(bucketRoster, []byte(u.GetUnitId()), u); err != nil {
			return err
		}
	}
	return nil
}

// putRecord stores a new record of this device and puts it in the outbox.
func (w *wtx) putRecord(seq uint64, sr *doorstepv1.SignedRecord) error {
	if w.tx.Bucket(bucketRecords).Get(seqKey(seq)) != nil {
		return fmt.Errorf("%w: record %d already exists", errCorrupt, seq)
	}
	if err := w.putProto(bucketRecords, seqKey(seq), sr); err != nil {
		return err
	}
	if err := w.tx.Bucket(bucketPending).Put(seqKey(seq), nil); err != nil {
		return fmt.Errorf("queue record %d: %w", seq, err)
	}
	return nil
}

// ack stores the server's answer for a record and takes it out of the
// outbox, in the same transaction.
func (w *wtx) ack(seq uint64, res *doorstepv1.RecordResult) error {
	if err := w.putProto(bucketResults, seqKey(seq), res); err != nil {
		return err
	}
	if err := w.tx.Bucket(bucketPending).Delete(seqKey(seq)); err != nil {
		return fmt.Errorf("dequeue record %d: %w", seq, err)
	}
	return nil
}

func (w *wtx) putUnitState(unitID string, u unitState) error {
	if err := w.tx.Bucket(bucketOwn).Put([]byte(unitID), encodeJSON(u)); err != nil {
		return fmt.Errorf("store unit %s: %w", unitID, err)
	}
	return nil
}

func (w *wtx) putUnitStatus(st *doorstepv1.UnitStatus) error {
	return w.putProto(bucketStatus, []byte(st.GetUnitId()), st)
}
