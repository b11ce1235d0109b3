package audit

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// The replay re-makes the server's decisions in log order under the rules
// of api/SPEC.md ("Re-deciding the log"). It follows the server where the
// server's own earlier decisions fix the state (a record accepted against
// the rules still occupies its place in its author's chain, and an open or
// close still takes effect), so that one wrong decision is reported once
// rather than once per later record; but a record it finds should not have
// been accepted is never counted.

// maxFindings bounds the discrepancies kept; the rest are only counted.
const maxFindings = 1000

// maxStatusCheck bounds the ballots of one unit for which the verifier
// re-derives each ballot's status on arrival (quadratic in the unit's
// ballots); real units have a handful.
const maxStatusCheck = 1000

// slot is a record's place in its author's chain.
type slot struct {
	body, prev [32]byte
	hlc        uint64
	entry      int64
	ok         bool
}

// chain holds an author's slots by sequence number: densely for the
// numbers a real device uses, in a map beyond that.
type chain struct {
	dense  []slot // dense[i] is seq i+1
	sparse map[uint64]*slot
	// seen holds verified records that took no slot (rejected forks,
	// revoked records): they are in the log, so their number is no gap.
	seen map[uint64]int64
	max  uint64 // highest seq with a slot
	// maxSeen is the highest seq of any verified record of the author.
	maxSeen uint64
}

const denseSlack = 1 << 16

func (c *chain) get(seq uint64) *slot {
	if seq == 0 {
		return nil
	}
	if seq <= uint64(len(c.dense)) {
		if s := &c.dense[seq-1]; s.ok {
			return s
		}
		return nil
	}
	return c.sparse[seq]
}

func (c *chain) put(seq uint64, s slot) {
	s.ok = true
	switch {
	case seq <= uint64(len(c.dense)):
		c.dense[seq-1] = s
	case seq <= uint64(len(c.dense))+denseSlack:
		c.dense = append(c.dense, make([]slot, int(seq)-len(c.dense))...)
		c.dense[seq-1] = s
	default:
		if c.sparse == nil {
			c.sparse = make(map[uint64]*slot)
		}
		c.sparse[seq] = &s
	}
	c.max = max(c.max, seq)
	c.maxSeen = max(c.maxSeen, seq)
}

func (c *chain) markSeen(seq uint64, entry int64) {
	if c.get(seq) != nil {
		return
	}
	if c.seen == nil {
		c.seen = make(map[uint64]int64)
	}
	if _, ok := c.seen[seq]; !ok {
		c.seen[seq] = entry
	}
	c.maxSeen = max(c.maxSeen, seq)
}

// author is a device or the committee as the log has made it known.
type author struct {
	id           string
	pub          ed25519.PublicKey
	label        string
	entry        int64 // enrollment (or definition) entry
	revoked      bool
	revokedAfter uint64
	chain        chain
}

type grant struct {
	expires time.Time
	used    bool
}

// Stats counts what the replay saw.
type Stats struct {
	Entries          int64
	Records          int64 // signed records (entries other than enrollments)
	SignaturesOK     int64 // records whose signature verified
	Ballots          int64 // accepted ballots the replay upholds: the tally's input
	Visits           int64
	CommitteeRecords int64
	Enrollments      int64
	Rejected         int64            // entries the server rejected
	RejectedBy       map[string]int64 // by reason code name
}

// replay is the verifier's state while it walks the log.
type replay struct {
	electionID string // expected; taken from entry 0 when empty
	keys       *keyring

	findings []Discrepancy
	omitted  int
	stats    Stats
	// indexDelta is how far the last entry's log_index was from its place.
	indexDelta int64

	def            *election.Definition
	defProto       *doorstepv1.ElectionDefinition
	state          rules.State
	closedAt       time.Time
	units          map[string]election.Unit
	owners         map[string]bool
	roster         *election.Roster
	imported       *election.Roster // built from units for the open, until it happens
	rosterHash     [32]byte
	openHash       []byte
	grants         map[string]*grant // by grant record id
	grantTokens    map[string]bool
	auditors       map[string]bool // auditor id → revoked
	certified      []byte          // the tally hash the committee certified, if it did
	certifiedAt    *doorstepv1.LogEntry
	authors        map[string]*author
	devices        []*author // in enrollment order
	recordIDs      map[uuid.UUID]int64
	ballots        map[string][]tally.Ballot
	unitDecisions  map[string]tally.UnitDecision
	ownerDecisions map[string][]tally.OwnerDecision
	visited        map[string]bool
	marks          map[string]election.Marks // interned: most ballots repeat a few answers

	// watch, when set, sees every record entry after the replay judged it;
	// counted says whether the replay counts it.
	watch func(idx int64, d *decoded, counted bool)
}

