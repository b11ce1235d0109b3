package device

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// Ballot is a unit's ballot sheet as the canvasser enters it.
type Ballot struct {
	UnitID string
	// Selections holds at most one answer per item; an item left out is
	// blank on this ballot.
	Selections []election.Selection
	// Blank says the owner returned the sheet with no item answered. A
	// ballot without selections must say so, so that a sheet is never
	// saved empty by a slip of the canvasser's.
	Blank  bool
	Signer doorstepv1.SignerKind
	// ProxyRef identifies the proxy document; required when Signer is proxy.
	ProxyRef   string
	SignerName string
	// Comment is the resident's comments and suggestions, free text.
	Comment string
	// Supersedes is the record id of an earlier ballot for the unit that
	// this one replaces. ReviseBallot fills it in from the device's own
	// latest ballot when empty.
	Supersedes string
}

// Visit is a call at a unit that produced no ballot, or left one.
type Visit struct {
	UnitID  string
	Outcome doorstepv1.VisitOutcome
	Note    string
}

// Saved describes a record committed to the device.
type Saved struct {
	RecordID string
	Seq      uint64
	HLC      uint64
	// Receipt is the household's receipt code (ballots only).
	Receipt string
	// InvalidItems lists items with more picks than seats: the ballot
	// counts, but those items are invalid on it.
	InvalidItems []string
	// Warnings are things the canvasser should know (the election closed,
	// by this device's last sync).
	Warnings []string
}

// RecordBallot validates b against the election, signs it as the device's
// next record and commits it durably before returning. It needs no network.
func (d *Device) RecordBallot(ctx context.Context, b Ballot) (Saved, error) {
	def, roster, err := d.Election()
	if err != nil {
		return Saved{}, err
	}
	body, invalid, err := checkBallot(def, roster, &b)
	if err != nil {
		return Saved{}, err
	}
	saved, err := d.commit(ctx, b.UnitID, &doorstepv1.Record{Body: &doorstepv1.Record_Ballot{Ballot: body}})
	if err != nil {
		return Saved{}, err
	}
	saved.InvalidItems = invalid
	return saved, nil
}

// ReviseBallot records a new ballot for a unit whose owner changed their
// mind. It supersedes b.Supersedes, or when that is empty this device's
// latest ballot for the unit. b is the whole new ballot: to change only
// some answers, start from LastBallot and Revise.
func (d *Device) ReviseBallot(ctx context.Context, b Ballot) (Saved, error) {
	if b.Supersedes == "" {
		id, ok, err := d.LatestBallot(b.UnitID)
		if err != nil {
			return Saved{}, err
		}
		if !ok {
			return Saved{}, election.Errorf(election.CodeNotFound, "supersedes",
				"this device has no ballot for unit %q to revise; if another device recorded it, give that ballot's record id", b.UnitID)
		}
		b.Supersedes = id
	}
	return d.RecordBallot(ctx, b)
}

// LastBallot returns this device's latest ballot for a unit as it was
// saved, with its record id in Supersedes' place (RecordID) and its number.
func (d *Device) LastBallot(unitID string) (b Ballot, recordID string, seq uint64, ok bool, err error) {
	var sr *doorstepv1.SignedRecord
	err = d.st.read(func(r *rtx) error {
		u, err := r.unitState(unitID)
		if err != nil || u.Ballots == 0 {
			return err
		}
		sr, ok, err = r.record(u.LastBallotSeq)
		seq = u.LastBallotSeq
		return err
	})
	if err != nil {
		return Ballot{}, "", 0, false, fmt.Errorf("read unit %s: %w", unitID, err)
	}
	if !ok {
		return Ballot{}, "", 0, false, nil
	}
	rec, err := signed.Decode(sr.GetBody())
	if err != nil {
		return Ballot{}, "", 0, false, fmt.Errorf("read ballot #%d: %w", seq, err)
	}
	body := rec.GetBallot()
	b = Ballot{UnitID: body.GetUnitId(), Signer: body.GetSignerKind(), ProxyRef: body.GetProxyReference(),
		SignerName: body.GetSignerName(), Comment: body.GetComment(), Supersedes: body.GetSupersedes()}
	for _, sel := range body.GetSelections() {
		b.Selections = append(b.Selections, election.Selection{ItemID: sel.GetItemId(), Choice: election.Choice(sel.GetChoice()), Candidates: sel.GetCandidateIds()})
	}
	b.Blank = len(b.Selections) == 0
	return b, rec.GetRecordId(), seq, true, nil
}

// Revision is what a revise names: only these change.
type Revision struct {
	// Set replaces the answer to each item it names.
	Set []election.Selection
	// Clear leaves these items blank.
	Clear []string
	// Signer, ProxyRef, SignerName and Comment replace the earlier ones
	// when not nil.
	Signer                        *doorstepv1.SignerKind
	ProxyRef, SignerName, Comment *string
}

