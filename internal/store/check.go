package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"runtime/debug"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// The offline check of a data file: everything the store keeps twice, or
// keeps as the sum of something else, recomputed from what it derives from
// and compared. It only reads; the server must be stopped (ViewFile), or
// the snapshot one of a live store.

// Finding is the outcome of one check: Problems is empty when it passed.
type Finding struct {
	// Election is the election checked; "" for the file as a whole.
	Election string
	// Check names what was compared: pages and schema for the file; for
	// an election schema, log, root, records, outcomes, owners, totals
	// and devices.
	Check string
	// Summary says what was checked, for a check that passed.
	Summary string
	// Problems say what differs, each naming the bucket it found it in;
	// at most maxProblems, Omitted counts the rest.
	Problems []string
	Omitted  int
}

// OK reports whether the check found nothing wrong.
func (f *Finding) OK() bool { return len(f.Problems) == 0 }

// maxProblems bounds the problems one finding lists.
const maxProblems = 10

func (f *Finding) problem(format string, args ...any) {
	if len(f.Problems) < maxProblems {
		f.Problems = append(f.Problems, fmt.Sprintf(format, args...))
		return
	}
	f.Omitted++
}

// guard runs one check, turning a panic of bbolt on a damaged page into a
// problem of that check.
func guard(f *Finding, fn func()) {
	defer func() {
		if r := recover(); r != nil {
			f.problem("could not be read to the end: %v", r)
		}
	}()
	fn()
}

// CheckFile checks the bbolt file at path, which no running tallyd may
// have open (ErrInUse), and returns one finding per check.
func CheckFile(path string) ([]Finding, error) {
	var out []Finding
	err := ViewFile(path, func(sn *Snapshot) error {
		out = sn.Check()
		return nil
	})
	return out, err
}

// Check runs every check on the snapshot: bbolt's own page check, then per
// election the log against its tree hashes and root, the stored records
// against the log, each unit's outcome, each owner's aggregate and the
// running totals against a recount, and each device's chain marks against
// its chain.
func (sn *Snapshot) Check() []Finding {
	// A damaged page can point reads outside the memory map: let that
	// fault be a panic the check recovers from and reports.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	tx := sn.tx
	pages := Finding{Check: "pages"}
	guard(&pages, func() {
		for err := range tx.Check() {
			pages.problem("%v", err)
		}
		pages.Summary = fmt.Sprintf("bbolt's check finds every page reachable once and the freelist sound (%d bytes)", tx.Size())
	})
	out := []Finding{pages}

	schema := Finding{Check: "schema"}
	var ids []string
	guard(&schema, func() {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			schema.problem("bucket meta is missing: this is not a tallyd data file")
		} else if v := getU64(meta.Get(keySchemaVersion)); v != schemaVersion {
			schema.problem("bucket meta says schema version %d; this tallyd checks version %d (start tallyd on the file once to migrate it)", v, schemaVersion)
		}
		eb := tx.Bucket(bucketElections)
		if eb == nil {
			schema.problem("bucket elections is missing")
			return
		}
		err := eb.ForEach(func(k, v []byte) error {
			if v != nil {
				schema.problem("bucket elections holds a value at %q where only election buckets belong", k)
				return nil
			}
			ids = append(ids, string(k))
			return nil
		})
		if err != nil {
			schema.problem("bucket elections: %v", err)
		}
		schema.Summary = fmt.Sprintf("schema version %d, %d elections", schemaVersion, len(ids))
	})
	out = append(out, schema)
	if !schema.OK() && len(ids) == 0 {
		return out
	}
	for _, id := range ids {
		out = append(out, checkElection(tx.Bucket(bucketElections), id)...)
	}
	return out
}

// electionCheck is what the checks of one election share.
type electionCheck struct {
	id  string
	eb  *bolt.Bucket
	def *election.Definition

	units     []election.Unit // the roster in unit id order
	byUnit    map[string][]tally.Ballot
	decisions map[string]tally.UnitDecision
	ownerDecs map[string][]tally.OwnerDecision
	outcomes  map[string]tally.UnitOutcome // recomputed
	owners    map[string]*tally.OwnerState // recomputed
}

func (c *electionCheck) bucket(name []byte) *bolt.Bucket { return c.eb.Bucket(name) }