// newReplay starts a replay; entries is the expected log size, for sizing.
func newReplay(electionID string, keys *keyring, entries int64) *replay {
	return &replay{
		electionID:     electionID,
		keys:           keys,
		units:          make(map[string]election.Unit),
		owners:         make(map[string]bool),
		grants:         make(map[string]*grant),
		grantTokens:    make(map[string]bool),
		auditors:       make(map[string]bool),
		authors:        make(map[string]*author),
		recordIDs:      make(map[uuid.UUID]int64, min(max(entries, 0), 1<<22)),
		ballots:        make(map[string][]tally.Ballot),
		unitDecisions:  make(map[string]tally.UnitDecision),
		ownerDecisions: make(map[string][]tally.OwnerDecision),
		visited:        make(map[string]bool),
		marks:          make(map[string]election.Marks),
		stats:          Stats{RejectedBy: make(map[string]int64)},
	}
}

func (r *replay) add(d Discrepancy) {
	if len(r.findings) >= maxFindings {
		r.omitted++
		return
	}
	r.findings = append(r.findings, d)
}

// findf reports a discrepancy about one entry.
func (r *replay) findf(entry int64, who string, seq uint64, field, format string, args ...any) {
	r.add(Discrepancy{Entry: entry, Author: who, Seq: seq, Field: field, Msg: fmt.Sprintf(format, args...)})
}

// entry judges one log entry.
func (r *replay) entry(idx int64, d *decoded) {
	r.stats.Entries++
	if d.entryErr != nil {
		r.findf(idx, "", 0, "entry", "is not a log entry: %v", d.entryErr)
		return
	}
	e := d.entry
	if r.electionID == "" && idx == 0 {
		r.electionID = e.GetElectionId()
	}
	if e.GetElectionId() != r.electionID {
		r.findf(idx, "", 0, "election_id", "the entry is for election %q, not %q", e.GetElectionId(), r.electionID)
	}
	res := e.GetResult()
	if res == nil {
		r.findf(idx, "", 0, "result", "the entry has no decision")
		res = &doorstepv1.RecordResult{LogIndex: uint64(idx)}
	}
	// After a dropped or added entry every later one is off by the same
	// amount; only a change of the offset is news.
	if delta := int64(res.GetLogIndex()) - idx; delta != r.indexDelta {
		if delta != 0 {
			r.findf(idx, "", 0, "result.log_index", "the entry says it is entry %d but is number %d in the log: entries were dropped, added or reordered (later entries off by as much are not listed)", res.GetLogIndex(), idx)
		}
		r.indexDelta = delta
	}
	if en := e.GetEnrollment(); en != nil {
		r.enrollment(idx, e, en, res)
		return
	}
	r.stats.Records++
	if idx == 0 {
		r.define(idx, d, res)
		return
	}
	if r.def == nil {
		return // reported at entry 0: nothing can be judged without the rules
	}
	counted := r.record(idx, d, res)
	if r.watch != nil {
		r.watch(idx, d, counted)
	}
}

func isAccepted(s doorstepv1.RecordStatus) bool {
	switch s {
	case doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED, doorstepv1.RecordStatus_RECORD_STATUS_DUPLICATE,
		doorstepv1.RecordStatus_RECORD_STATUS_SUPERSEDED, doorstepv1.RecordStatus_RECORD_STATUS_CONTESTED:
		return true
	}
	return false
}

