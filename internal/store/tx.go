package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// writeTx is one election's view of a shared write transaction. It caches
// what several records in one group commit touch (the running tally, owner
// aggregates, the log size) and writes them once in finish.
type writeTx struct {
	s  *Store
	tx *bolt.Tx
	id string
	eb *bolt.Bucket

	def   *election.Definition // nil until the election is defined
	state rules.State
	units map[string]election.Unit // roster units read in this transaction
	// buildings are the turnout counters changed in this transaction.
	buildings map[string]*turnout

	totals      *tally.Totals
	totalsDirty bool
	owners      map[string]*tally.OwnerState
	devices     map[string]*device // read or changed in this transaction
	dirtyDevs   map[string]bool

	logSize  int64
	logStart int64
	root     tlog.Hash
	change   uint64
}

func (s *Store) beginElection(tx *bolt.Tx, id string) (*writeTx, error) {
	w := &writeTx{s: s, tx: tx, id: id, owners: make(map[string]*tally.OwnerState),
		devices: make(map[string]*device), dirtyDevs: make(map[string]bool), units: make(map[string]election.Unit), buildings: make(map[string]*turnout)}
	eb := tx.Bucket(bucketElections).Bucket([]byte(id))
	if eb == nil {
		return w, nil // CreateElection makes it
	}
	return w, w.attach(eb)
}

func (w *writeTx) attach(eb *bolt.Bucket) error {
	w.eb = eb
	info := eb.Bucket(bucketInfo)
	if v := info.Get(keyDefinition); v != nil {
		ec := w.s.cached(w.id)
		if ec != nil {
			w.def = ec.def
		} else {
			d, _, err := decodeDefinition(v)
			if err != nil {
				return err
			}
			w.def = d
		}
	}
	if v := info.Get(keyState); len(v) == 1 {
		w.state = rules.State(v[0])
	}
	w.logSize = getI64(info.Get(keyLogSize))
	w.logStart = w.logSize
	w.change = getU64(info.Get(keyChangeSeq))
	return nil
}

func (w *writeTx) bucket(name []byte) *bolt.Bucket { return w.eb.Bucket(name) }

// hashReader reads stored tree hashes, including those written earlier in
// this transaction.
func (w *writeTx) hashReader() tlog.HashReader {
	return hashReader(w.bucket(bucketLogHash))
}

func hashReader(b *bolt.Bucket) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			v := b.Get(putI64(x))
			if len(v) != tlog.HashSize {
				return nil, fmt.Errorf("store: log hash %d missing", x)
			}
			copy(out[i][:], v)
		}
		return out, nil
	})
}

// appendLog adds one decision to the election's log and returns its index.
// The entry's result.log_index is set here.
func (w *writeTx) appendLog(e *doorstepv1.LogEntry) (int64, error) {
	idx := w.logSize
	if e.Result != nil {
		e.Result.LogIndex = uint64(idx)
	}
	e.ElectionId = w.id
	data, err := ballotlog.EncodeEntry(e)
	if err != nil {
		return 0, fmt.Errorf("encode log entry: %w", err)
	}
	if len(data) > ballotlog.MaxEntryBytes {
		// Bodies are bounded at the door and what the server adds is
		// small: only bytes a sender put beside the body and signature
		// (fields SignedRecord does not have, which no signature covers)
		// reach this. An entry past the bound could be neither streamed
		// nor exported, so it is never logged; the call fails instead.
		return 0, fmt.Errorf("store: log entry %d would be %d bytes, over the %d-byte bound (ballotlog.MaxEntryBytes)", idx, len(data), ballotlog.MaxEntryBytes)
	}
	hashes, err := ballotlog.HashesToStore(idx, data, w.hashReader())
	if err != nil {
		return 0, fmt.Errorf("log hashes: %w", err)
	}
	if err := w.bucket(bucketLog).Put(putI64(idx), data); err != nil {
		return 0, err
	}
	hb := w.bucket(bucketLogHash)
	base := tlog.StoredHashIndex(0, idx)
	for i, h := range hashes {
		if err := hb.Put(putI64(base+int64(i)), h[:]); err != nil {
			return 0, err
		}
	}
	w.logSize++
	return idx, nil
}

// entry reads a log entry; the bytes are copied out of the transaction.
func (w *writeTx) entry(idx int64) (*doorstepv1.LogEntry, error) {
	return readEntry(w.bucket(bucketLog), idx)
}

func readEntry(b *bolt.Bucket, idx int64) (*doorstepv1.LogEntry, error) {
	v := b.Get(putI64(idx))
	if v == nil {
		return nil, fmt.Errorf("store: log entry %d missing", idx)
	}
	e, err := decodeEntry(v)
	if err != nil {
		return nil, fmt.Errorf("store: log entry %d: %w", idx, err)
	}
	return e, nil
}

