package rules

import (
	"fmt"
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

// Arrival is how a record reached the server: when, and how far the
// server's clock was ahead of the device's when the push that carried it
// came (OffsetKnown is false when the push did not say the device's time).
type Arrival struct {
	Received     time.Time
	DeviceOffset time.Duration
	OffsetKnown  bool
}

// Record decides a record whose form passed [CheckForm] and whose
// signature verified under its author's key, given the election at this
// point and how the record arrived: the author's standing, the time rule,
// the record's place in its author's chain and its clock there, and what
// the record says about the roster or the election. An accepted verdict
// carries the flags worth a look (a chain gap, a clock ahead of the
// server's, an item with too many picks, a doubtful late ballot).
func Record(v View, rec *doorstepv1.Record, f Form, bodyHash [32]byte, a Arrival) (Verdict, error) {
	author, seq := rec.GetAuthorId(), rec.GetAuthorSeq()
	au, ok, err := v.Author(author)
	if err != nil || !ok {
		return NotEnrolled(author), err
	}
	if au.Revoked && seq > au.RevokedAfter {
		return Reject(doorstepv1.ReasonCode_REASON_CODE_DEVICE_REVOKED, "author_seq",
			"device %q was revoked after its record %d; this record (%d) is not accepted", author, au.RevokedAfter, seq), nil
	}
	_, isCommittee := rec.GetBody().(*doorstepv1.Record_Committee)
	vd := Accept
	if !isCommittee {
		if vd = CheckTime(v, rec.GetHlc(), a); !vd.Accepted() {
			return vd, nil
		}
	}
	place, err := Place(v, author, seq, rec.GetPrevHash(), bodyHash)
	if err != nil || !place.Accepted() {
		return place, err
	}
	vd.Flags, vd.Notes = append(place.Flags, vd.Flags...), append(place.Notes, vd.Notes...)
	if clock, err := CheckClock(v, author, seq, rec.GetHlc()); err != nil || !clock.Accepted() {
		return clock, err
	}
	if def := v.Definition(); def != nil && hlc.Wall(rec.GetHlc()).After(a.Received.Add(def.FutureSkew)) {
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
		content, err = Committee(v, b.Committee, seq, a.Received)
	}
	if err != nil || !content.Accepted() {
		return content, err
	}
	return vd, nil
}

// Held reports whether an accepted ballot with this verdict is held for
// the committee: a doubtful late ballot counts nowhere until it settles
// the unit.
func (v Verdict) Held() bool {
	for _, f := range v.Flags {
		if f == doorstepv1.RecordFlag_RECORD_FLAG_LATE_DOUBTFUL {
			return true
		}
	}
	return false
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
	if _, _, held, err := v.ChainBody(author, seq); err != nil || held {
		return Reject(reasonFork, "author_seq", "%s already has a different record number %d: the device's history forks", author, seq), err
	}
	vd := Accept
	if seq > 1 {
		p, _, held, err := v.ChainBody(author, seq-1)
		switch {
		case err != nil:
			return Verdict{}, err
		case !held:
			vd.flag(doorstepv1.RecordFlag_RECORD_FLAG_CHAIN_GAP, "records before number "+uitoa(seq)+" from "+author+" have not arrived yet")
		case string(p[:]) != string(prev):
			return Reject(reasonFork, "prev_hash", "record %d of %s does not follow the record %d held before it: the device's history forks", seq, author, seq-1), nil
		}
	}
	next, _, held, err := v.ChainPrev(author, seq+1)
	if err != nil {
		return Verdict{}, err
	}
	if held && next != body {
		return Reject(reasonFork, "author_seq", "record %d of %s is not the one its successor names: the device's history forks", seq, author), nil
	}
	return vd, nil
}

// CheckClock requires the hybrid clock to rise along an author's chain:
// record seq's value must be above its predecessor's and below its
// successor's, where the chain holds them. A device's clock only moves
// forward (it merges the server's time at every sync), so one that goes
// back is a device whose time claims cannot be trusted.
func CheckClock(v View, author string, seq, hlcv uint64) (Verdict, error) {
	if seq > 1 {
		_, p, held, err := v.ChainBody(author, seq-1)
		if err != nil {
			return Verdict{}, err
		}
		if held && p != 0 && hlcv <= p {
			return Reject(doorstepv1.ReasonCode_REASON_CODE_CLOCK, "hlc",
				"record %d of %s is dated %s by its hybrid clock, no later than record %d before it (%s): a device's clock never goes back",
				seq, author, clockText(hlcv), seq-1, clockText(p)), nil
		}
	}
	_, n, held, err := v.ChainPrev(author, seq+1)
	if err != nil {
		return Verdict{}, err
	}
	if held && n != 0 && hlcv >= n {
		return Reject(doorstepv1.ReasonCode_REASON_CODE_CLOCK, "hlc",
			"record %d of %s is dated %s by its hybrid clock, no earlier than record %d after it (%s): a device's clock never goes back",
			seq, author, clockText(hlcv), seq+1, clockText(n)), nil
	}
	return Accept, nil
}

func clockText(h uint64) string { return hlc.Wall(h).UTC().Format(time.RFC3339Nano) }

// LateTolerance is how far a late ballot's time claim, put on the server's
// clock by the offset measured when it arrived, may pass the close: the
// drift of a phone's clock between its last sync and the ballot, and the
// push's own trip.
const LateTolerance = 2 * time.Minute

// CheckTime applies the election's state and sync deadline to a device
// record that claims the hybrid clock value hlcv. After the close, a
// record that claims a time before it is accepted only until the sync
// deadline; if its claim, put on the server's clock by the device offset
// measured at its push, falls after the close (or no offset was measured),
// it is a doubtful late ballot: accepted, flagged, and held for the
// committee.
func CheckTime(v View, hlcv uint64, a Arrival) Verdict {
	switch v.State() {
	case StateOpen:
		return Accept
	case StateCertified:
		return Reject(doorstepv1.ReasonCode_REASON_CODE_ELECTION_CLOSED, "received", "the result was certified: no record is counted any more")
	case StateClosed:
		def := v.Definition()
		if a.Received.After(def.SyncDeadline) {
			return Reject(doorstepv1.ReasonCode_REASON_CODE_AFTER_SYNC_DEADLINE, "received",
				"the record arrived at %s, after the sync deadline %s: it is logged but not counted",
				a.Received.UTC().Format(time.RFC3339Nano), def.SyncDeadline.UTC().Format(time.RFC3339))
		}
		w := hlc.Wall(hlcv)
		if w.After(v.ClosedAt()) {
			return Reject(doorstepv1.ReasonCode_REASON_CODE_ELECTION_CLOSED, "hlc",
				"the record was made at %s (by its hybrid clock), after the election closed at %s",
				w.UTC().Format(time.RFC3339Nano), v.ClosedAt().UTC().Format(time.RFC3339Nano))
		}
		vd := Accept
		switch {
		case !a.OffsetKnown:
			vd.flag(doorstepv1.RecordFlag_RECORD_FLAG_LATE_DOUBTFUL, "it came after the close from a device that did not say its clock, so its time cannot be checked: it is held for the committee")
		case w.Add(a.DeviceOffset).After(v.ClosedAt().Add(LateTolerance)):
			vd.flag(doorstepv1.RecordFlag_RECORD_FLAG_LATE_DOUBTFUL, fmt.Sprintf(
				"it claims %s, but the device's clock was %s behind the server's when it came, which puts it at %s, after the close: it is held for the committee",
				w.UTC().Format(time.RFC3339), a.DeviceOffset.Round(time.Second), w.Add(a.DeviceOffset).UTC().Format(time.RFC3339)))
		}
		return vd
	default:
		return Reject(doorstepv1.ReasonCode_REASON_CODE_ELECTION_NOT_OPEN, "received", "the election was not open yet when the record arrived")
	}
}

// IDReuse is the verdict on a record whose id an earlier, different
// record already has: ids name one record, and nothing is overwritten.
func IDReuse(recordID string) Verdict {
	return Reject(doorstepv1.ReasonCode_REASON_CODE_ID_REUSE, "record_id", "record id %s was already used for a different record; nothing was overwritten", recordID)
}