func checkElection(elections *bolt.Bucket, id string) (out []Finding) {
	defer func() {
		if r := recover(); r != nil {
			out = append(out, Finding{Election: id, Check: "schema", Problems: []string{fmt.Sprintf("the election's buckets could not be read to the end: %v", r)}})
		}
	}()
	eb := elections.Bucket([]byte(id))
	c := &electionCheck{id: id, eb: eb}
	schema := Finding{Election: id, Check: "schema"}
	guard(&schema, func() {
		for _, name := range electionBuckets {
			if eb.Bucket(name) == nil {
				schema.problem("bucket %s is missing", name)
			}
		}
		if !schema.OK() {
			return
		}
		info := eb.Bucket(bucketInfo)
		def, _, err := decodeDefinition(info.Get(keyDefinition))
		if err != nil {
			schema.problem("info definition cannot be read: %v", err)
			return
		}
		c.def = def
		st := stateOf(info)
		if st < rules.StateDefined || st > rules.StateClosed {
			schema.problem("info state is %d, which is no election state", st)
		}
		schema.Summary = fmt.Sprintf("every bucket present; the definition is readable; state %s", stateName(st))
	})
	out = append(out, schema)
	out = append(out, c.checkLog()...)
	if c.def == nil {
		return out // nothing else can be read without the definition
	}
	for _, fn := range []func() Finding{c.checkRecords, c.checkOutcomes, c.checkTurnout, c.checkOwners, c.checkTotals, c.checkDevices} {
		out = append(out, fn())
	}
	return out
}

func stateOf(info *bolt.Bucket) rules.State {
	if v := info.Get(keyState); len(v) == 1 {
		return rules.State(v[0])
	}
	return rules.StateNone
}

func stateName(s rules.State) string {
	switch s {
	case rules.StateDefined:
		return "defined"
	case rules.StateOpen:
		return "open"
	case rules.StateClosed:
		return "closed"
	}
	return fmt.Sprint(s)
}

// checkLog recomputes the Merkle tree from the log entries: each entry's
// leaf and the tree hashes above it against bucket loghash (what inclusion
// and consistency proofs are made of), and the root against info log_root
// (what every checkpoint signs).
func (c *electionCheck) checkLog() []Finding {
	lf := Finding{Election: c.id, Check: "log"}
	rf := Finding{Election: c.id, Check: "root"}
	var size int64
	var fromEntries tlog.Hash
	complete := true
	guard(&lf, func() {
		info, lb, hb := c.bucket(bucketInfo), c.bucket(bucketLog), c.bucket(bucketLogHash)
		if info == nil || lb == nil || hb == nil {
			lf.problem("the log's buckets are missing (see schema)")
			complete = false
			return
		}
		size = getI64(info.Get(keyLogSize))
		stored := hashReader(hb)
		var fr frontier
		for i := int64(0); i < size; i++ {
			v := lb.Get(putI64(i))
			if v == nil {
				lf.problem("log entry %d is missing from bucket log", i)
				complete = false
				continue
			}
			if e, err := ballotlog.DecodeEntry(v); err != nil {
				lf.problem("log entry %d (bucket log) cannot be read: %v", i, err)
			} else if e.GetElectionId() != c.id {
				lf.problem("log entry %d (bucket log) is of election %q", i, e.GetElectionId())
			}
			leaf := ballotlog.LeafHash(v)
			fr.add(leaf)
			want, err := tlog.StoredHashesForRecordHash(i, leaf, stored)
			if err != nil {
				lf.problem("the tree hashes below log entry %d cannot be read from bucket loghash: %v", i, err)
				continue
			}
			base := tlog.StoredHashIndex(0, i)
			bad := 0
			for k, h := range want {
				if !bytes.Equal(hb.Get(putI64(base+int64(k))), h[:]) {
					bad++
				}
			}
			switch {
			case bad == 0:
			case !bytes.Equal(hb.Get(putI64(base)), leaf[:]):
				lf.problem("log entry %d (bucket log) does not hash to the leaf bucket loghash holds for it (storage index %d)", i, base)
			default:
				lf.problem("bucket loghash: %d of the tree hashes that log entry %d completes (storage index %d on) are not the hashes of their children", bad, i, base)
			}
		}
		if k, _ := lb.Cursor().Last(); k != nil && getI64(k) >= size {
			lf.problem("bucket log holds entries past the log's size %d (up to entry %d)", size, getI64(k))
		}
		if k, _ := hb.Cursor().Last(); k != nil && getI64(k) >= tlog.StoredHashCount(size) {
			lf.problem("bucket loghash holds hashes past those of %d entries (up to storage index %d)", size, getI64(k))
		}
		fromEntries = fr.root()
		lf.Summary = fmt.Sprintf("%d entries, each readable and hashing to the tree hashes stored above it", size)
	})
	guard(&rf, func() {
		info := c.bucket(bucketInfo)
		if info == nil {
			rf.problem("bucket info is missing")
			return
		}
		v := info.Get(keyLogRoot)
		var root tlog.Hash
		if len(v) != tlog.HashSize {
			rf.problem("info log_root is %d bytes, not a %d-byte hash", len(v), tlog.HashSize)
		}
		copy(root[:], v)
		if !complete {
			rf.problem("the root of the log cannot be recomputed: entries are missing")
		} else if fromEntries != root {
			rf.problem("info log_root %s, which checkpoints sign for size %d, is not the root %s of the entries in bucket log", root, size, fromEntries)
		}
		if fromTree, err := tlog.TreeHash(size, hashReader(c.bucket(bucketLogHash))); err != nil {
			rf.problem("the root cannot be read from bucket loghash: %v", err)
		} else if fromTree != root {
			rf.problem("the tree hashes in bucket loghash give root %s, not info log_root %s: proofs would not match the checkpoints", fromTree, root)
		}
		rf.Summary = fmt.Sprintf("checkpoint size %d, root %s: the root of the entries, as the store signs it", size, root)
	})
	return []Finding{lf, rf}
}

