package store

import (
	"context"
	"fmt"
	"sort"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// Read-only queries for the committee's day: where the election stands,
// turnout by building, the devices and the residents' comments. Each reads
// what it needs in one read transaction; none scans the ballots.

// Status is where an election stands and since when (zero times: not
// yet).
type Status struct {
	State                           rules.State
	OpenedAt, ClosedAt, CertifiedAt time.Time
	SyncDeadline, ObjectionEnds     time.Time
}

// Building is one building's part of the roster and of the count.
type Building struct {
	Name                 string
	Units, Counted, Held uint64
	Area, AreaCounted    int64
}

// Device is one canvasser's device as the server knows it.
type Device struct {
	ID, Label string
	// EnrolledAt is when its enrollment was logged.
	EnrolledAt time.Time
	// LastSync is its last push (zero: none yet); Unsent what it said it
	// still held unanswered then (UnsentKnown: it said), ClockOffset the
	// server's clock minus the device's then (OffsetKnown: it said).
	LastSync                 time.Time
	Unsent                   uint64
	UnsentKnown, OffsetKnown bool
	ClockOffset              time.Duration
	// RecordsHeld is the highest record number held, HighSeq the highest
	// with none missing below, Gaps how many are missing between.
	RecordsHeld, HighSeq, Gaps uint64
	Revoked                    bool
}

// Overview is what the committee watches: the live tally and the
// checkpoint it was computed at, the status, turnout by building, how
// many split owners wait, and the devices.
type Overview struct {
	Tally       *tally.Result
	Checkpoint  *doorstepv1.Checkpoint
	Status      Status
	Buildings   []Building
	SplitOwners int
	Devices     []Device
}

// Overview reads the election's overview. Everything comes from running
// counters and the devices' records: its cost grows with the buildings
// and the devices, not the ballots.
func (s *Store) Overview(ctx context.Context, electionID string) (*Overview, error) {
	def, ok := s.Definition(electionID)
	if !ok {
		return nil, errNoElection(electionID)
	}
	out := &Overview{}
	var size int64
	var root tlog.Hash
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		info := eb.Bucket(bucketInfo)
		res, err := readTally(def, info)
		if err != nil {
			return err
		}
		out.Tally = res
		size = getI64(info.Get(keyLogSize))
		copy(root[:], info.Get(keyLogRoot))
		out.Status = readStatus(eb)
		err = eb.Bucket(bucketBuildings).ForEach(func(k, v []byte) error {
			t, err := decodeTurnout(v)
			if err != nil {
				return err
			}
			out.Buildings = append(out.Buildings, Building{Name: string(k[1:]), Units: t.units, Area: t.area, Counted: t.counted, AreaCounted: t.areaCounted, Held: t.held})
			return nil
		})
		if err != nil {
			return err
		}
		// A split owner is held on each item it splits; one owner counts once.
		owners := map[string]bool{}
		if err := eb.Bucket(bucketSplit).ForEach(func(k, _ []byte) error {
			o, _ := splitKey(k)
			owners[o] = true
			return nil
		}); err != nil {
			return err
		}
		out.SplitOwners = len(owners)
		out.Devices, err = readDevices(eb)
		return err
	})
	if err != nil {
		return nil, err
	}
	if out.Checkpoint, err = s.sign(electionID, size, root); err != nil {
		return nil, err
	}
	return out, nil
}

// readTally decides the running totals kept in info.
func readTally(def *election.Definition, info *bolt.Bucket) (*tally.Result, error) {
	t := tally.NewTotals(def)
	if v := info.Get(keyTotals); v != nil {
		if err := t.UnmarshalBinary(v); err != nil {
			return nil, fmt.Errorf("store: totals: %w", err)
		}
		if err := t.Fits(def); err != nil {
			return nil, fmt.Errorf("store: totals do not fit the election's definition: %w", err)
		}
	}
	res := tally.Decide(def, getI64(info.Get(keyRosterArea)), int(getI64(info.Get(keyRosterHead))), t)
	return &res, nil
}

func readStatus(eb *bolt.Bucket) Status {
	info := eb.Bucket(bucketInfo)
	var st Status
	if v := info.Get(keyState); len(v) == 1 {
		st.State = rules.State(v[0])
	}
	at := func(k []byte) time.Time {
		if v := info.Get(k); v != nil {
			return time.UnixMilli(getI64(v))
		}
		return time.Time{}
	}
	st.OpenedAt, st.ClosedAt, st.CertifiedAt = at(keyOpenedAt), at(keyClosedAt), at(keyCertifiedAt)
	if def, _, err := decodeDefinition(info.Get(keyDefinition)); err == nil {
		st.SyncDeadline = def.SyncDeadline
		if !st.ClosedAt.IsZero() {
			st.ObjectionEnds = rules.ObjectionEnds(def, st.ClosedAt)
		}
	}
	return st
}

// ElectionStatus reads where an election stands.
func (s *Store) ElectionStatus(ctx context.Context, electionID string) (Status, error) {
	var st Status
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		st = readStatus(eb)
		return nil
	})
	return st, err
}

