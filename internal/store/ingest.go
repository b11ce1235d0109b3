package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/hlc"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// MaxBatch is the most records one push or committee submission may carry.
const MaxBatch = 1000

// prepared is a record after the checks that need no transaction: size,
// signature over the exact bytes, decoding and the ballot's selections.
type prepared struct {
	sr       *doorstepv1.SignedRecord
	raw      [32]byte // SHA-256(body ‖ signature): identifies exact bytes
	receipt  string   // the ballot's receipt code, from raw
	bodyHash [32]byte
	rec      *doorstepv1.Record // set once the signature is verified
	// claimedID is the record id as read from the body, verified or not:
	// the device needs it to match answers to what it sent.
	claimedID string
	marks     election.Marks
	invalid   bool // an item had too many picks

	// reason is set when the record is rejected; pre* keep what prepare
	// decided, so a retried transaction starts from the same place.
	reason, preReason doorstepv1.ReasonCode
	msg, preMsg       string
	result            *doorstepv1.RecordResult
}

func rawHash(sr *doorstepv1.SignedRecord) [32]byte {
	h := sha256.New()
	h.Write(sr.GetBody())
	h.Write(sr.GetSignature())
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func (p *prepared) rejectf(code doorstepv1.ReasonCode, format string, args ...any) {
	p.reason = code
	p.msg = fmt.Sprintf(format, args...)
}

// prepare checks one record as far as possible without a transaction.
// committee says the record must be signed by the committee.
func (s *Store) prepare(electionID string, sr *doorstepv1.SignedRecord, committee bool) *prepared {
	p := &prepared{sr: sr, raw: rawHash(sr), bodyHash: signed.BodyHash(sr.GetBody())}
	limit := signed.MaxBodyBytes
	if committee {
		limit = signed.MaxCommitteeBodyBytes
	}
	if len(sr.GetBody()) > limit {
		p.rejectf(doorstepv1.ReasonCode_REASON_CODE_TOO_LARGE, "the record is %d bytes; the limit is %d", len(sr.GetBody()), limit)
		return p
	}
	// The author id picks the key; nothing else of the body is trusted or
	// used until the signature over these exact bytes checks out.
	rec, err := signed.Decode(sr.GetBody())
	if rec != nil {
		p.claimedID = rec.GetRecordId()
	}
	if err != nil {
		if errors.Is(err, signed.ErrUnsupportedVersion) {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_UNSUPPORTED_VERSION, "%v", err)
		} else {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_MALFORMED, "the record could not be read: %v", err)
		}
		return p
	}
	if rec.GetElectionId() != electionID {
		p.rejectf(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_ELECTION, "the record is for election %q, not %q", rec.GetElectionId(), electionID)
		return p
	}
	pub, ec, ok := s.authorKey(electionID, rec.GetAuthorId())
	if ec == nil {
		p.rejectf(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_ELECTION, "there is no election %q on this server", electionID)
		return p
	}
	if committee != (rec.GetAuthorId() == election.CommitteeAuthor) {
		if committee {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_NOT_COMMITTEE, "only records signed by the committee key may be submitted here")
		} else {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_NOT_COMMITTEE, "committee records go through the election service, not a device push")
		}
		return p
	}
	if !ok {
		p.rejectf(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_DEVICE, "device %q is not enrolled in this election: ask the committee for an enrollment code", rec.GetAuthorId())
		return p
	}
	if err := signed.Verify(pub, sr); err != nil {
		p.rejectf(doorstepv1.ReasonCode_REASON_CODE_BAD_SIGNATURE, "the signature does not match the record and the key of %q", rec.GetAuthorId())
		return p
	}
	p.rec = rec
	p.claimedID = rec.GetRecordId()
	switch b := rec.GetBody().(type) {
	case *doorstepv1.Record_Ballot:
		if committee {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "a ballot is not a committee action")
			return p
		}
		if err := rules.CheckBallot(b.Ballot); err != nil {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_MALFORMED, "%v", err)
			return p
		}
		marks, invalid, err := ec.def.Marks(rules.Selections(b.Ballot.GetSelections()))
		if err != nil {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION, "%v", err)
			return p
		}
		p.marks, p.invalid = marks, invalid
		p.receipt = ballotlog.ReceiptCodeFromHash(p.raw)
	case *doorstepv1.Record_Visit:
		if committee {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "a visit is not a committee action")
			return p
		}
		if err := rules.CheckVisit(b.Visit); err != nil {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_MALFORMED, "%v", err)
			return p
		}
	case *doorstepv1.Record_Committee:
		if !committee {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_NOT_COMMITTEE, "committee actions must be signed by the committee key")
			return p
		}
	}
	return p
}