// define judges entry 0, which must be the committee's definition: the
// root of trust, signed by the key it names.
func (r *replay) define(idx int64, d *decoded, res *doorstepv1.RecordResult) {
	fail := func(format string, args ...any) {
		r.findf(idx, election.CommitteeAuthor, 1, "definition", "entry 0 must be the election definition accepted from the committee: "+format+"; nothing else can be checked", args...)
	}
	if d.recErr != nil {
		fail("the record does not decode: %v", d.recErr)
		return
	}
	pd := d.rec.GetCommittee().GetDefineElection()
	switch {
	case pd == nil:
		fail("it is not a define_election record")
		return
	case d.rec.GetAuthorId() != election.CommitteeAuthor || d.rec.GetAuthorSeq() != 1:
		fail("it is by %q number %d, not the committee's number 1", d.rec.GetAuthorId(), d.rec.GetAuthorSeq())
		return
	case res.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED:
		fail("its status is %v", res.GetStatus())
		return
	}
	def, err := rules.Definition(pd)
	if err != nil {
		fail("the definition is invalid: %v", err)
		return
	}
	if def.ID != d.rec.GetElectionId() || def.ID != r.electionID {
		fail("it defines election %q in a record for %q (the record folder is for %q)", def.ID, d.rec.GetElectionId(), r.electionID)
		return
	}
	sr := d.entry.GetRecord()
	if err := signed.Verify(def.CommitteeKey, sr); err != nil {
		fail("its signature does not verify with the committee key it names")
		return
	}
	r.stats.SignaturesOK++
	r.stats.CommitteeRecords++
	r.def, r.defProto, r.state = def, pd, rules.StateDefined
	r.keys.def.Store(def)
	a := &author{id: election.CommitteeAuthor, pub: def.CommitteeKey, label: "election committee", entry: idx}
	a.chain.put(1, slot{body: d.bodyHash, hlc: d.rec.GetHlc(), entry: idx})
	r.authors[a.id] = a
	if id, err := uuid.Parse(d.rec.GetRecordId()); err == nil {
		r.recordIDs[id] = idx
	}
}

// enrollment judges a device enrollment entry.
func (r *replay) enrollment(idx int64, e *doorstepv1.LogEntry, en *doorstepv1.DeviceEnrollment, res *doorstepv1.RecordResult) {
	id := en.GetDeviceId()
	if res.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		r.findf(idx, id, 0, "result.status", "an enrollment entry records an enrollment that happened; its status is %v, not ACCEPTED", res.GetStatus())
		return
	}
	r.stats.Enrollments++
	if r.def == nil {
		return
	}
	pub := en.GetDevicePublicKey()
	if len(pub) != ed25519.PublicKeySize {
		r.findf(idx, id, 0, "enrollment.device_public_key", "is %d bytes, not an ed25519 public key", len(pub))
		return
	}
	if want := rules.DeviceID(pub); id != want {
		r.findf(idx, id, 0, "enrollment.device_id", "is %q, but the key's device id is %q", id, want)
	}
	if _, dup := r.authors[id]; dup {
		r.findf(idx, id, 0, "enrollment.device_id", "%q is already enrolled (entry %d): a device id names one key", id, r.authors[id].entry)
		return
	}
	if r.state >= rules.StateClosed {
		r.findf(idx, id, 0, "enrollment", "the election was closed: no device may enroll after the close")
	}
	if err := election.CheckText("enrollment.label", en.GetLabel(), election.MaxTitleLen); err != nil {
		r.findf(idx, id, 0, "enrollment.label", "%v", err)
	}
	g := r.grants[en.GetGrantRecordId()]
	switch {
	case g == nil:
		r.findf(idx, id, 0, "enrollment.grant_record_id", "%q is not an enrollment grant the committee signed earlier in the log", en.GetGrantRecordId())
	case g.used:
		r.findf(idx, id, 0, "enrollment.grant_record_id", "grant %s was already used by another device", en.GetGrantRecordId())
	case !g.expires.IsZero() && e.GetReceived().AsTime().After(g.expires):
		r.findf(idx, id, 0, "enrollment.grant_record_id", "grant %s expired at %s, before this enrollment at %s", en.GetGrantRecordId(),
			g.expires.UTC().Format(time.RFC3339), e.GetReceived().AsTime().UTC().Format(time.RFC3339))
	}
	if g != nil {
		g.used = true
	}
	a := &author{id: id, pub: ed25519.PublicKey(bytes.Clone(pub)), label: en.GetLabel(), entry: idx}
	r.authors[id] = a
	r.devices = append(r.devices, a)
}