// Revise is prev with what r names changed and everything else kept: a
// revision never blanks an answer it does not name. The result supersedes
// prevID.
func Revise(prev Ballot, prevID string, r Revision) Ballot {
	next := prev
	next.Supersedes = prevID
	next.Selections = nil
	drop := map[string]bool{}
	for _, id := range r.Clear {
		drop[id] = true
	}
	set := map[string]election.Selection{}
	for _, s := range r.Set {
		set[s.ItemID] = s
	}
	for _, s := range prev.Selections {
		if n, ok := set[s.ItemID]; ok {
			s = n
			delete(set, s.ItemID)
		}
		if !drop[s.ItemID] {
			next.Selections = append(next.Selections, s)
		}
	}
	for _, s := range r.Set { // items the earlier ballot left blank, in the order named
		if _, ok := set[s.ItemID]; ok && !drop[s.ItemID] {
			next.Selections = append(next.Selections, s)
		}
	}
	if r.Signer != nil {
		next.Signer = *r.Signer
		if next.Signer != doorstepv1.SignerKind_SIGNER_KIND_PROXY && r.ProxyRef == nil {
			next.ProxyRef = ""
		}
	}
	if r.ProxyRef != nil {
		next.ProxyRef = *r.ProxyRef
	}
	if r.SignerName != nil {
		next.SignerName = *r.SignerName
	}
	if r.Comment != nil {
		next.Comment = *r.Comment
	}
	next.Blank = len(next.Selections) == 0
	return next
}

// RecordVisit records a call at a unit, durably, with no network.
func (d *Device) RecordVisit(ctx context.Context, v Visit) (Saved, error) {
	_, roster, err := d.Election()
	if err != nil {
		return Saved{}, err
	}
	if err := checkUnit(roster, v.UnitID); err != nil {
		return Saved{}, err
	}
	body := &doorstepv1.Visit{UnitId: v.UnitID, Outcome: v.Outcome, Note: v.Note}
	if err := rules.CheckVisit(body); err != nil {
		return Saved{}, ownField("visit.", err)
	}
	return d.commit(ctx, v.UnitID, &doorstepv1.Record{Body: &doorstepv1.Record_Visit{Visit: body}})
}

// LatestBallot returns the record id of this device's latest ballot for a
// unit.
func (d *Device) LatestBallot(unitID string) (string, bool, error) {
	var u unitState
	err := d.st.read(func(r *rtx) error {
		var err error
		u, err = r.unitState(unitID)
		return err
	})
	if err != nil {
		return "", false, fmt.Errorf("read unit %s: %w", unitID, err)
	}
	return u.LastBallotID, u.Ballots > 0, nil
}

func checkUnit(roster *election.Roster, unitID string) error {
	if roster == nil {
		return ErrNoRoster
	}
	if _, ok := roster.Unit(unitID); !ok {
		return election.Errorf(election.CodeNotFound, "unit", "unit %q is not on this election's roster: check the number on the door (units look like %q)", unitID, roster.Units()[0].ID)
	}
	return nil
}

// checkBallot validates a ballot by the server's own rules, so that what
// the canvasser saves at the door is never rejected for its form later.
// The device asks a little more of the canvasser than the rules do: who
// signed must be said, and only a proxy's ballot names a proxy document.
func checkBallot(def *election.Definition, roster *election.Roster, b *Ballot) (*doorstepv1.Ballot, []string, error) {
	if err := checkUnit(roster, b.UnitID); err != nil {
		return nil, nil, err
	}
	switch b.Signer {
	case doorstepv1.SignerKind_SIGNER_KIND_OWNER, doorstepv1.SignerKind_SIGNER_KIND_CO_OWNER:
		if b.ProxyRef != "" {
			return nil, nil, election.Errorf(election.CodeInvalid, "proxy_reference", "only a ballot signed by a proxy names a proxy document")
		}
	case doorstepv1.SignerKind_SIGNER_KIND_PROXY:
	default:
		return nil, nil, election.Errorf(election.CodeInvalid, "signer", "say who signed: the owner, a co-owner or a proxy")
	}
	body := &doorstepv1.Ballot{
		UnitId:         b.UnitID,
		SignerKind:     b.Signer,
		ProxyReference: b.ProxyRef,
		SignerName:     b.SignerName,
		Comment:        b.Comment,
		Supersedes:     b.Supersedes,
	}
	for _, s := range b.Selections {
		body.Selections = append(body.Selections, &doorstepv1.Selection{
			ItemId:       s.ItemID,
			Choice:       doorstepv1.Choice(s.Choice),
			CandidateIds: s.Candidates,
		})
	}
	if err := rules.CheckBallot(body); err != nil {
		return nil, nil, ownField("ballot.", err)
	}
	switch {
	case len(b.Selections) == 0 && !b.Blank:
		return nil, nil, election.Errorf(election.CodeInvalid, "selections",
			"this ballot answers no item: if the owner returned the sheet blank, record it as a blank ballot")
	case len(b.Selections) > 0 && b.Blank:
		return nil, nil, election.Errorf(election.CodeInvalid, "selections",
			"a blank ballot answers no item: leave out the answers, or do not mark it blank")
	}
	marks, _, err := def.Marks(b.Selections)
	if err != nil {
		return nil, nil, err
	}
	var invalid []string
	for i, m := range marks {
		if m.Kind == election.MarkInvalid {
			invalid = append(invalid, def.Items[i].ID)
		}
	}
	return body, invalid, nil
}