// Push stores a batch of device records durably and answers per record, in
// the order given. Every answer is on disk before Push returns.
func (s *Store) Push(ctx context.Context, electionID string, srs []*doorstepv1.SignedRecord) ([]*doorstepv1.RecordResult, *doorstepv1.Checkpoint, error) {
	return s.ingest(ctx, electionID, srs, false)
}

// SubmitCommittee applies committee records (roster, enrollment grants,
// revocations, open, close, adjudications) and answers per record.
func (s *Store) SubmitCommittee(ctx context.Context, electionID string, srs []*doorstepv1.SignedRecord) ([]*doorstepv1.RecordResult, *doorstepv1.Checkpoint, error) {
	return s.ingest(ctx, electionID, srs, true)
}

func (s *Store) ingest(ctx context.Context, electionID string, srs []*doorstepv1.SignedRecord, committee bool) ([]*doorstepv1.RecordResult, *doorstepv1.Checkpoint, error) {
	if len(srs) == 0 {
		return nil, nil, election.Errorf(election.CodeInvalid, "records", "the batch is empty")
	}
	if len(srs) > MaxBatch {
		return nil, nil, election.Errorf(election.CodeTooLarge, "records", "a batch may hold at most %d records, got %d: send smaller batches", MaxBatch, len(srs))
	}
	if s.cached(electionID) == nil {
		return nil, nil, election.Errorf(election.CodeNotFound, "election_id", "there is no election %q on this server", electionID)
	}
	ps := make([]*prepared, len(srs))
	for i, sr := range srs {
		p := s.prepare(electionID, sr, committee)
		p.preReason, p.preMsg = p.reason, p.msg
		ps[i] = p
	}
	var newKeys []func()
	j := &job{election: electionID, records: len(srs)}
	j.run = func(w *writeTx) error {
		newKeys = newKeys[:0]
		now := s.now()
		for _, p := range ps {
			p.result, p.reason, p.msg = nil, p.preReason, p.preMsg
			if err := w.decide(p, now, &newKeys); err != nil {
				return err
			}
		}
		return nil
	}
	j.after = func() {
		for _, f := range newKeys {
			f()
		}
	}
	if err := s.submit(ctx, j); err != nil {
		return nil, nil, err
	}
	cp, err := s.Checkpoint(ctx, electionID)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*doorstepv1.RecordResult, len(ps))
	for i, p := range ps {
		out[i] = p.result
	}
	return out, cp, nil
}