// record judges a signed record entry and reports whether the replay
// counts it (applies it to the tally's inputs).
func (r *replay) record(idx int64, d *decoded, res *doorstepv1.RecordResult) bool {
	accepted := isAccepted(res.GetStatus())
	if !accepted && res.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
		r.findf(idx, "", 0, "result.status", "%v is not a decision; the entry is treated as rejected", res.GetStatus())
	}
	if d.rec == nil {
		if accepted {
			r.findf(idx, "", 0, "record", "the server accepted a record that does not decode: %v", d.recErr)
		}
		r.rejected(res)
		return false
	}
	rec := d.rec
	who, seq := rec.GetAuthorId(), rec.GetAuthorSeq()
	a := r.authors[who]
	sigOK := false
	if a != nil {
		if bytes.Equal(d.key, a.pub) {
			sigOK = d.sigOK
		} else {
			sigOK = signed.Verify(a.pub, d.entry.GetRecord()) == nil
		}
	}
	if sigOK {
		r.stats.SignaturesOK++
	}
	if !accepted {
		r.rejected(res)
		if sigOK {
			r.judgeRejection(idx, d, res, a)
		}
		return false
	}

	// Accepted: everything the server checked must hold.
	if res.GetRecordId() != rec.GetRecordId() {
		r.findf(idx, who, seq, "result.record_id", "is %q; the record's id is %q", res.GetRecordId(), rec.GetRecordId())
	}
	if a == nil {
		r.findf(idx, who, seq, "author_id", "the server accepted a record from %q, who is not enrolled at this point in the log", who)
		return false
	}
	if !sigOK {
		r.findf(idx, who, seq, "signature", "does not verify with the key of %s (enrolled at entry %d): the record was altered or not made by %s", who, a.entry, who)
		return false
	}
	ok := true
	if rec.GetElectionId() != r.electionID {
		ok = false
		r.findf(idx, who, seq, "election_id", "the record is for election %q", rec.GetElectionId())
	}
	if id, err := uuid.Parse(rec.GetRecordId()); err == nil {
		if first, dup := r.recordIDs[id]; dup {
			ok = false
			r.findf(idx, who, seq, "record_id", "%s was already used by entry %d; an id names one record", rec.GetRecordId(), first)
		} else {
			r.recordIDs[id] = idx
		}
	}
	form, vd := r.decide(d)
	if !vd.Accepted() {
		ok = false
		if _, isCommittee := rec.GetBody().(*doorstepv1.Record_Committee); isCommittee && vd.Reason == doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION {
			r.findf(idx, who, seq, "committee", "the server accepted this %s record, which the rules reject: %s", kindName(rec), vd.Message)
		} else {
			r.findf(idx, who, seq, vd.Field, "%s", strings.TrimPrefix(vd.Message, vd.Field+": "))
		}
	}
	// The server's acceptance fixes the record's place in the chain, so
	// that one wrong decision is reported once, not again for every later
	// record of the author.
	if a.chain.get(seq) == nil {
		var prev [32]byte
		copy(prev[:], rec.GetPrevHash())
		a.chain.put(seq, slot{body: d.bodyHash, prev: prev, hlc: rec.GetHlc(), entry: idx})
	}
	switch b := rec.GetBody().(type) {
	case *doorstepv1.Record_Ballot:
		return r.ballot(idx, d, b.Ballot, res, form.Marks, vd.Held(), ok)
	case *doorstepv1.Record_Visit:
		if ok {
			r.stats.Visits++
			r.visited[b.Visit.GetUnitId()] = true
		}
		return ok
	case *doorstepv1.Record_Committee:
		r.stats.CommitteeRecords++
		r.apply(d, b.Committee, seq, ok)
		return ok
	}
	return false
}