// frontier computes an RFC 6962 tree's root from its leaves in order,
// keeping only the roots of the complete subtrees so far (one per bit of
// the size): memory is logarithmic in the log.
type frontier struct {
	hashes []tlog.Hash
	sizes  []int64
}

func (f *frontier) add(leaf tlog.Hash) {
	f.hashes, f.sizes = append(f.hashes, leaf), append(f.sizes, 1)
	for n := len(f.sizes); n >= 2 && f.sizes[n-1] == f.sizes[n-2]; n = len(f.sizes) {
		f.hashes[n-2] = tlog.NodeHash(f.hashes[n-2], f.hashes[n-1])
		f.sizes[n-2] *= 2
		f.hashes, f.sizes = f.hashes[:n-1], f.sizes[:n-1]
	}
}

// root folds the subtrees from the right, as RFC 6962's MTH splits a tree
// at the largest power of two below its size.
func (f *frontier) root() tlog.Hash {
	if len(f.hashes) == 0 {
		return tlog.Hash{}
	}
	h := f.hashes[len(f.hashes)-1]
	for i := len(f.hashes) - 2; i >= 0; i-- {
		h = tlog.NodeHash(f.hashes[i], h)
	}
	return h
}

// checkRecords ties buckets records and ballots to the log: every accepted
// record id names a log entry holding that record, every accepted ballot
// is in bucket ballots, and every stored ballot is what its log entry's
// signed body says (unit, device, clock, what it supersedes, and its marks
// as the definition reads them). The recount reads the ballots it checked.
func (c *electionCheck) checkRecords() Finding {
	f := Finding{Election: c.id, Check: "records"}
	c.byUnit = map[string][]tally.Ballot{}
	guard(&f, func() {
		info, lb, rb, bb := c.bucket(bucketInfo), c.bucket(bucketLog), c.bucket(bucketRecords), c.bucket(bucketBallots)
		size := getI64(info.Get(keyLogSize))
		entryRecord := func(idx int64) (*doorstepv1.Record, error) {
			if idx < 0 || idx >= size {
				return nil, fmt.Errorf("log entry %d is past the log's %d entries", idx, size)
			}
			e, err := readEntry(lb, idx)
			if err != nil {
				return nil, err
			}
			if e.GetRecord() == nil {
				return nil, fmt.Errorf("log entry %d holds no record", idx)
			}
			return signed.Decode(e.GetRecord().GetBody())
		}
		accepted, nballots := 0, 0
		err := rb.ForEach(func(k, v []byte) error {
			accepted++
			rid, idx := string(k), getI64(v)
			rec, err := entryRecord(idx)
			if err != nil {
				f.problem("bucket records maps %s to log entry %d: %v", rid, idx, err)
				return nil
			}
			if rec.GetRecordId() != rid {
				f.problem("bucket records maps %s to log entry %d, which holds record %s", rid, idx, rec.GetRecordId())
				return nil
			}
			if b := rec.GetBallot(); b != nil && bb.Get(join(b.GetUnitId(), k)) == nil {
				f.problem("accepted ballot %s of unit %s (log entry %d) is missing from bucket ballots", rid, b.GetUnitId(), idx)
			}
			return nil
		})
		if err != nil {
			f.problem("bucket records: %v", err)
		}
		units := c.bucket(bucketUnits)
		err = bb.ForEach(func(k, v []byte) error {
			nballots++
			i := bytes.IndexByte(k, 0)
			if i < 0 {
				f.problem("bucket ballots holds a key %q that names no unit", k)
				return nil
			}
			unit, rid := string(k[:i]), string(k[i+1:])
			var b tally.Ballot
			if err := b.UnmarshalBinary(v); err != nil {
				f.problem("ballot %s of unit %s (bucket ballots) cannot be read: %v", rid, unit, err)
				return nil
			}
			if units.Get([]byte(unit)) == nil {
				f.problem("ballot %s (bucket ballots) is for unit %s, which is not on the roster (bucket units)", rid, unit)
			}
			idx := rb.Get([]byte(rid))
			if idx == nil {
				f.problem("ballot %s of unit %s (bucket ballots) is not an accepted record (bucket records)", rid, unit)
				return nil
			}
			rec, err := entryRecord(getI64(idx))
			if err != nil {
				f.problem("ballot %s of unit %s: %v", rid, unit, err)
				return nil
			}
			if diff := ballotDiff(c.def, rec, unit, &b); diff != "" {
				f.problem("ballot %s of unit %s (bucket ballots) differs from log entry %d: %s", rid, unit, getI64(idx), diff)
				return nil
			}
			c.byUnit[unit] = append(c.byUnit[unit], b)
			return nil
		})
		if err != nil {
			f.problem("bucket ballots: %v", err)
		}
		f.Summary = fmt.Sprintf("%d accepted records in the log as bucket records says; %d ballots, each as its signed record says", accepted, nballots)
	})
	return f
}

