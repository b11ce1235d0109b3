package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// MaxBatch is the most records one push or committee submission may carry.
const MaxBatch = 1000

// prepared is a record after the checks that need no transaction: size,
// signature over the exact bytes, decoding, and the form the definition
// alone decides (rules.CheckForm).
type prepared struct {
	sr       *doorstepv1.SignedRecord
	raw      [32]byte // SHA-256(body ‖ signature): identifies exact bytes
	receipt  string   // the ballot's receipt code, from raw
	bodyHash [32]byte
	rec      *doorstepv1.Record // set once the signature is verified
	// claimedID is the record id as read from the body, verified or not:
	// the device needs it to match answers to what it sent.
	claimedID string
	form      rules.Form

	// verdict is the decision so far; pre keeps what prepare decided, so
	// a retried transaction starts from the same place.
	verdict, pre rules.Verdict
	// door is set when the record was refused before its signature
	// verified: it is answered but not logged.
	door   bool
	result *doorstepv1.RecordResult
}

// noteSync keeps what a device's push said of it, for the committee's
// list of devices.
func (w *writeTx) noteSync(m PushMeta, now time.Time) error {
	sb := w.bucket(bucketDevSync)
	var d devSync
	if v := sb.Get([]byte(m.Pusher)); v != nil {
		// What this push does not say, the last one did.
		d, _ = decodeDevSync(v)
	}
	d.at = now.UnixMilli()
	if m.Unsent != nil {
		d.unsent, d.unsentKnown = *m.Unsent, true
	}
	if m.Offset != nil {
		d.offsetMs, d.offsetKnown = m.Offset.Milliseconds(), true
	}
	return sb.Put([]byte(m.Pusher), d.encode())
}

// NoteSync keeps that device asked for its state at the start of a sync,
// holding unsent records unanswered: the committee sees who must still
// sync, and when each last did, even a device with nothing to push.
func (s *Store) NoteSync(ctx context.Context, electionID, device string, unsent uint64) error {
	if s.cached(electionID) == nil {
		return errNoElection(electionID)
	}
	j := &job{election: electionID, records: 1}
	j.run = func(w *writeTx) error {
		if w.eb == nil {
			return nil
		}
		return w.noteSync(PushMeta{Pusher: device, Unsent: &unsent}, w.s.now())
	}
	return s.submit(ctx, j)
}

// arrival is how the records of one push arrived.
func arrival(now time.Time, offset *time.Duration) rules.Arrival {
	a := rules.Arrival{Received: now}
	if offset != nil {
		a.DeviceOffset, a.OffsetKnown = *offset, true
	}
	return a
}

// logEntry is the log's entry for a decision on a record that arrived as
// a says; the device's offset goes with it, for the verifier's time rule.
func logEntry(sr *doorstepv1.SignedRecord, res *doorstepv1.RecordResult, a rules.Arrival) *doorstepv1.LogEntry {
	e := &doorstepv1.LogEntry{Record: sr, Result: res, Received: timestamppb.New(a.Received)}
	if a.OffsetKnown {
		ms := a.DeviceOffset.Milliseconds()
		e.DeviceOffsetMs = &ms
	}
	return e
}

// refusal is the answer to a record refused at the door.
func (p *prepared) refusal() *doorstepv1.RecordResult {
	return &doorstepv1.RecordResult{RecordId: p.claimedID, Status: p.verdict.Status(), Reason: p.verdict.Reason, Message: p.verdict.Text(), Refused: true}
}

