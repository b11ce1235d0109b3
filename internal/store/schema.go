package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// The schema: every bucket tallyd's bbolt file holds. Keys are big-endian
// where they are numbers, so cursors walk them in order.
//
//	meta                         server-wide: schema version
//	elections/<election id>/     one nested bucket per election, holding:
//	  info                       definition, state, roster hash and totals, running tally, log size and root
//	  records                    record id → log index of the entry that accepted it
//	  rejected                   SHA-256(body‖signature) → log index of a rejection (exact retries add nothing)
//	  log                        log index → LogEntry bytes (the leaf data, never re-encoded)
//	  loghash                    tlog storage index → hash (tlog.StoredHashes)
//	  devices                    device id → device (key, revocation, chain high-water marks)
//	  chain                      author id ‖ 0 ‖ seq → body hash ‖ prev hash
//	  grants                     SHA-256(token) → enrollment grant
//	  committee                  committee seq → log index of the committee record
//	  units                      unit id → roster unit
//	  owners                     owner key → number of units on the roster
//	  ballots                    unit id ‖ 0 ‖ record id → tally.Ballot
//	  outcome                    unit id → tally.UnitOutcome
//	  unitdecision               unit id → tally.UnitDecision
//	  ownerstate                 owner key → tally.OwnerState
//	  split                      owner key ‖ 0 ‖ item index → ∅ (split owners awaiting the committee)
//	  contested                  unit id → ∅ (contested, not adjudicated)
//	  progress                   unit id → unit progress for canvassers
//	  changes                    change seq → unit id (cursor for ListUnitStatus)
var (
	bucketMeta      = []byte("meta")
	bucketElections = []byte("elections")

	bucketInfo         = []byte("info")
	bucketRecords      = []byte("records")
	bucketRejected     = []byte("rejected")
	bucketLog          = []byte("log")
	bucketLogHash      = []byte("loghash")
	bucketDevices      = []byte("devices")
	bucketChain        = []byte("chain")
	bucketGrants       = []byte("grants")
	bucketCommittee    = []byte("committee")
	bucketUnits        = []byte("units")
	bucketOwners       = []byte("owners")
	bucketOwnerUnits   = []byte("ownerunits")
	bucketAuditors     = []byte("auditors")
	bucketBuildings    = []byte("buildings")
	bucketDevSync      = []byte("devsync")
	bucketBallots      = []byte("ballots")
	bucketOutcome      = []byte("outcome")
	bucketUnitDecision = []byte("unitdecision")
	bucketOwnerState   = []byte("ownerstate")
	bucketSplit        = []byte("split")
	bucketContested    = []byte("contested")
	bucketProgress     = []byte("progress")
	bucketChanges      = []byte("changes")
	bucketReceipts     = []byte("receipts")
)

// electionBuckets are created in every election's bucket.
var electionBuckets = [][]byte{
	bucketInfo, bucketRecords, bucketRejected, bucketLog, bucketLogHash,
	bucketDevices, bucketChain, bucketGrants, bucketCommittee, bucketUnits,
	bucketOwners, bucketBallots, bucketOutcome, bucketUnitDecision,
	bucketOwnerState, bucketSplit, bucketContested, bucketProgress, bucketChanges,
	bucketReceipts, bucketOwnerUnits, bucketAuditors, bucketBuildings, bucketDevSync,
}

// Keys in the info bucket.
var (
	keyDefinition  = []byte("definition")   // ElectionDefinition message bytes (from the signed record)
	keyState       = []byte("state")        // one byte: electionState
	keyRosterHash  = []byte("roster_hash")  // 32 bytes, set at open
	keyRosterArea  = []byte("roster_area")  // int64, set at open
	keyRosterHead  = []byte("roster_head")  // int64 distinct owners, set at open
	keyRosterUnits = []byte("roster_units") // int64
	keyOpenedAt    = []byte("opened_at")    // unix ms, set at open
	keyClosedAt    = []byte("closed_at")    // unix ms, set at close
	keyCertifiedAt = []byte("certified_at") // unix ms, set at certification
	keyTotals      = []byte("totals")       // tally.Totals
	keyLogSize     = []byte("log_size")     // int64
	keyLogRoot     = []byte("log_root")     // 32 bytes
	keyChangeSeq   = []byte("change_seq")   // uint64
)

// Keys in the meta bucket.
var keySchemaVersion = []byte("schema_version")

// schemaVersion is bumped when the layout changes; migrations bring older
// files up to it at open.
//
//	1  the first layout
//	2  ownerunits: each owner's units, for the split owners' list
//	3  auditors: the keys the committee granted read access
//	4  chain values and devices keep the hybrid clock (clock rule)
//	5  buildings (turnout by building) and devsync (devices' last push)
const schemaVersion = 5