// ballotDiff says how a stored ballot differs from the signed record it
// came from, or "".
func ballotDiff(def *election.Definition, rec *doorstepv1.Record, unit string, b *tally.Ballot) string {
	pb := rec.GetBallot()
	if pb == nil {
		return "the entry's record is not a ballot"
	}
	var diffs []string
	if rec.GetRecordId() != b.RecordID {
		diffs = append(diffs, fmt.Sprintf("record id %s, stored %s", rec.GetRecordId(), b.RecordID))
	}
	if pb.GetUnitId() != unit {
		diffs = append(diffs, fmt.Sprintf("unit %s", pb.GetUnitId()))
	}
	if rec.GetAuthorId() != b.DeviceID {
		diffs = append(diffs, fmt.Sprintf("device %s, stored %s", rec.GetAuthorId(), b.DeviceID))
	}
	if rec.GetHlc() != b.HLC {
		diffs = append(diffs, fmt.Sprintf("clock %d, stored %d", rec.GetHlc(), b.HLC))
	}
	if pb.GetSupersedes() != b.Supersedes {
		diffs = append(diffs, fmt.Sprintf("supersedes %q, stored %q", pb.GetSupersedes(), b.Supersedes))
	}
	if form, _ := rules.CheckForm(def, rec, false); !form.Marks.Equal(b.Marks) {
		diffs = append(diffs, "the marks differ")
	}
	return strings.Join(diffs, "; ")
}