// Devices lists the election's enrolled devices, by label.
func (s *Store) Devices(ctx context.Context, electionID string) ([]Device, error) {
	var out []Device
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		var err error
		out, err = readDevices(eb)
		return err
	})
	return out, err
}

func readDevices(eb *bolt.Bucket) ([]Device, error) {
	enrolled, err := enrollmentTimes(eb)
	if err != nil {
		return nil, err
	}
	cb, sb := eb.Bucket(bucketChain), eb.Bucket(bucketDevSync)
	var out []Device
	err = eb.Bucket(bucketDevices).ForEach(func(k, v []byte) error {
		id := string(k)
		if id == election.CommitteeAuthor {
			return nil
		}
		d, err := decodeDevice(v)
		if err != nil {
			return err
		}
		dv := Device{ID: id, Label: d.label, EnrolledAt: enrolled[id], RecordsHeld: d.maxSeq, HighSeq: d.contiguous, Revoked: d.revoked}
		for seq := d.contiguous + 1; seq < d.maxSeq && dv.Gaps < maxMissing; seq++ {
			if cb.Get(chainKey(id, seq)) == nil {
				dv.Gaps++
			}
		}
		if sv := sb.Get(k); sv != nil {
			ds, err := decodeDevSync(sv)
			if err != nil {
				return err
			}
			dv.LastSync = time.UnixMilli(ds.at)
			dv.Unsent, dv.UnsentKnown = ds.unsent, ds.unsentKnown
			dv.ClockOffset, dv.OffsetKnown = time.Duration(ds.offsetMs)*time.Millisecond, ds.offsetKnown
		}
		out = append(out, dv)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Label != out[j].Label {
			return out[i].Label < out[j].Label
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// enrollmentTimes finds when each device's enrollment was logged. The
// enrollments are few and near the start of the log; the scan stops at
// the last device it knows.
func enrollmentTimes(eb *bolt.Bucket) (map[string]time.Time, error) {
	want := eb.Bucket(bucketDevices).Stats().KeyN - 1 // the committee is no enrollment
	out := make(map[string]time.Time, max(want, 0))
	c := eb.Bucket(bucketLog).Cursor()
	for k, v := c.First(); k != nil && len(out) < want; k, v = c.Next() {
		e, err := decodeEntry(v)
		if err != nil {
			return nil, err
		}
		if en := e.GetEnrollment(); en != nil {
			out[en.GetDeviceId()] = e.GetReceived().AsTime()
		}
	}
	return out, nil
}

// Comment is what a resident asked to pass on, from an accepted ballot.
type Comment struct {
	UnitID, Building, Text string
	AuthorTime             time.Time
	DeviceID, DeviceLabel  string
	RecordID               string
	LogIndex               int64
}

// Comments returns up to limit comments of accepted ballots logged after
// log index after (-1 for the start), in log order, and the index to go
// on after; it reads the log, so the committee pages through it.
func (s *Store) Comments(ctx context.Context, electionID string, after int64, limit int) ([]Comment, int64, error) {
	var out []Comment
	next := after
	err := s.view(electionID, func(eb *bolt.Bucket) error {
		labels := map[string]string{}
		db := eb.Bucket(bucketDevices)
		ub := eb.Bucket(bucketUnits)
		c := eb.Bucket(bucketLog).Cursor()
		// Bounded work per page, comments or not.
		scanned := 0
		k, v := c.Seek(putI64(after + 1))
		for ; k != nil && len(out) < limit && scanned < 20*limit+1000; k, v = c.Next() {
			scanned++
			next = getI64(k)
			e, err := decodeEntry(v)
			if err != nil {
				return err
			}
			switch e.GetResult().GetStatus() {
			case doorstepv1.RecordStatus_RECORD_STATUS_REJECTED, doorstepv1.RecordStatus_RECORD_STATUS_UNSPECIFIED:
				continue
			}
			rec, err := signed.Decode(e.GetRecord().GetBody())
			if err != nil || rec.GetBallot().GetComment() == "" {
				continue
			}
			b := rec.GetBallot()
			cm := Comment{UnitID: b.GetUnitId(), Text: b.GetComment(), AuthorTime: rec.GetAuthorTime().AsTime(), DeviceID: rec.GetAuthorId(), RecordID: rec.GetRecordId(), LogIndex: next}
			if uv := ub.Get([]byte(cm.UnitID)); uv != nil {
				if u, err := decodeUnit(uv); err == nil {
					cm.Building = u.Building
				}
			}
			label, ok := labels[cm.DeviceID]
			if !ok {
				if dv := db.Get([]byte(cm.DeviceID)); dv != nil {
					if d, err := decodeDevice(dv); err == nil {
						label = d.label
					}
				}
				labels[cm.DeviceID] = label
			}
			cm.DeviceLabel = label
			out = append(out, cm)
		}
		if k == nil {
			next = -1 // the end of the log
		}
		return nil
	})
	return out, next, err
}