// decide makes the server's decision on a record of an author the log has
// enrolled, under the rules, at this point in the log.
func (r *replay) decide(d *decoded) (rules.Form, rules.Verdict) {
	rec := d.rec
	var form rules.Form
	var vd rules.Verdict
	if d.def == r.def && d.marksErr == nil && rec.GetBallot() != nil {
		// The worker read the marks under this definition already.
		if err := rules.CheckBallot(rec.GetBallot()); err == nil {
			form, vd = rules.Form{Marks: d.marks, Invalid: d.invalid}, rules.Accept
		} else {
			form, vd = rules.CheckForm(r.def, rec, rec.GetAuthorId() == election.CommitteeAuthor)
		}
	} else {
		form, vd = rules.CheckForm(r.def, rec, rec.GetAuthorId() == election.CommitteeAuthor)
	}
	if !vd.Accepted() {
		return form, vd
	}
	// The rules read nothing that can fail from the replay's view.
	vd, _ = rules.Record(r, rec, form, d.bodyHash, r.arrival(d.entry))
	return form, vd
}

// arrival is how the server says a record arrived: when (a record with no
// time of receipt is judged as if it came at the close, when it can break
// no time rule it would not break anyway) and the device's clock offset
// the push said.
func (r *replay) arrival(e *doorstepv1.LogEntry) rules.Arrival {
	a := rules.Arrival{Received: r.closedAt}
	if e.GetReceived() != nil {
		a.Received = e.GetReceived().AsTime()
	}
	if e.DeviceOffsetMs != nil {
		a.DeviceOffset, a.OffsetKnown = time.Duration(e.GetDeviceOffsetMs())*time.Millisecond, true
	}
	return a
}

// judgeRejection checks a verified record the server rejected: a record the
// rules accept must not be rejected, and a rejected record that fits its
// author's chain still takes its place there, as the server does.
func (r *replay) judgeRejection(idx int64, d *decoded, res *doorstepv1.RecordResult, a *author) {
	rec := d.rec
	who, seq := rec.GetAuthorId(), rec.GetAuthorSeq()
	switch reason := res.GetReason(); reason {
	case doorstepv1.ReasonCode_REASON_CODE_BAD_SIGNATURE:
		r.findf(idx, who, seq, "result.reason", "rejected as BAD_SIGNATURE, but the signature verifies with %s's key", who)
	case doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK:
		if s := a.chain.get(seq); s != nil && s.body != d.bodyHash {
			r.findf(idx, who, seq, "author_seq", "%s signed two different records number %d (entries %d and %d): its chain forks", who, seq, s.entry, idx)
		}
	case doorstepv1.ReasonCode_REASON_CODE_NOT_COMMITTEE, doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_ELECTION,
		doorstepv1.ReasonCode_REASON_CODE_TOO_LARGE, doorstepv1.ReasonCode_REASON_CODE_UNSUPPORTED_VERSION,
		doorstepv1.ReasonCode_REASON_CODE_ID_REUSE:
		// How the record came in, or the server's store of ids: not
		// something the log lets the rules re-judge.
	default:
		if rec.GetElectionId() == r.electionID && r.reusedID(rec) == "" {
			if _, vd := r.decide(d); vd.Accepted() {
				r.findf(idx, who, seq, "result.reason", "rejected as %s, but the rules accept the record", strings.TrimPrefix(reason.String(), "REASON_CODE_"))
			}
		}
	}
	if rules.TakesChainSlot(res.GetReason()) {
		if vd, _ := rules.Place(r, who, seq, rec.GetPrevHash(), d.bodyHash); vd.Accepted() {
			var prev [32]byte
			copy(prev[:], rec.GetPrevHash())
			a.chain.put(seq, slot{body: d.bodyHash, prev: prev, hlc: rec.GetHlc(), entry: idx})
		}
	}
	a.chain.markSeen(seq, idx)
}