// checkOutcomes reconciles every unit again from the ballots checked
// against the log and the committee's decision, and compares with bucket
// outcome and with the contested list.
func (c *electionCheck) checkOutcomes() Finding {
	f := Finding{Election: c.id, Check: "outcomes"}
	c.outcomes = map[string]tally.UnitOutcome{}
	c.decisions = map[string]tally.UnitDecision{}
	guard(&f, func() {
		err := c.bucket(bucketUnits).ForEach(func(_, v []byte) error {
			u, err := decodeUnit(v)
			if err != nil {
				return err
			}
			c.units = append(c.units, u)
			return nil
		})
		if err != nil {
			f.problem("bucket units cannot be read: %v", err)
			return
		}
		onRoster := make(map[string]bool, len(c.units))
		for _, u := range c.units {
			onRoster[u.ID] = true
		}
		err = c.bucket(bucketUnitDecision).ForEach(func(k, v []byte) error {
			d, err := decodeUnitDecision(v)
			if err != nil {
				f.problem("the decision on unit %s (bucket unitdecision) cannot be read: %v", k, err)
				return nil
			}
			if !onRoster[string(k)] {
				f.problem("bucket unitdecision settles unit %s, which is not on the roster", k)
			}
			c.decisions[string(k)] = d
			return nil
		})
		if err != nil {
			f.problem("bucket unitdecision: %v", err)
		}
		ob, cb := c.bucket(bucketOutcome), c.bucket(bucketContested)
		held := 0
		for _, u := range c.units {
			bs := c.byUnit[u.ID]
			d, decided := c.decisions[u.ID]
			if len(bs) == 0 && !decided {
				continue
			}
			var dp *tally.UnitDecision
			if decided {
				dp = &d
			}
			out := tally.ReconcileUnit(c.def.Policy, bs, dp)
			c.outcomes[u.ID] = out
			want, err := out.MarshalBinary()
			if err != nil {
				f.problem("unit %s: its ballots reconcile to an outcome that cannot be stored: %v", u.ID, err)
				continue
			}
			switch v := ob.Get([]byte(u.ID)); {
			case v == nil:
				f.problem("unit %s has %d ballots but no outcome in bucket outcome", u.ID, len(bs))
			case !bytes.Equal(v, want):
				var got tally.UnitOutcome
				if err := got.UnmarshalBinary(v); err != nil {
					f.problem("the outcome of unit %s (bucket outcome) cannot be read: %v", u.ID, err)
				} else {
					f.problem("unit %s: bucket outcome says it %s; its %d ballots reconcile to: it %s", u.ID, describeOutcome(got), len(bs), describeOutcome(out))
				}
			}
			isHeld := out.Contested && !out.Adjudicated
			if isHeld {
				held++
			}
			if inList := cb.Get([]byte(u.ID)) != nil; inList != isHeld {
				if isHeld {
					f.problem("unit %s is contested and unsettled but missing from bucket contested", u.ID)
				} else {
					f.problem("unit %s is in bucket contested but is not contested and unsettled", u.ID)
				}
			}
		}
		err = ob.ForEach(func(k, _ []byte) error {
			if _, ok := c.outcomes[string(k)]; !ok {
				f.problem("bucket outcome holds an outcome for unit %s, which has no ballot and no decision", k)
			}
			return nil
		})
		if err != nil {
			f.problem("bucket outcome: %v", err)
		}
		err = cb.ForEach(func(k, _ []byte) error {
			if _, ok := c.outcomes[string(k)]; !ok {
				f.problem("bucket contested lists unit %s, which has no ballot", k)
			}
			return nil
		})
		if err != nil {
			f.problem("bucket contested: %v", err)
		}
		f.Summary = fmt.Sprintf("%d units with ballots or a decision reconcile to their stored outcome; %d held as contested", len(c.outcomes), held)
	})
	return f
}

func describeOutcome(o tally.UnitOutcome) string {
	var b strings.Builder
	if o.Counted {
		fmt.Fprintf(&b, "counts ballot %s", o.CountedID)
	} else {
		b.WriteString("counts no ballot")
	}
	fmt.Fprintf(&b, " of %d live", len(o.Live))
	for _, s := range []struct {
		on   bool
		word string
	}{{o.Contested, "contested"}, {o.Double, "double visit"}, {o.Adjudicated, "adjudicated"}} {
		if s.on {
			b.WriteString(", " + s.word)
		}
	}
	return b.String()
}

