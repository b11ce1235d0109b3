package rules

import (
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/hlc"
)

const (
	reasonMalformed    = doorstepv1.ReasonCode_REASON_CODE_MALFORMED
	reasonUnknownUnit  = doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT
	reasonSelection    = doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION
	reasonNotCommittee = doorstepv1.ReasonCode_REASON_CODE_NOT_COMMITTEE
	reasonAction       = doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION
	reasonFork         = doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK
)

// Form is what a record's content gives once read under the definition.
type Form struct {
	// Marks are a ballot's validated answers, one per item.
	Marks election.Marks
	// Invalid is set when an item of the ballot has more picks than seats.
	Invalid bool
}

// CheckForm checks what needs only the definition, so that it can run
// before any transaction and in parallel: that the record came the way its
// author may send it (viaCommittee: through the committee's submission,
// else a device's push), and a ballot's or a visit's fields and
// selections.
func CheckForm(def *election.Definition, rec *doorstepv1.Record, viaCommittee bool) (Form, Verdict) {
	if fromCommittee := rec.GetAuthorId() == election.CommitteeAuthor; viaCommittee != fromCommittee {
		if viaCommittee {
			return Form{}, Reject(reasonNotCommittee, "author_id", "only records signed by the committee key may be submitted here")
		}
		return Form{}, Reject(reasonNotCommittee, "author_id", "committee records go through the election service, not a device push")
	}
	switch b := rec.GetBody().(type) {
	case *doorstepv1.Record_Ballot:
		if viaCommittee {
			return Form{}, Reject(reasonAction, "ballot", "a ballot is not a committee action")
		}
		if err := CheckBallot(b.Ballot); err != nil {
			return Form{}, fromError(reasonMalformed, err)
		}
		marks, invalid, err := def.Marks(Selections(b.Ballot.GetSelections()))
		if err != nil {
			return Form{}, fromError(reasonSelection, prefixField("ballot.", err))
		}
		return Form{Marks: marks, Invalid: invalid}, Accept
	case *doorstepv1.Record_Visit:
		if viaCommittee {
			return Form{}, Reject(reasonAction, "visit", "a visit is not a committee action")
		}
		if err := CheckVisit(b.Visit); err != nil {
			return Form{}, fromError(reasonMalformed, err)
		}
	case *doorstepv1.Record_Committee:
		if !viaCommittee {
			return Form{}, Reject(reasonNotCommittee, "author_id", "committee actions must be signed by the committee key")
		}
	default:
		return Form{}, Reject(reasonMalformed, "body", "record has no ballot, visit or committee action")
	}
	return Form{}, Accept
}

// NotEnrolled is the verdict on a record whose author is not enrolled.
func NotEnrolled(author string) Verdict {
	return Reject(doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_DEVICE, "author_id",
		"device %q is not enrolled in this election: ask the committee for an enrollment code", author)
}

// Record decides a record whose form passed [CheckForm] and whose
// signature verified under its author's key, given the election at this
// point and the time the record arrived: the author's standing, the time
// rule, the record's place in its author's chain, and what the record
// says about the roster or the election. An accepted verdict carries the
// flags worth a look (a chain gap, a clock ahead of the server's, an item
// with too many picks).
func Record(v View, rec *doorstepv1.Record, f Form, bodyHash [32]byte, received time.Time) (Verdict, error) {
	author, seq := rec.GetAuthorId(), rec.GetAuthorSeq()
	a, ok, err := v.Author(author)
	if err != nil || !ok {
		return NotEnrolled(author), err
	}
	if a.Revoked && seq > a.RevokedAfter {
		return Reject(doorstepv1.ReasonCode_REASON_CODE_DEVICE_REVOKED, "author_seq",
			"device %q was revoked after its record %d; this record (%d) is not accepted", author, a.RevokedAfter, seq), nil
	}
	_, isCommittee := rec.GetBody().(*doorstepv1.Record_Committee)
	if !isCommittee {
		if vd := CheckTime(v, rec.GetHlc(), received); !vd.Accepted() {
			return vd, nil
		}
	}
	vd, err := Place(v, author, seq, rec.GetPrevHash(), bodyHash)
	if err != nil || !vd.Accepted() {
		return vd, err
	}
	if def := v.Definition(); def != nil && hlc.Wall(rec.GetHlc()).After(received.Add(def.FutureSkew)) {
		vd.flag(doorstepv1.RecordFlag_RECORD_FLAG_FUTURE_DATED, "the record is dated ahead of the server's clock: check the device's clock")
	}
	if f.Invalid {
		vd.flag(doorstepv1.RecordFlag_RECORD_FLAG_ITEM_INVALID, "an item has more picks than seats and is invalid on this ballot; the other items count")
	}
	var content Verdict
	switch b := rec.GetBody().(type) {
	case *doorstepv1.Record_Ballot:
		content, err = onRoster(v, "ballot.unit_id", b.Ballot.GetUnitId())
	case *doorstepv1.Record_Visit:
		content, err = onRoster(v, "visit.unit_id", b.Visit.GetUnitId())
	case *doorstepv1.Record_Committee:
		content, err = Committee(v, b.Committee, seq)
	}
	if err != nil || !content.Accepted() {
		return content, err
	}
	return vd, nil
}