// decide makes and logs the decision for one prepared record.
func (w *writeTx) decide(p *prepared, now time.Time, after *[]func()) error {
	if w.eb == nil {
		return fmt.Errorf("store: election %q vanished", w.id)
	}
	if p.reason != doorstepv1.ReasonCode_REASON_CODE_UNSPECIFIED {
		return w.reject(p, now)
	}
	rid := p.rec.GetRecordId()
	// Idempotency: the same id with the same bytes gets its original answer.
	if v := w.bucket(bucketRecords).Get([]byte(rid)); v != nil {
		e, err := w.entry(getI64(v))
		if err != nil {
			return err
		}
		if bytes.Equal(e.GetRecord().GetBody(), p.sr.GetBody()) && bytes.Equal(e.GetRecord().GetSignature(), p.sr.GetSignature()) {
			r := e.GetResult()
			r.Replayed = true
			p.result = r
			return nil
		}
		p.rejectf(doorstepv1.ReasonCode_REASON_CODE_ID_REUSE, "record id %s was already used for a different record; nothing was overwritten", rid)
		return w.reject(p, now)
	}
	author := p.rec.GetAuthorId()
	dev, err := w.device(author)
	if err != nil {
		return err
	}
	if dev == nil {
		p.rejectf(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_DEVICE, "device %q is not enrolled in this election", author)
		return w.reject(p, now)
	}
	seq := p.rec.GetAuthorSeq()
	if dev.revoked && seq > dev.revokedAfter {
		p.rejectf(doorstepv1.ReasonCode_REASON_CODE_DEVICE_REVOKED, "device %q was revoked after its record %d; this record (%d) is not accepted", author, dev.revokedAfter, seq)
		return w.reject(p, now)
	}
	var flags []doorstepv1.RecordFlag
	var notes []string
	if _, isCommittee := p.rec.GetBody().(*doorstepv1.Record_Committee); !isCommittee {
		if reason, msg := w.timeCheck(p.rec, now); reason != doorstepv1.ReasonCode_REASON_CODE_UNSPECIFIED {
			p.rejectf(reason, "%s", msg)
			return w.reject(p, now)
		}
	}
	// The author's chain: a fork is rejected, a gap is accepted and flagged.
	// In the common case (the next record in order) the device's high-water
	// marks answer without reading the chain.
	cb := w.bucket(bucketChain)
	beyond := seq > dev.maxSeq // nothing held at seq or after it
	if !beyond && cb.Get(chainKey(author, seq)) != nil {
		p.rejectf(doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK, "%s already has a different record number %d: the device's history forks", author, seq)
		return w.reject(p, now)
	}
	if seq > 1 {
		var prev []byte
		if seq-1 == dev.contiguous {
			prev = dev.contigHash
		} else if v := cb.Get(chainKey(author, seq-1)); v != nil {
			prev = v[:32]
		}
		switch {
		case prev == nil:
			flags = append(flags, doorstepv1.RecordFlag_RECORD_FLAG_CHAIN_GAP)
			notes = append(notes, fmt.Sprintf("records before number %d from %s have not arrived yet", seq, author))
		case !bytes.Equal(prev, p.rec.GetPrevHash()):
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK, "record %d of %s does not follow the record %d the server holds: the device's history forks", seq, author, seq-1)
			return w.reject(p, now)
		}
	}
	if !beyond {
		if next := cb.Get(chainKey(author, seq+1)); next != nil && !bytes.Equal(next[32:], p.bodyHash[:]) {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK, "record %d of %s is not the one its successor names: the device's history forks", seq, author)
			return w.reject(p, now)
		}
	}
	if w.def != nil && hlc.Wall(p.rec.GetHlc()).After(now.Add(w.def.FutureSkew)) {
		flags = append(flags, doorstepv1.RecordFlag_RECORD_FLAG_FUTURE_DATED)
		notes = append(notes, "the record is dated ahead of the server's clock: check the device's clock")
	}
	if p.invalid {
		flags = append(flags, doorstepv1.RecordFlag_RECORD_FLAG_ITEM_INVALID)
		notes = append(notes, "an item has more picks than seats and is invalid on this ballot; the other items count")
	}

	res := &doorstepv1.RecordResult{RecordId: rid, Status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED, Flags: flags}
	switch b := p.rec.GetBody().(type) {
	case *doorstepv1.Record_Ballot:
		res.ReceiptCode = p.receipt
		status, reason, msg, err := w.applyBallot(p, b.Ballot)
		if err != nil {
			return err
		}
		if reason != doorstepv1.ReasonCode_REASON_CODE_UNSPECIFIED {
			p.rejectf(reason, "%s", msg)
			return w.reject(p, now)
		}
		res.Status = status
		if err := w.bucket(bucketReceipts).Put(join(res.ReceiptCode, []byte(rid)), []byte(b.Ballot.GetUnitId())); err != nil {
			return err
		}
	case *doorstepv1.Record_Visit:
		ok, err := w.applyVisit(b.Visit)
		if err != nil {
			return err
		}
		if !ok {
			p.rejectf(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, "unit %q is not on the roster", b.Visit.GetUnitId())
			return w.reject(p, now)
		}
	case *doorstepv1.Record_Committee:
		reason, msg, err := w.applyCommittee(p, b.Committee, now, after)
		if err != nil {
			return err
		}
		if reason != doorstepv1.ReasonCode_REASON_CODE_UNSPECIFIED {
			p.rejectf(reason, "%s", msg)
			return w.reject(p, now)
		}
	}
	if len(notes) > 0 {
		res.Message = joinNotes(notes)
	}
	// Accepted: extend the chain, then log.
	chainVal := make([]byte, 64)
	copy(chainVal, p.bodyHash[:])
	copy(chainVal[32:], p.rec.GetPrevHash())
	if err := cb.Put(chainKey(author, seq), chainVal); err != nil {
		return err
	}
	if err := w.advanceDevice(author, seq, p.bodyHash[:]); err != nil {
		return err
	}
	idx, err := w.appendLog(&doorstepv1.LogEntry{Record: p.sr, Result: res, Received: timestamppb.New(now)})
	if err != nil {
		return err
	}
	if err := w.bucket(bucketRecords).Put([]byte(rid), putI64(idx)); err != nil {
		return err
	}
	if _, ok := p.rec.GetBody().(*doorstepv1.Record_Committee); ok {
		if err := w.bucket(bucketCommittee).Put(putU64(seq), putI64(idx)); err != nil {
			return err
		}
	}
	p.result = res
	return nil
}