// reusedID returns the entry of an accepted record that already has rec's
// id, as a string, or "".
func (r *replay) reusedID(rec *doorstepv1.Record) string {
	id, err := uuid.Parse(rec.GetRecordId())
	if err != nil {
		return ""
	}
	if first, dup := r.recordIDs[id]; dup {
		return strconv.FormatInt(first, 10)
	}
	return ""
}

func (r *replay) rejected(res *doorstepv1.RecordResult) {
	r.stats.Rejected++
	r.stats.RejectedBy[strings.TrimPrefix(res.GetReason().String(), "REASON_CODE_")]++
}

// ballot judges an accepted ballot; ok says whether the rules accept it,
// and marks are its answers read under the definition.
func (r *replay) ballot(idx int64, d *decoded, b *doorstepv1.Ballot, res *doorstepv1.RecordResult, marks election.Marks, held, ok bool) bool {
	rec := d.rec
	who, seq := rec.GetAuthorId(), rec.GetAuthorSeq()
	if res.GetReceiptCode() != d.receipt {
		r.findf(idx, who, seq, "result.receipt_code", "is %q; the record's code is %s", res.GetReceiptCode(), d.receipt)
	}
	if !ok {
		return false
	}
	unit, _ := r.unit(b.GetUnitId())
	tb := tally.Ballot{
		RecordID:   rec.GetRecordId(),
		DeviceID:   r.authors[who].id, // shared string: a million ballots, a few devices
		HLC:        rec.GetHlc(),
		Supersedes: b.GetSupersedes(),
		Marks:      r.intern(marks),
		Held:       held,
	}
	bs := append(r.ballots[unit.ID], tb)
	r.ballots[unit.ID] = bs
	r.stats.Ballots++
	ud, decided := r.unitDecisions[unit.ID]
	switch {
	case len(bs) == 1 && !decided && !held:
		// A unit's first ballot, undecided: it is live and counts.
		if want := doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED; res.GetStatus() != want {
			r.findf(idx, who, seq, "result.status", "the server answered %v; as the unit's first ballot the rules give %v", res.GetStatus(), want)
		}
	case len(bs) <= maxStatusCheck:
		var dec *tally.UnitDecision
		if decided {
			dec = &ud
		}
		out := tally.ReconcileUnit(r.def.Policy, bs, dec)
		if want := rules.RecordStatus(out.Arrival(tb.RecordID)); res.GetStatus() != want {
			r.findf(idx, who, seq, "result.status", "the server answered %v; with the unit's ballots so far the rules give %v",
				res.GetStatus(), want)
		}
	}
	return true
}

// intern returns a shared copy of marks equal to m.
func (r *replay) intern(m election.Marks) election.Marks {
	var buf [128]byte
	key := buf[:0]
	for _, mk := range m {
		key = append(key, byte(mk.Kind), byte(len(mk.Picks)))
		for _, p := range mk.Picks {
			key = append(key, byte(p>>8), byte(p))
		}
	}
	if have, ok := r.marks[string(key)]; ok {
		return have
	}
	r.marks[string(key)] = m
	return m
}