// ownField names a rule's error by this package's field, which is the
// record's field without the part's prefix (ballot.comment is comment).
func ownField(prefix string, err error) error {
	var de *election.Error
	if errors.As(err, &de) {
		return &election.Error{Code: de.Code, Field: strings.TrimPrefix(de.Field, prefix), Msg: de.Msg}
	}
	return err
}

// commit fills in the envelope of rec as the device's next record, signs it
// and stores it, the chain head, the clock and the unit's state in one
// transaction, which bbolt fsyncs before it returns.
func (d *Device) commit(ctx context.Context, unitID string, rec *doorstepv1.Record) (Saved, error) {
	d.mu.RLock()
	enr, key := d.enr, d.key
	d.mu.RUnlock()
	if enr == nil {
		return Saved{}, ErrNotEnrolled
	}
	if err := ctx.Err(); err != nil {
		return Saved{}, err
	}
	var saved Saved
	err := d.st.write(func(w *wtx) error {
		head, err := w.chain()
		if err != nil {
			return err
		}
		id, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("make record id: %w", err)
		}
		// The clock is read inside the write transaction, which bbolt runs
		// one at a time, so hybrid clock values rise with author_seq.
		now := d.now()
		rec.FormatVersion = signed.FormatVersion
		rec.RecordId = id.String()
		rec.ElectionId = enr.ElectionID
		rec.AuthorId = enr.DeviceID
		rec.AuthorSeq = head.Seq + 1
		rec.PrevHash = nil
		if head.Seq > 0 {
			rec.PrevHash = head.Hash[:]
		}
		rec.Hlc = d.clock.Now()
		rec.AuthorTime = timestamppb.New(now)
		sr, err := signed.Sign(key, rec)
		if err != nil {
			return err
		}
		// Decode as the server will: a record this device cannot read back
		// must not enter the chain.
		if _, err := signed.Decode(sr.GetBody()); err != nil {
			return fmt.Errorf("the record would be refused: %w", err)
		}
		if err := w.putRecord(rec.AuthorSeq, sr); err != nil {
			return err
		}
		if err := w.putChain(chainHead{Seq: rec.AuthorSeq, Hash: signed.BodyHash(sr.GetBody())}); err != nil {
			return err
		}
		if err := w.putHLC(d.clock.Last()); err != nil {
			return err
		}
		u, err := w.unitState(unitID)
		if err != nil {
			return err
		}
		switch body := rec.GetBody().(type) {
		case *doorstepv1.Record_Ballot:
			// Checked in the transaction that saves it, so two ballots
			// entered at once cannot both pass as the unit's first.
			if u.Ballots > 0 && body.Ballot.GetSupersedes() == "" {
				return election.Errorf(election.CodeConflict, "unit",
					"this device already has a ballot for unit %s (record #%d): if the owner changed their mind, revise that ballot", unitID, u.LastBallotSeq)
			}
			u.Ballots++
			u.LastBallotID, u.LastBallotSeq = rec.RecordId, rec.AuthorSeq
			saved.Receipt = ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature())
		case *doorstepv1.Record_Visit:
			u.Visits++
			u.LastVisit = int32(body.Visit.GetOutcome())
		}
		if err := w.putUnitState(unitID, u); err != nil {
			return err
		}
		es, _, err := w.electionState()
		if err != nil {
			return err
		}
		if !es.ClosedAt.IsZero() && now.After(es.ClosedAt) {
			saved.Warnings = append(saved.Warnings, fmt.Sprintf(
				"the committee closed this election at %s (as of this device's last sync): the server will reject records made after that",
				es.ClosedAt.Local().Format("2006-01-02 15:04")))
		}
		saved.RecordID, saved.Seq, saved.HLC = rec.RecordId, rec.AuthorSeq, rec.Hlc
		return nil
	})
	var de *election.Error
	if errors.As(err, &de) {
		return Saved{}, err // the canvasser's to fix, said plainly
	}
	if err != nil {
		return Saved{}, fmt.Errorf("save record: %w", err)
	}
	d.log.Debug("record saved", "seq", saved.Seq, "record_id", saved.RecordID, "unit", unitID)
	return saved, nil
}