func joinNotes(n []string) string {
	s := n[0]
	for _, x := range n[1:] {
		s += "; " + x
	}
	return s
}

// timeCheck applies the election's state and sync deadline to a device
// record.
func (w *writeTx) timeCheck(rec *doorstepv1.Record, now time.Time) (doorstepv1.ReasonCode, string) {
	switch w.state {
	case stateOpen:
		return 0, ""
	case stateClosed:
		if now.After(w.def.SyncDeadline) {
			return doorstepv1.ReasonCode_REASON_CODE_AFTER_SYNC_DEADLINE, fmt.Sprintf("the sync deadline (%s) has passed; the record is logged but not counted", w.def.SyncDeadline.UTC().Format(time.RFC3339))
		}
		closedAt := time.UnixMilli(getI64(w.bucket(bucketInfo).Get(keyClosedAt)))
		if hlc.Wall(rec.GetHlc()).After(closedAt) {
			return doorstepv1.ReasonCode_REASON_CODE_ELECTION_CLOSED, "the record was made after the election closed"
		}
		return 0, ""
	default:
		return doorstepv1.ReasonCode_REASON_CODE_ELECTION_NOT_OPEN, "the election is not open yet"
	}
}

// reject logs a rejection once per exact bytes and answers with it.
func (w *writeTx) reject(p *prepared, now time.Time) error {
	rb := w.bucket(bucketRejected)
	if v := rb.Get(p.raw[:]); v != nil {
		e, err := w.entry(getI64(v))
		if err != nil {
			return err
		}
		r := e.GetResult()
		r.Replayed = true
		p.result = r
		return nil
	}
	res := &doorstepv1.RecordResult{
		RecordId: p.claimedID,
		Status:   doorstepv1.RecordStatus_RECORD_STATUS_REJECTED,
		Reason:   p.reason,
		Message:  p.msg,
	}
	if p.rec != nil && rules.TakesChainSlot(p.reason) {
		if err := w.takeChainSlot(p); err != nil {
			return err
		}
	}
	idx, err := w.appendLog(&doorstepv1.LogEntry{Record: p.sr, Result: res, Received: timestamppb.New(now)})
	if err != nil {
		return err
	}
	if err := rb.Put(p.raw[:], putI64(idx)); err != nil {
		return err
	}
	p.result = res
	return nil
}