// apply carries out an accepted committee action: always an open or a
// close (the server's acceptance fixes the election's stage, so later
// records are judged against the stage the server was in), anything else
// only when the rules accept it (ok).
func (r *replay) apply(d *decoded, act *doorstepv1.CommitteeAction, seq uint64, ok bool) {
	switch a := act.GetAction().(type) {
	case *doorstepv1.CommitteeAction_Open:
		r.open(a.Open)
		return
	case *doorstepv1.CommitteeAction_Close:
		r.state = rules.StateClosed
		r.closedAt = time.UnixMilli(d.entry.GetReceived().AsTime().UnixMilli())
		return
	}
	if !ok {
		return
	}
	switch a := act.GetAction().(type) {
	case *doorstepv1.CommitteeAction_Roster:
		for _, u := range rules.Units(a.Roster.GetUnits()) {
			r.units[u.ID] = u
			r.owners[u.OwnerKey] = true
		}
		r.imported = nil
	case *doorstepv1.CommitteeAction_Enrollment:
		g := a.Enrollment
		r.grantTokens[string(g.GetTokenSha256())] = true
		var exp time.Time
		if ms := g.GetExpires().AsTime().UnixMilli(); g.GetExpires() != nil && ms > 0 {
			exp = time.UnixMilli(ms)
		}
		r.grants[d.rec.GetRecordId()] = &grant{expires: exp}
	case *doorstepv1.CommitteeAction_Revocation:
		dev := r.authors[a.Revocation.GetDeviceId()]
		dev.revoked = true
		dev.revokedAfter = a.Revocation.GetAfterSeq()
		if a.Revocation.GetAfterSeq() == 0 {
			dev.revokedAfter = dev.chain.max
		}
	case *doorstepv1.CommitteeAction_Certify:
		r.state = rules.StateCertified
		r.certified = bytes.Clone(a.Certify.GetTallySha256())
		r.certifiedAt = d.entry
	case *doorstepv1.CommitteeAction_AuditorGrant:
		r.auditors[rules.AuditorID(a.AuditorGrant.GetPublicKey())] = false
	case *doorstepv1.CommitteeAction_AuditorRevocation:
		r.auditors[a.AuditorRevocation.GetAuditorId()] = true
	case *doorstepv1.CommitteeAction_Adjudication:
		switch sub := a.Adjudication.GetSubject().(type) {
		case *doorstepv1.Adjudication_Unit:
			unit := sub.Unit.GetUnitId()
			if old, ok := r.unitDecisions[unit]; !ok || old.Seq <= seq {
				r.unitDecisions[unit] = tally.UnitDecision{Seq: seq, CountedRecordID: sub.Unit.GetCountedRecordId()}
			}
		case *doorstepv1.Adjudication_Owner:
			o := sub.Owner
			item, mark, _ := rules.OwnerMark(r.def, o)
			r.ownerDecisions[o.GetOwnerKey()] = append(r.ownerDecisions[o.GetOwnerKey()], tally.OwnerDecision{Seq: seq, Item: item, Mark: mark})
		}
	}
}

// unit looks a unit up on the roster: the frozen one once the election
// is open, the units imported so far before.
func (r *replay) unit(id string) (election.Unit, bool) {
	if r.roster != nil {
		return r.roster.Unit(id)
	}
	u, ok := r.units[id]
	return u, ok
}

// open freezes the roster the log has imported.
func (r *replay) open(o *doorstepv1.OpenElection) {
	if r.state != rules.StateDefined {
		return
	}
	r.state = rules.StateOpen
	r.openHash = bytes.Clone(o.GetRosterSha256())
	roster, err := r.importedRoster()
	if err != nil {
		return // the rules refused the open already: an empty roster
	}
	r.roster, r.rosterHash = roster, roster.Hash()
	r.units = nil // the roster holds them now, once
	r.ballots = make(map[string][]tally.Ballot, len(roster.Units()))
}

// finish reports what only the whole log shows: gaps in authors' chains.
func (r *replay) finish() {
	ids := make([]string, 0, len(r.authors))
	for id := range r.authors {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		a := r.authors[id]
		seqs := a.chain.presentSeqs()
		next := uint64(1) // lowest number not yet known to be present
		for _, seq := range seqs {
			if seq > next {
				what := fmt.Sprintf("record %d is", next)
				if seq-1 > next {
					what = fmt.Sprintf("records %d to %d are", next, seq-1)
				}
				r.add(Discrepancy{Entry: -1, Author: id, Seq: next, Field: "chain",
					Msg: fmt.Sprintf("%s missing from the log, though %s's record %d is in it: withheld or lost", what, id, a.chain.maxSeen)})
			}
			next = seq + 1
		}
	}
}