func rawHash(sr *doorstepv1.SignedRecord) [32]byte {
	h := sha256.New()
	h.Write(sr.GetBody())
	h.Write(sr.GetSignature())
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// prepareAll checks a batch's records as far as possible without a
// transaction, checking their signatures together (one batch
// verification: a push is one device's records, under one key).
func (s *Store) prepareAll(electionID, pusher string, srs []*doorstepv1.SignedRecord, committee bool) []*prepared {
	ps := make([]*prepared, len(srs))
	b := batches.Get().(*signed.Batch)
	defer func() { b.Reset(); batches.Put(b) }()
	var waiting []int // records whose signature is in b
	for i, sr := range srs {
		p := &prepared{sr: sr, raw: rawHash(sr), bodyHash: signed.BodyHash(sr.GetBody())}
		ps[i] = p
		if pub := s.checkEnvelope(p, electionID, pusher, committee); pub != nil {
			b.Add(pub, sr)
			waiting = append(waiting, i)
		}
	}
	for k, ok := range b.Verify() {
		s.checkContent(ps[waiting[k]], electionID, committee, ok)
	}
	for _, p := range ps {
		p.pre = p.verdict
	}
	return ps
}

// batches recycles the signature batches of concurrent pushes.
var batches = sync.Pool{New: func() any { return new(signed.Batch) }}

// checkEnvelope decides what comes before the signature: size, decoding,
// the election and the author's key, which it returns when the signature
// is all that remains to check. What it refuses is refused at the door: no
// accountable key signed it, so it is answered and counted, never logged,
// and it takes no place in any chain.
func (s *Store) checkEnvelope(p *prepared, electionID, pusher string, committee bool) ed25519.PublicKey {
	sr := p.sr
	door := func(v rules.Verdict) ed25519.PublicKey {
		p.verdict, p.door = v, true
		return nil
	}
	limit := signed.MaxBodyBytes
	if committee {
		limit = signed.MaxCommitteeBodyBytes
	}
	if len(sr.GetBody()) > limit {
		return door(rules.Reject(doorstepv1.ReasonCode_REASON_CODE_TOO_LARGE, "body", "the record is %d bytes; the limit is %d", len(sr.GetBody()), limit))
	}
	// Only the body and the signature are signed, and the record is logged
	// as received: bytes beside them would enter the public log unsigned.
	if n := len(sr.ProtoReflect().GetUnknown()); n > 0 {
		return door(rules.Reject(doorstepv1.ReasonCode_REASON_CODE_MALFORMED, "record", "the signed record carries %d bytes besides its body and signature; send the body and the signature only", n))
	}
	// The author id picks the key; nothing else of the body is trusted or
	// used until the signature over these exact bytes checks out.
	rec, err := signed.Decode(sr.GetBody())
	if rec != nil {
		p.claimedID = rec.GetRecordId()
	}
	if err != nil {
		if errors.Is(err, signed.ErrUnsupportedVersion) {
			return door(rules.Reject(doorstepv1.ReasonCode_REASON_CODE_UNSUPPORTED_VERSION, "format_version", "%v", err))
		}
		return door(rules.Reject(doorstepv1.ReasonCode_REASON_CODE_MALFORMED, "body", "the record could not be read: %v", err))
	}
	if n := len(sr.GetSignature()); n != ed25519.SignatureSize {
		return door(rules.Reject(doorstepv1.ReasonCode_REASON_CODE_BAD_SIGNATURE, "signature", "the signature is %d bytes; an ed25519 signature is %d", n, ed25519.SignatureSize))
	}
	if rec.GetElectionId() != electionID {
		return door(rules.Reject(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_ELECTION, "election_id", "the record is for election %q, not %q", rec.GetElectionId(), electionID))
	}
	pub, ec, ok := s.authorKey(electionID, rec.GetAuthorId())
	if ec == nil {
		return door(rules.Reject(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_ELECTION, "election_id", "%s", errNoElection(electionID).Msg))
	}
	// The way in is checked before the key: a device's push naming the
	// committee as author is told where committee records go.
	if committee != (rec.GetAuthorId() == election.CommitteeAuthor) {
		_, vd := rules.CheckForm(ec.def, rec, committee)
		return door(vd)
	}
	if !ok {
		return door(rules.NotEnrolled(rec.GetAuthorId()))
	}
	if pusher != "" && rec.GetAuthorId() != pusher {
		return door(rules.Reject(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_DEVICE, "author_id", "the record is by %s, but %s sent it: a device sends only its own records", rec.GetAuthorId(), pusher))
	}
	p.rec = rec
	return pub
}

// checkContent finishes what needs no transaction once the signature's
// check is known: a bad one is refused at the door; a good one makes the
// record accountable, and its form is decided.
func (s *Store) checkContent(p *prepared, electionID string, committee, sigOK bool) {
	rec := p.rec
	if !sigOK {
		p.rec, p.door = nil, true
		p.verdict = rules.Reject(doorstepv1.ReasonCode_REASON_CODE_BAD_SIGNATURE, "signature", "the signature does not match the record and the key of %q", rec.GetAuthorId())
		return
	}
	def, _ := s.Definition(electionID)
	p.form, p.verdict = rules.CheckForm(def, rec, committee)
	if p.verdict.Accepted() && rec.GetBallot() != nil {
		p.receipt = ballotlog.ReceiptCodeFromHash(p.raw)
	}
}

// Push stores a batch of device records durably and answers per record, in
// the order given. Every answer is on disk before Push returns.
func (s *Store) Push(ctx context.Context, electionID string, srs []*doorstepv1.SignedRecord) ([]*doorstepv1.RecordResult, *doorstepv1.Checkpoint, error) {
	return s.ingest(ctx, electionID, PushMeta{}, srs, false)
}

// PushMeta is what a device's push says besides its records.
type PushMeta struct {
	// Pusher is the device that sent the push (its call signature's key):
	// a device sends only its own records, so any other author's is
	// refused at the door.
	Pusher string
	// Offset, when not nil, is how far the server's clock was ahead of the
	// device's when the push came (the time rule weighs late ballots by
	// it); it is logged with each of the push's records.
	Offset *time.Duration
	// Unsent, when not nil, is how many records the device still holds
	// unanswered besides these.
	Unsent *uint64
}

// PushAs is Push for a device's push, with what else the push said; the
// device's last sync is kept for the committee.
func (s *Store) PushAs(ctx context.Context, electionID string, m PushMeta, srs []*doorstepv1.SignedRecord) ([]*doorstepv1.RecordResult, *doorstepv1.Checkpoint, error) {
	return s.ingest(ctx, electionID, m, srs, false)
}

// SubmitCommittee applies committee records (roster, enrollment grants,
// revocations, open, close, adjudications) and answers per record.
func (s *Store) SubmitCommittee(ctx context.Context, electionID string, srs []*doorstepv1.SignedRecord) ([]*doorstepv1.RecordResult, *doorstepv1.Checkpoint, error) {
	return s.ingest(ctx, electionID, PushMeta{}, srs, true)
}

func (s *Store) ingest(ctx context.Context, electionID string, m PushMeta, srs []*doorstepv1.SignedRecord, committee bool) ([]*doorstepv1.RecordResult, *doorstepv1.Checkpoint, error) {
	if len(srs) == 0 {
		return nil, nil, election.Errorf(election.CodeInvalid, "records", "the batch is empty")
	}
	if len(srs) > MaxBatch {
		return nil, nil, election.Errorf(election.CodeTooLarge, "records", "a batch may hold at most %d records, got %d: send smaller batches", MaxBatch, len(srs))
	}
	if s.cached(electionID) == nil {
		return nil, nil, errNoElection(electionID)
	}
	ps := s.prepareAll(electionID, m.Pusher, srs, committee)
	allRefused := true
	for _, p := range ps {
		allRefused = allRefused && p.door
	}
	if allRefused {
		// Nothing an enrolled key signed: answered without the write
		// transaction, so junk never holds up the group commit.
		out := make([]*doorstepv1.RecordResult, len(ps))
		for i, p := range ps {
			out[i] = p.refusal()
			s.refused.add(p.verdict.Reason)
		}
		s.answered(out)
		cp, err := s.Checkpoint(ctx, electionID)
		return out, cp, err
	}
	var newKeys []func()
	j := &job{election: electionID, records: len(srs)}
	j.run = func(w *writeTx) error {
		newKeys = newKeys[:0]
		now := s.now()
		for _, p := range ps {
			p.result, p.verdict = nil, p.pre
			if err := w.decide(p, arrival(now, m.Offset), &newKeys); err != nil {
				return err
			}
		}
		if m.Pusher != "" {
			if err := w.noteSync(m, now); err != nil {
				return err
			}
		}
		return nil
	}
	j.after = func() {
		for _, f := range newKeys {
			f()
		}
		for _, p := range ps {
			if p.door {
				s.refused.add(p.verdict.Reason)
			}
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
	s.answered(out)
	return out, cp, nil
}

// decide makes and logs the decision for one prepared record.
func (w *writeTx) decide(p *prepared, a rules.Arrival, after *[]func()) error {
	now := a.Received
	if w.eb == nil {
		return fmt.Errorf("store: election %q vanished", w.id)
	}
	if p.door {
		p.result = p.refusal()
		return nil
	}
	if !p.verdict.Accepted() {
		return w.reject(p, a)
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
		p.verdict = rules.IDReuse(rid)
		return w.reject(p, a)
	}
	vd, err := rules.Record(w, p.rec, p.form, p.bodyHash, a)
	if err != nil {
		return err
	}
	if !vd.Accepted() {
		p.verdict = vd
		return w.reject(p, a)
	}
	res := &doorstepv1.RecordResult{RecordId: rid, Status: vd.Status(), Flags: vd.Flags, Message: vd.Text()}
	switch b := p.rec.GetBody().(type) {
	case *doorstepv1.Record_Ballot:
		res.ReceiptCode = p.receipt
		status, err := w.applyBallot(p, b.Ballot, vd.Held())
		if err != nil {
			return err
		}
		res.Status = status
		if err := w.bucket(bucketReceipts).Put(join(res.ReceiptCode, []byte(rid)), []byte(b.Ballot.GetUnitId())); err != nil {
			return err
		}
	case *doorstepv1.Record_Visit:
		if err := w.applyVisit(b.Visit); err != nil {
			return err
		}
	case *doorstepv1.Record_Committee:
		if err := w.applyCommittee(p, b.Committee, now, after); err != nil {
			return err
		}
	}
	// Accepted: extend the chain, then log.
	author, seq := p.rec.GetAuthorId(), p.rec.GetAuthorSeq()
	if err := w.putChain(author, seq, p.bodyHash, p.rec.GetPrevHash(), p.rec.GetHlc()); err != nil {
		return err
	}
	idx, err := w.appendLog(logEntry(p.sr, res, a))
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

// reject logs a rejection once per exact bytes and answers with it.
func (w *writeTx) reject(p *prepared, a rules.Arrival) error {
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
		Status:   p.verdict.Status(),
		Reason:   p.verdict.Reason,
		Message:  p.verdict.Text(),
	}
	if p.rec != nil && rules.TakesChainSlot(p.verdict.Reason) {
		if err := w.takeChainSlot(p); err != nil {
			return err
		}
	}
	idx, err := w.appendLog(logEntry(p.sr, res, a))
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
	if _, enrolled, err := w.Author(author); err != nil || !enrolled {
		return err
	}
	vd, err := rules.Place(w, author, seq, p.rec.GetPrevHash(), p.bodyHash)
	if err != nil || !vd.Accepted() {
		return err
	}
	return w.putChain(author, seq, p.bodyHash, p.rec.GetPrevHash(), p.rec.GetHlc())
}

// putChain holds record seq of author in its chain and moves the author's
// high-water marks past it.
func (w *writeTx) putChain(author string, seq uint64, body [32]byte, prev []byte, hlc uint64) error {
	if err := w.bucket(bucketChain).Put(chainKey(author, seq), chainValue(body, prev, hlc)); err != nil {
		return err
	}
	return w.advanceDevice(author, seq, body[:], hlc)
}

// advanceDevice moves the author's high-water marks past seq.
func (w *writeTx) advanceDevice(author string, seq uint64, bodyHash []byte, hlc uint64) error {
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
		dev.contiguous, dev.maxSeq, dev.contigHLC = seq, seq, hlc
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
		dev.contigHLC = chainHLC(v)
	}
	w.saveDevice(author, dev)
	return nil
}

// applyBallot stores a ballot whose unit is on the roster and
// re-reconciles the unit; the ballot's status is its arrival.
func (w *writeTx) applyBallot(p *prepared, b *doorstepv1.Ballot, held bool) (doorstepv1.RecordStatus, error) {
	u, ok, err := w.Unit(b.GetUnitId())
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("store: unit %q vanished", b.GetUnitId())
	}
	tb := tally.Ballot{
		RecordID:   p.rec.GetRecordId(),
		DeviceID:   p.rec.GetAuthorId(),
		HLC:        p.rec.GetHlc(),
		Supersedes: b.GetSupersedes(),
		Marks:      p.form.Marks,
		Held:       held,
	}
	v, err := tb.MarshalBinary()
	if err != nil {
		return 0, err
	}
	if err := w.bucket(bucketBallots).Put(join(u.ID, []byte(tb.RecordID)), v); err != nil {
		return 0, err
	}
	out, err := w.reconcile(u, &tb)
	if err != nil {
		return 0, err
	}
	return rules.RecordStatus(out.Arrival(tb.RecordID)), nil
}

// reconcile recomputes a unit's outcome from all its ballots and its
// decision, and moves the owner's aggregate and the running tally from the
// old outcome to the new one.
func (w *writeTx) reconcile(u election.Unit, added *tally.Ballot) (tally.UnitOutcome, error) {
	unitID := u.ID
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
		os, err := w.ownerState(u.OwnerKey)
		if err != nil {
			return out, err
		}
		before := os.Contribution(w.def)
		if old.Counted {
			os.RemoveUnit(u.Area, old.Marks)
		}
		if out.Counted {
			os.AddUnit(u.Area, out.Marks)
		}
		after := os.Contribution(w.def)
		totals.Sub(before)
		totals.Add(after)
		if err := w.updateSplit(u.OwnerKey, before.Split, after.Split); err != nil {
			return out, err
		}
	}
	totals.ApplyUnit(old, out)
	w.totalsDirty = true
	if old.Counted != out.Counted || old.Held() != out.Held() {
		t, err := w.turnout(u.Building)
		if err != nil {
			return out, err
		}
		t.apply(u.Area, old, out)
	}
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

func (w *writeTx) applyVisit(v *doorstepv1.Visit) error {
	return w.setProgress(v.GetUnitId(), func(p *progress) {
		p.visits++
		p.lastVisit = uint8(v.GetOutcome())
		if p.state == 0 || p.state == uint8(doorstepv1.UnitProgress_UNIT_PROGRESS_NOT_VISITED) {
			p.state = uint8(doorstepv1.UnitProgress_UNIT_PROGRESS_VISITED)
		}
	})
}

func hasPrefix(k, p []byte) bool { return len(k) >= len(p) && string(k[:len(p)]) == string(p) }
