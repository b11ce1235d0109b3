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
	// Selections holds at most one answer per item; an item left out is an
	// abstention.
	Selections []election.Selection
	Signer     doorstepv1.SignerKind
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
// latest ballot for the unit.
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
	if err != nil {
		return Saved{}, fmt.Errorf("save record: %w", err)
	}
	d.log.Debug("record saved", "seq", saved.Seq, "record_id", saved.RecordID, "unit", unitID)
	return saved, nil
}