// takeChainSlot records a verified but rejected record in its author's
// chain when it fits there without contradiction.
func (w *writeTx) takeChainSlot(p *prepared) error {
	author, seq := p.rec.GetAuthorId(), p.rec.GetAuthorSeq()
	if dev, err := w.device(author); dev == nil || err != nil {
		return err
	}
	cb := w.bucket(bucketChain)
	if cb.Get(chainKey(author, seq)) != nil {
		return nil
	}
	if seq > 1 {
		if prev := cb.Get(chainKey(author, seq-1)); prev != nil && !bytes.Equal(prev[:32], p.rec.GetPrevHash()) {
			return nil
		}
	}
	if next := cb.Get(chainKey(author, seq+1)); next != nil && !bytes.Equal(next[32:], p.bodyHash[:]) {
		return nil
	}
	v := make([]byte, 64)
	copy(v, p.bodyHash[:])
	copy(v[32:], p.rec.GetPrevHash())
	if err := cb.Put(chainKey(author, seq), v); err != nil {
		return err
	}
	return w.advanceDevice(author, seq, p.bodyHash[:])
}

// advanceDevice moves the author's high-water marks past seq.
func (w *writeTx) advanceDevice(author string, seq uint64, bodyHash []byte) error {
	dev, err := w.device(author)
	if err != nil {
		return err
	}
	if dev == nil {
		return fmt.Errorf("store: device %q vanished", author)
	}
	if seq == dev.contiguous+1 && seq > dev.maxSeq {
		// The next record in order with nothing held after it: the usual
		// case, decided without reading the chain.
		dev.contiguous, dev.maxSeq = seq, seq
		dev.contigHash = append(dev.contigHash[:0], bodyHash...)
		w.saveDevice(author, dev)
		return nil
	}
	if seq > dev.maxSeq {
		dev.maxSeq = seq
	}
	cb := w.bucket(bucketChain)
	for {
		v := cb.Get(chainKey(author, dev.contiguous+1))
		if v == nil {
			break
		}
		dev.contiguous++
		dev.contigHash = append(dev.contigHash[:0], v[:32]...)
	}
	w.saveDevice(author, dev)
	return nil
}

func (w *writeTx) unit(id string) (*doorstepv1.Unit, bool, error) {
	v := w.bucket(bucketUnits).Get([]byte(id))
	if v == nil {
		return nil, false, nil
	}
	u, err := decodeUnit(v)
	return u, err == nil, err
}

// applyBallot stores a ballot and re-reconciles its unit.
func (w *writeTx) applyBallot(p *prepared, b *doorstepv1.Ballot) (doorstepv1.RecordStatus, doorstepv1.ReasonCode, string, error) {
	u, ok, err := w.unit(b.GetUnitId())
	if err != nil {
		return 0, 0, "", err
	}
	if !ok {
		return 0, doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, fmt.Sprintf("unit %q is not on the roster", b.GetUnitId()), nil
	}
	tb := tally.Ballot{
		RecordID:   p.rec.GetRecordId(),
		DeviceID:   p.rec.GetAuthorId(),
		HLC:        p.rec.GetHlc(),
		Supersedes: b.GetSupersedes(),
		Marks:      p.marks,
	}
	v, err := tb.MarshalBinary()
	if err != nil {
		return 0, 0, "", err
	}
	if err := w.bucket(bucketBallots).Put(join(u.GetUnitId(), []byte(tb.RecordID)), v); err != nil {
		return 0, 0, "", err
	}
	out, err := w.reconcile(u, &tb)
	if err != nil {
		return 0, 0, "", err
	}
	return rules.RecordStatus(out.Arrival(tb.RecordID)), 0, "", nil
}