// decodeEntry decodes a log entry's bytes. Unmarshal copies bytes fields,
// so nothing of the result refers to bbolt's page.
func decodeEntry(v []byte) (*doorstepv1.LogEntry, error) {
	e := &doorstepv1.LogEntry{}
	if err := proto.Unmarshal(v, e); err != nil {
		return nil, err
	}
	return e, nil
}

func (w *writeTx) loadTotals() (*tally.Totals, error) {
	if w.totals != nil {
		return w.totals, nil
	}
	t := tally.NewTotals(w.def)
	if v := w.bucket(bucketInfo).Get(keyTotals); v != nil {
		if err := t.UnmarshalBinary(v); err != nil {
			return nil, fmt.Errorf("store: totals: %w", err)
		}
		if err := t.Fits(w.def); err != nil {
			return nil, fmt.Errorf("store: totals do not fit the election's definition: %w", err)
		}
	}
	w.totals = t
	return t, nil
}

// turnout returns a building's counters, read once per transaction and
// written in finish.
func (w *writeTx) turnout(building string) (*turnout, error) {
	if t := w.buildings[building]; t != nil {
		return t, nil
	}
	t := &turnout{}
	if v := w.bucket(bucketBuildings).Get(buildingKey(building)); v != nil {
		d, err := decodeTurnout(v)
		if err != nil {
			return nil, err
		}
		*t = d
	}
	w.buildings[building] = t
	return t, nil
}

func (w *writeTx) ownerState(key string) (*tally.OwnerState, error) {
	if o := w.owners[key]; o != nil {
		return o, nil
	}
	o := tally.NewOwnerState(w.def)
	if v := w.bucket(bucketOwnerState).Get([]byte(key)); v != nil {
		if err := o.UnmarshalBinary(v); err != nil {
			return nil, fmt.Errorf("store: owner state: %w", err)
		}
	}
	w.owners[key] = o
	return o, nil
}

// device returns an author's device record, or nil if it is not enrolled.
// Changes go through saveDevice and are written once, in finish.
func (w *writeTx) device(id string) (*device, error) {
	if d := w.devices[id]; d != nil {
		return d, nil
	}
	v := w.bucket(bucketDevices).Get([]byte(id))
	if v == nil {
		return nil, nil
	}
	d, err := decodeDevice(v)
	if err != nil {
		return nil, err
	}
	w.devices[id] = d
	return d, nil
}

func (w *writeTx) saveDevice(id string, d *device) {
	w.devices[id] = d
	w.dirtyDevs[id] = true
}

// nextChange numbers a change of a unit's progress for ListUnitStatus.
func (w *writeTx) setProgress(unitID string, update func(p *progress)) error {
	b := w.bucket(bucketProgress)
	p := decodeProgress(b.Get([]byte(unitID)))
	old := p
	update(&p)
	if p.state == old.state && p.lastVisit == old.lastVisit && p.visits == old.visits {
		return nil
	}
	ch := w.bucket(bucketChanges)
	if old.change != 0 {
		if err := ch.Delete(putU64(old.change)); err != nil {
			return err
		}
	}
	w.change++
	p.change = w.change
	if err := ch.Put(putU64(p.change), []byte(unitID)); err != nil {
		return err
	}
	return b.Put([]byte(unitID), p.encode())
}

// finish writes what the group's records changed for this election.
func (w *writeTx) finish() error {
	if w.eb == nil {
		return nil
	}
	info := w.bucket(bucketInfo)
	if w.totals != nil && w.totalsDirty {
		v, err := w.totals.MarshalBinary()
		if err != nil {
			return err
		}
		if err := info.Put(keyTotals, v); err != nil {
			return err
		}
	}
	db := w.bucket(bucketDevices)
	for id := range w.dirtyDevs {
		if err := db.Put([]byte(id), w.devices[id].encode()); err != nil {
			return err
		}
	}
	ob := w.bucket(bucketOwnerState)
	for k, o := range w.owners {
		v, err := o.MarshalBinary()
		if err != nil {
			return err
		}
		if err := ob.Put([]byte(k), v); err != nil {
			return err
		}
	}
	if err := info.Put(keyChangeSeq, putU64(w.change)); err != nil {
		return err
	}
	bb := w.bucket(bucketBuildings)
	for b, t := range w.buildings {
		if err := bb.Put(buildingKey(b), t.encode()); err != nil {
			return err
		}
	}
	if w.logSize != w.logStart {
		root, err := tlog.TreeHash(w.logSize, w.hashReader())
		if err != nil {
			return fmt.Errorf("log root: %w", err)
		}
		w.root = root
		if err := info.Put(keyLogSize, putI64(w.logSize)); err != nil {
			return err
		}
		if err := info.Put(keyLogRoot, root[:]); err != nil {
			return err
		}
	}
	return nil
}