// migrations[v] brings a file of version v to v+1, in the open
// transaction.
var migrations = map[uint64]func(tx *bolt.Tx) error{
	1: func(tx *bolt.Tx) error {
		return tx.Bucket(bucketElections).ForEachBucket(func(id []byte) error {
			eb := tx.Bucket(bucketElections).Bucket(id)
			oub, err := eb.CreateBucketIfNotExists(bucketOwnerUnits)
			if err != nil {
				return err
			}
			return eb.Bucket(bucketUnits).ForEach(func(k, v []byte) error {
				u, err := decodeUnit(v)
				if err != nil {
					return err
				}
				return oub.Put(join(u.OwnerKey, k), nil)
			})
		})
	},
}

func init() {
	// Turnout by building, counted from the roster and the outcomes so far.
	migrations[4] = func(tx *bolt.Tx) error {
		return tx.Bucket(bucketElections).ForEachBucket(func(id []byte) error {
			eb := tx.Bucket(bucketElections).Bucket(id)
			for _, name := range [][]byte{bucketBuildings, bucketDevSync} {
				if _, err := eb.CreateBucketIfNotExists(name); err != nil {
					return err
				}
			}
			if v := eb.Bucket(bucketInfo).Get(keyState); len(v) != 1 || rules.State(v[0]) < rules.StateOpen {
				return nil // counted at the open
			}
			return countBuildings(eb)
		})
	}
	// Devices grow their head's hybrid clock; chain values written before
	// keep none (0: not known), which the clock rule skips.
	migrations[3] = func(tx *bolt.Tx) error {
		return tx.Bucket(bucketElections).ForEachBucket(func(id []byte) error {
			db := tx.Bucket(bucketElections).Bucket(id).Bucket(bucketDevices)
			type kv struct{ k, v []byte }
			var out []kv
			err := db.ForEach(func(k, v []byte) error {
				const old = 32 + 1 + 8 + 8 + 32 + 8
				if len(v) < old {
					return errCorrupt
				}
				nv := make([]byte, 0, len(v)+8)
				nv = append(nv, v[:old]...)
				nv = append(nv, make([]byte, 8)...)
				nv = append(nv, v[old:]...)
				out = append(out, kv{append([]byte(nil), k...), nv})
				return nil
			})
			if err != nil {
				return err
			}
			for _, e := range out {
				if err := db.Put(e.k, e.v); err != nil {
					return err
				}
			}
			return nil
		})
	}
	migrations[2] = func(tx *bolt.Tx) error {
		return tx.Bucket(bucketElections).ForEachBucket(func(id []byte) error {
			_, err := tx.Bucket(bucketElections).Bucket(id).CreateBucketIfNotExists(bucketAuditors)
			return err
		})
	}
}

// upgrade checks the file's schema version and migrates it to this one.
func upgrade(tx *bolt.Tx) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	if _, err := tx.CreateBucketIfNotExists(bucketElections); err != nil {
		return err
	}
	v := meta.Get(keySchemaVersion)
	if v == nil {
		return meta.Put(keySchemaVersion, putU64(schemaVersion))
	}
	have := getU64(v)
	if have > schemaVersion {
		return fmt.Errorf("data file has schema version %d; this tallyd reads up to version %d: run a newer tallyd", have, schemaVersion)
	}
	for ; have < schemaVersion; have++ {
		m := migrations[have]
		if m == nil {
			return fmt.Errorf("data file has schema version %d, which this tallyd cannot migrate", have)
		}
		if err := m(tx); err != nil {
			return fmt.Errorf("migrate the data file from schema version %d: %w", have, err)
		}
	}
	return meta.Put(keySchemaVersion, putU64(schemaVersion))
}

// countBuildings sets every building's turnout counters from the roster and
// the units' outcomes.
func countBuildings(eb *bolt.Bucket) error {
	counts := map[string]*turnout{}
	ob := eb.Bucket(bucketOutcome)
	err := eb.Bucket(bucketUnits).ForEach(func(k, v []byte) error {
		u, err := decodeUnit(v)
		if err != nil {
			return err
		}
		c := counts[u.Building]
		if c == nil {
			c = &turnout{}
			counts[u.Building] = c
		}
		c.units++
		c.area += u.Area
		if ov := ob.Get(k); ov != nil {
			var o tally.UnitOutcome
			if err := o.UnmarshalBinary(ov); err != nil {
				return err
			}
			c.apply(u.Area, tally.UnitOutcome{}, o)
		}
		return nil
	})
	if err != nil {
		return err
	}
	bb := eb.Bucket(bucketBuildings)
	for b, c := range counts {
		if err := bb.Put(buildingKey(b), c.encode()); err != nil {
			return err
		}
	}
	return nil
}