// reconcile recomputes a unit's outcome from all its ballots and its
// decision, and moves the owner's aggregate and the running tally from the
// old outcome to the new one.
func (w *writeTx) reconcile(u *doorstepv1.Unit, added *tally.Ballot) (tally.UnitOutcome, error) {
	unitID := u.GetUnitId()
	ob := w.bucket(bucketOutcome)
	var old tally.UnitOutcome
	oldV := ob.Get([]byte(unitID))
	if oldV != nil {
		if err := old.UnmarshalBinary(oldV); err != nil {
			return tally.UnitOutcome{}, fmt.Errorf("store: outcome %q: %w", unitID, err)
		}
	}
	var ballots []tally.Ballot
	if oldV == nil && added != nil {
		// The unit's first ballot: there is nothing else to read.
		ballots = []tally.Ballot{*added}
	} else {
		prefix := join(unitID, nil)
		c := w.bucket(bucketBallots).Cursor()
		for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
			var b tally.Ballot
			if err := b.UnmarshalBinary(v); err != nil {
				return tally.UnitOutcome{}, fmt.Errorf("store: ballot %q: %w", k, err)
			}
			ballots = append(ballots, b)
		}
	}
	var dec *tally.UnitDecision
	if v := w.bucket(bucketUnitDecision).Get([]byte(unitID)); v != nil {
		d, err := decodeUnitDecision(v)
		if err != nil {
			return tally.UnitOutcome{}, err
		}
		dec = &d
	}
	out := tally.ReconcileUnit(w.def.Policy, ballots, dec)
	totals, err := w.loadTotals()
	if err != nil {
		return out, err
	}
	if old.Counted != out.Counted || (out.Counted && !old.Marks.Equal(out.Marks)) {
		os, err := w.ownerState(u.GetOwnerKey())
		if err != nil {
			return out, err
		}
		before := os.Contribution(w.def)
		if old.Counted {
			os.RemoveUnit(u.GetAreaCentiM2(), old.Marks)
		}
		if out.Counted {
			os.AddUnit(u.GetAreaCentiM2(), out.Marks)
		}
		after := os.Contribution(w.def)
		totals.Sub(before)
		totals.Add(after)
		if err := w.updateSplit(u.GetOwnerKey(), before.Split, after.Split); err != nil {
			return out, err
		}
	}
	totals.ApplyUnit(old, out)
	w.totalsDirty = true
	v, err := out.MarshalBinary()
	if err != nil {
		return out, err
	}
	if err := ob.Put([]byte(unitID), v); err != nil {
		return out, err
	}
	cb := w.bucket(bucketContested)
	switch held, wasHeld := out.Contested && !out.Adjudicated, old.Contested && !old.Adjudicated; {
	case held && !wasHeld:
		err = cb.Put([]byte(unitID), nil)
	case !held && wasHeld:
		err = cb.Delete([]byte(unitID))
	}
	if err != nil {
		return out, err
	}
	return out, w.setProgress(unitID, func(p *progress) {
		switch {
		case out.Contested && !out.Adjudicated:
			p.state = uint8(doorstepv1.UnitProgress_UNIT_PROGRESS_CONTESTED)
		case len(ballots) > 0:
			p.state = uint8(doorstepv1.UnitProgress_UNIT_PROGRESS_DONE)
		}
	})
}

func (w *writeTx) updateSplit(owner string, before, after []int) error {
	sb := w.bucket(bucketSplit)
	for _, i := range before {
		if err := sb.Delete(join(owner, putU64(uint64(i)))); err != nil {
			return err
		}
	}
	for _, i := range after {
		if err := sb.Put(join(owner, putU64(uint64(i))), nil); err != nil {
			return err
		}
	}
	return nil
}

func (w *writeTx) applyVisit(v *doorstepv1.Visit) (bool, error) {
	_, ok, err := w.unit(v.GetUnitId())
	if err != nil || !ok {
		return false, err
	}
	return true, w.setProgress(v.GetUnitId(), func(p *progress) {
		p.visits++
		p.lastVisit = uint8(v.GetOutcome())
		if p.state == 0 || p.state == uint8(doorstepv1.UnitProgress_UNIT_PROGRESS_NOT_VISITED) {
			p.state = uint8(doorstepv1.UnitProgress_UNIT_PROGRESS_VISITED)
		}
	})
}

func hasPrefix(k, p []byte) bool { return len(k) >= len(p) && string(k[:len(p)]) == string(p) }