// checkOwners rebuilds every owner's aggregate from the recomputed unit
// outcomes and the committee's decisions on split owners (read from the
// committee records in the log) and compares with buckets ownerstate and
// split.
func (c *electionCheck) checkOwners() Finding {
	f := Finding{Election: c.id, Check: "owners"}
	c.owners = map[string]*tally.OwnerState{}
	c.ownerDecs = map[string][]tally.OwnerDecision{}
	own := func(key string) *tally.OwnerState {
		o := c.owners[key]
		if o == nil {
			o = tally.NewOwnerState(c.def)
			c.owners[key] = o
		}
		return o
	}
	guard(&f, func() {
		for _, u := range c.units {
			if out, ok := c.outcomes[u.ID]; ok && out.Counted {
				own(u.OwnerKey).AddUnit(u.Area, out.Marks)
			}
		}
		lb := c.bucket(bucketLog)
		decisions := 0
		err := c.bucket(bucketCommittee).ForEach(func(k, v []byte) error {
			e, err := readEntry(lb, getI64(v))
			if err != nil {
				f.problem("committee record %d (bucket committee): %v", getU64(k), err)
				return nil
			}
			rec, err := signed.Decode(e.GetRecord().GetBody())
			if err != nil {
				f.problem("committee record %d (log entry %d) cannot be read: %v", getU64(k), getI64(v), err)
				return nil
			}
			o := rec.GetCommittee().GetAdjudication().GetOwner()
			if o == nil {
				return nil
			}
			item, mark, _ := rules.OwnerMark(c.def, o)
			d := tally.OwnerDecision{Seq: rec.GetAuthorSeq(), Item: item, Mark: mark}
			own(o.GetOwnerKey()).SetDecision(d)
			c.ownerDecs[o.GetOwnerKey()] = append(c.ownerDecs[o.GetOwnerKey()], d)
			decisions++
			return nil
		})
		if err != nil {
			f.problem("bucket committee: %v", err)
		}
		empty, err := tally.NewOwnerState(c.def).MarshalBinary()
		if err != nil {
			f.problem("%v", err)
			return
		}
		sb := c.bucket(bucketOwnerState)
		wantSplit := map[string]bool{}
		for key, o := range c.owners {
			want, err := o.MarshalBinary()
			if err != nil {
				f.problem("owner %s: the recount cannot be stored: %v", key, err)
				continue
			}
			got := sb.Get([]byte(key))
			if got == nil {
				got = empty
			}
			if !bytes.Equal(got, want) {
				f.problem("owner %s: bucket ownerstate differs from the aggregate of the owner's counted units and the committee's decisions", key)
			}
			for _, i := range o.Contribution(c.def).Split {
				wantSplit[string(join(key, putU64(uint64(i))))] = true
			}
		}
		err = sb.ForEach(func(k, v []byte) error {
			if _, ok := c.owners[string(k)]; !ok && !bytes.Equal(v, empty) {
				f.problem("owner %s: bucket ownerstate holds counted units or a decision, but none of the owner's units counts and no decision names the owner", k)
			}
			return nil
		})
		if err != nil {
			f.problem("bucket ownerstate: %v", err)
		}
		split := 0
		err = c.bucket(bucketSplit).ForEach(func(k, _ []byte) error {
			split++
			if !wantSplit[string(k)] {
				owner, item := splitKey(k)
				f.problem("bucket split lists owner %s as split on item %d, but the owner's units agree or a decision settles it", owner, item)
			}
			return nil
		})
		if err != nil {
			f.problem("bucket split: %v", err)
		}
		for k := range wantSplit {
			if c.bucket(bucketSplit).Get([]byte(k)) == nil {
				owner, item := splitKey([]byte(k))
				f.problem("owner %s is split on item %d, but bucket split does not list it", owner, item)
			}
		}
		f.Summary = fmt.Sprintf("%d owners with counted units or decisions (%d decisions) match bucket ownerstate; %d split", len(c.owners), decisions, split)
	})
	return f
}