func onRoster(v View, field, unitID string) (Verdict, error) {
	_, ok, err := v.Unit(unitID)
	if err != nil || ok {
		return Accept, err
	}
	return Reject(reasonUnknownUnit, field, "unit %q is not on the roster", unitID), nil
}

// Place decides whether a record fits in its author's chain as record seq
// naming prev, with body hash body. Another record already held at seq,
// a predecessor whose hash is not prev, or a successor naming another
// hash is a fork, rejected. A predecessor that has not arrived is a gap:
// accepted, and flagged.
func Place(v View, author string, seq uint64, prev []byte, body [32]byte) (Verdict, error) {
	if _, held, err := v.ChainBody(author, seq); err != nil || held {
		return Reject(reasonFork, "author_seq", "%s already has a different record number %d: the device's history forks", author, seq), err
	}
	vd := Accept
	if seq > 1 {
		p, held, err := v.ChainBody(author, seq-1)
		switch {
		case err != nil:
			return Verdict{}, err
		case !held:
			vd.flag(doorstepv1.RecordFlag_RECORD_FLAG_CHAIN_GAP, "records before number "+uitoa(seq)+" from "+author+" have not arrived yet")
		case string(p[:]) != string(prev):
			return Reject(reasonFork, "prev_hash", "record %d of %s does not follow the record %d held before it: the device's history forks", seq, author, seq-1), nil
		}
	}
	next, held, err := v.ChainPrev(author, seq+1)
	if err != nil {
		return Verdict{}, err
	}
	if held && next != body {
		return Reject(reasonFork, "author_seq", "record %d of %s is not the one its successor names: the device's history forks", seq, author), nil
	}
	return vd, nil
}

// CheckTime applies the election's state and sync deadline to a device
// record that arrived at received and claims the hybrid clock value hlcv.
func CheckTime(v View, hlcv uint64, received time.Time) Verdict {
	switch v.State() {
	case StateOpen:
		return Accept
	case StateClosed:
		def := v.Definition()
		if received.After(def.SyncDeadline) {
			return Reject(doorstepv1.ReasonCode_REASON_CODE_AFTER_SYNC_DEADLINE, "received",
				"the record arrived at %s, after the sync deadline %s: it is logged but not counted",
				received.UTC().Format(time.RFC3339Nano), def.SyncDeadline.UTC().Format(time.RFC3339))
		}
		if w := hlc.Wall(hlcv); w.After(v.ClosedAt()) {
			return Reject(doorstepv1.ReasonCode_REASON_CODE_ELECTION_CLOSED, "hlc",
				"the record was made at %s (by its hybrid clock), after the election closed at %s",
				w.UTC().Format(time.RFC3339Nano), v.ClosedAt().UTC().Format(time.RFC3339Nano))
		}
		return Accept
	default:
		return Reject(doorstepv1.ReasonCode_REASON_CODE_ELECTION_NOT_OPEN, "received", "the election was not open yet when the record arrived")
	}
}

// IDReuse is the verdict on a record whose id an earlier, different
// record already has: ids name one record, and nothing is overwritten.
func IDReuse(recordID string) Verdict {
	return Reject(doorstepv1.ReasonCode_REASON_CODE_ID_REUSE, "record_id", "record id %s was already used for a different record; nothing was overwritten", recordID)
}