// presentSeqs lists, ascending, the numbers of the author's records the
// log holds with a verified signature.
func (c *chain) presentSeqs() []uint64 {
	var out []uint64
	for i := range c.dense {
		if c.dense[i].ok {
			out = append(out, uint64(i)+1)
		}
	}
	for seq := range c.sparse {
		out = append(out, seq)
	}
	for seq := range c.seen {
		out = append(out, seq)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func kindName(rec *doorstepv1.Record) string {
	switch b := rec.GetBody().(type) {
	case *doorstepv1.Record_Ballot:
		return "ballot"
	case *doorstepv1.Record_Visit:
		return "visit"
	case *doorstepv1.Record_Committee:
		switch b.Committee.GetAction().(type) {
		case *doorstepv1.CommitteeAction_DefineElection:
			return "define_election"
		case *doorstepv1.CommitteeAction_Roster:
			return "roster"
		case *doorstepv1.CommitteeAction_Enrollment:
			return "enrollment grant"
		case *doorstepv1.CommitteeAction_Revocation:
			return "revocation"
		case *doorstepv1.CommitteeAction_Open:
			return "open"
		case *doorstepv1.CommitteeAction_Close:
			return "close"
		case *doorstepv1.CommitteeAction_Adjudication:
			return "adjudication"
		case *doorstepv1.CommitteeAction_AuditorGrant:
			return "auditor grant"
		case *doorstepv1.CommitteeAction_AuditorRevocation:
			return "auditor revocation"
		case *doorstepv1.CommitteeAction_Certify:
			return "certify"
		}
		return "committee"
	}
	return "empty"
}

// The replay is the rules' view of the election at the entry it judges.
var _ rules.View = (*replay)(nil)

func (r *replay) Definition() *election.Definition { return r.def }
func (r *replay) State() rules.State               { return r.state }
func (r *replay) ClosedAt() time.Time              { return r.closedAt }

func (r *replay) Unit(id string) (election.Unit, bool, error) {
	u, ok := r.unit(id)
	return u, ok, nil
}

func (r *replay) OwnerOnRoster(ownerKey string) (bool, error) { return r.owners[ownerKey], nil }

func (r *replay) RosterHash() ([32]byte, int, error) {
	if r.roster != nil {
		return r.rosterHash, len(r.roster.Units()), nil
	}
	if len(r.units) == 0 {
		return election.HashUnits(nil), 0, nil
	}
	ro, err := r.importedRoster()
	if err != nil {
		// Chunks are checked unit by unit as they come, so this cannot
		// happen; if it did, no open could match.
		return [32]byte{}, len(r.units), nil
	}
	return ro.Hash(), len(ro.Units()), nil
}

// importedRoster is the roster the imported units make, built once for
// the open's check and the open itself (sorting a million units is a
// second's work).
func (r *replay) importedRoster() (*election.Roster, error) {
	if r.imported != nil {
		return r.imported, nil
	}
	units := make([]election.Unit, 0, len(r.units))
	for _, u := range r.units {
		units = append(units, u)
	}
	ro, err := election.NewRoster(units)
	if err != nil {
		return nil, err
	}
	r.imported = ro
	return ro, nil
}

// TallyHash is not known while replaying: the replay counts at the end
// (tally.Compute), and finish checks a certification against that.
func (r *replay) TallyHash() ([32]byte, bool, error) { return [32]byte{}, false, nil }

func (r *replay) Auditor(id string) (granted, revoked bool, err error) {
	revoked, granted = r.auditors[id]
	return granted, revoked, nil
}

func (r *replay) GrantTaken(tokenHash []byte) (bool, error) {
	return r.grantTokens[string(tokenHash)], nil
}

func (r *replay) Author(id string) (rules.Author, bool, error) {
	a := r.authors[id]
	if a == nil {
		return rules.Author{}, false, nil
	}
	return rules.Author{Revoked: a.revoked, RevokedAfter: a.revokedAfter, MaxSeq: a.chain.max}, true, nil
}

func (r *replay) ChainBody(author string, seq uint64) ([32]byte, uint64, bool, error) {
	if a := r.authors[author]; a != nil {
		if s := a.chain.get(seq); s != nil {
			return s.body, s.hlc, true, nil
		}
	}
	return [32]byte{}, 0, false, nil
}

func (r *replay) ChainPrev(author string, seq uint64) ([32]byte, uint64, bool, error) {
	if a := r.authors[author]; a != nil {
		if s := a.chain.get(seq); s != nil {
			return s.prev, s.hlc, true, nil
		}
	}
	return [32]byte{}, 0, false, nil
}