// checkTotals recounts the running tally from the recomputed outcomes and
// owner aggregates and compares it byte for byte with info totals; it also
// compares what the stored totals decide with the batch reference
// (tally.Compute over the checked ballots and decisions).
func (c *electionCheck) checkTotals() Finding {
	f := Finding{Election: c.id, Check: "totals"}
	guard(&f, func() {
		info := c.bucket(bucketInfo)
		stored := info.Get(keyTotals)
		if stored == nil {
			if stateOf(info) <= rules.StateDefined && len(c.byUnit) == 0 {
				f.Summary = "not open yet: no totals"
			} else {
				f.problem("info totals is missing, though the election is %s", stateName(stateOf(info)))
			}
			return
		}
		area, head := getI64(info.Get(keyRosterArea)), int(getI64(info.Get(keyRosterHead)))
		roster, err := election.NewRoster(c.units)
		if err != nil {
			f.problem("the roster in bucket units is not valid: %v", err)
			return
		}
		if roster.TotalArea() != area || roster.Headcount() != head || len(c.units) != int(getI64(info.Get(keyRosterUnits))) {
			f.problem("info holds a roster of %d units, area %d, %d owners; bucket units holds %d units, area %d, %d owners",
				getI64(info.Get(keyRosterUnits)), area, head, len(c.units), roster.TotalArea(), roster.Headcount())
		}
		if h := election.HashUnits(roster.Units()); !bytes.Equal(info.Get(keyRosterHash), h[:]) {
			f.problem("info roster_hash is not the hash of the units in bucket units")
		}
		t := tally.NewTotals(c.def)
		t.SetRosterUnits(int(getI64(info.Get(keyRosterUnits))))
		for _, u := range c.units {
			if out, ok := c.outcomes[u.ID]; ok {
				t.ApplyUnit(tally.UnitOutcome{}, out)
			}
		}
		keys := make([]string, 0, len(c.owners))
		for k := range c.owners {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			t.Add(c.owners[k].Contribution(c.def))
		}
		want, err := t.MarshalBinary()
		if err != nil {
			f.problem("the recount cannot be stored: %v", err)
			return
		}
		got := tally.NewTotals(c.def)
		if err := got.UnmarshalBinary(stored); err != nil {
			f.problem("info totals cannot be read: %v", err)
			return
		}
		if err := got.Fits(c.def); err != nil {
			f.problem("info totals do not fit the definition: %v", err)
			return
		}
		decided := tally.Decide(c.def, area, head, got)
		if !bytes.Equal(stored, want) {
			recount := tally.Decide(c.def, area, head, t)
			diffs := resultDiff(decided, recount)
			if len(diffs) == 0 {
				diffs = []string{fmt.Sprintf("%d bytes stored, %d recounted", len(stored), len(want))}
			}
			for _, d := range diffs {
				f.problem("info totals differ from a recount of the stored ballots: %s", d)
			}
		}
		batch, _ := tally.Compute(c.def, roster, c.byUnit, c.decisions, c.ownerDecs)
		if a, b := decided.CanonicalJSON(), batch.CanonicalJSON(); !bytes.Equal(a, b) {
			for _, d := range resultDiff(decided, batch) {
				f.problem("the tally info totals decide differs from the batch recount (tally.Compute): %s", d)
			}
		}
		f.Summary = fmt.Sprintf("info totals equal a recount of %d counted units; the tally they decide equals the batch recount", decided.UnitsCounted)
	})
	return f
}

// resultDiff lists how two tallies differ, as "what: stored X, recounted Y".
func resultDiff(stored, recount tally.Result) []string {
	var out []string
	num := func(what string, a, b int64) {
		if a != b {
			out = append(out, fmt.Sprintf("%s: stored %d, recounted %d", what, a, b))
		}
	}
	count := func(what string, a, b tally.Count) {
		if a != b {
			out = append(out, fmt.Sprintf("%s: stored %d owners / area %d, recounted %d / %d", what, a.Headcount, a.Area, b.Headcount, b.Area))
		}
	}
	num("roster units", int64(stored.RosterUnits), int64(recount.RosterUnits))
	num("units counted", int64(stored.UnitsCounted), int64(recount.UnitsCounted))
	num("units contested", int64(stored.UnitsContested), int64(recount.UnitsContested))
	num("units double", int64(stored.UnitsDouble), int64(recount.UnitsDouble))
	for i := range min(len(stored.Items), len(recount.Items)) {
		a, b := &stored.Items[i], &recount.Items[i]
		p := "item " + a.ItemID + " "
		count(p+"participating", a.Participating, b.Participating)
		count(p+"yes", a.Yes, b.Yes)
		count(p+"no", a.No, b.No)
		count(p+"abstain", a.Abstain, b.Abstain)
		count(p+"invalid", a.Invalid, b.Invalid)
		num(p+"held headcount", a.HeldHeadcount, b.HeldHeadcount)
		sup := func(r *tally.ItemResult) map[string]tally.Count {
			m := map[string]tally.Count{}
			for _, c := range r.Candidates {
				m[c.CandidateID] = c.Support
			}
			return m
		}
		sa, sb := sup(a), sup(b)
		for _, cand := range a.Candidates {
			count(p+"candidate "+cand.CandidateID, sa[cand.CandidateID], sb[cand.CandidateID])
		}
		if a.Outcome != b.Outcome {
			out = append(out, fmt.Sprintf("%soutcome: stored %s, recounted %s", p, a.Outcome, b.Outcome))
		}
	}
	return out
}

// checkDevices walks bucket chain once, author by author in key order,
// and compares each author's high-water marks in bucket devices with what
// the chain holds: the highest number with every number below it held,
// that record's body hash, and the highest number held. It also checks
// that neighbouring records link (each names the body hash of the one
// before it).
func (c *electionCheck) checkDevices() Finding {
	f := Finding{Election: c.id, Check: "devices"}
	guard(&f, func() {
		devs := map[string]*device{}
		err := c.bucket(bucketDevices).ForEach(func(k, v []byte) error {
			d, err := decodeDevice(v)
			if err != nil {
				f.problem("device %s (bucket devices) cannot be read: %v", k, err)
				return nil
			}
			devs[string(k)] = d
			return nil
		})
		if err != nil {
			f.problem("bucket devices: %v", err)
		}
		type walk struct {
			author     string
			contiguous uint64
			contigHash []byte
			contigHLC  uint64
			gap        bool
			max        uint64
			prevBody   []byte
		}
		seen := map[string]bool{}
		records := 0
		finish := func(w *walk) {
			if w == nil {
				return
			}
			seen[w.author] = true
			d := devs[w.author]
			if d == nil {
				f.problem("bucket chain holds records of %s, which bucket devices does not know", w.author)
				return
			}
			if d.contiguous != w.contiguous || d.maxSeq != w.max || !bytes.Equal(d.contigHash, w.contigHash) {
				f.problem("device %s: bucket devices says records 1 to %d held (hash %x), highest %d; bucket chain holds 1 to %d (hash %x), highest %d",
					w.author, d.contiguous, short(d.contigHash), d.maxSeq, w.contiguous, short(w.contigHash), w.max)
			} else if d.contigHLC != w.contigHLC {
				f.problem("device %s: bucket devices says record %d has clock %d; bucket chain says %d", w.author, d.contiguous, d.contigHLC, w.contigHLC)
			}
		}
		var cur *walk
		cr := c.bucket(bucketChain).Cursor()
		for k, v := cr.First(); k != nil; k, v = cr.Next() {
			records++
			if len(k) < 10 || k[len(k)-9] != 0 {
				f.problem("bucket chain holds a key %q that is not author and number", k)
				continue
			}
			author, seq := string(k[:len(k)-9]), binary.BigEndian.Uint64(k[len(k)-8:])
			// Two hashes and, since schema 4, the record's hybrid clock.
			if len(v) != 64 && len(v) != 72 {
				f.problem("record %d of %s (bucket chain) is %d bytes, not two hashes and a clock", seq, author, len(v))
				continue
			}
			if cur == nil || cur.author != author {
				finish(cur)
				cur = &walk{author: author}
			}
			if seq == cur.max+1 && cur.max > 0 && !bytes.Equal(v[32:64], cur.prevBody) {
				f.problem("record %d of %s (bucket chain) does not name record %d held before it", seq, author, cur.max)
			}
			if !cur.gap && seq == cur.contiguous+1 {
				cur.contiguous, cur.contigHash, cur.contigHLC = seq, v[:32], chainHLC(v)
			} else {
				cur.gap = true
			}
			cur.max, cur.prevBody = seq, v[:32]
		}
		finish(cur)
		for id, d := range devs {
			if !seen[id] && (d.contiguous != 0 || d.maxSeq != 0) {
				f.problem("device %s: bucket devices says records 1 to %d held, highest %d; bucket chain holds none", id, d.contiguous, d.maxSeq)
			}
		}
		f.Summary = fmt.Sprintf("%d authors (the committee one of them) with %d chain records: their marks match their chains", len(devs), records)
	})
	return f
}

// short is the first bytes of a hash, for messages.
func short(h []byte) []byte { return h[:min(len(h), 6)] }
