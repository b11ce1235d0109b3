package rules

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strconv"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

func invalidAction(field, format string, args ...any) Verdict {
	return Reject(reasonAction, field, format, args...)
}

// Committee decides a committee action, record seq of the committee's
// chain, against the election at this point, at time at. It only judges;
// carrying the action out is the caller's.
func Committee(v View, a *doorstepv1.CommitteeAction, seq uint64, at time.Time) (Verdict, error) {
	if v.State() == StateCertified {
		switch a.GetAction().(type) {
		case *doorstepv1.CommitteeAction_AuditorGrant, *doorstepv1.CommitteeAction_AuditorRevocation, *doorstepv1.CommitteeAction_Revocation:
			// Who may read the record, and which devices are trusted, may
			// still change; the count may not.
		default:
			return invalidAction("committee", "the result was certified: nothing can change it any more"), nil
		}
	}
	switch act := a.GetAction().(type) {
	case *doorstepv1.CommitteeAction_Certify:
		return certify(v, act.Certify, at)
	case *doorstepv1.CommitteeAction_DefineElection:
		return invalidAction("committee.define_election", "the election is already defined; create a new election instead"), nil
	case *doorstepv1.CommitteeAction_Roster:
		return rosterChunk(v, act.Roster)
	case *doorstepv1.CommitteeAction_Enrollment:
		g := act.Enrollment
		if len(g.GetTokenSha256()) != sha256.Size {
			return invalidAction("enrollment.token_sha256", "enrollment.token_sha256 must be a SHA-256 hash"), nil
		}
		if err := election.CheckText("enrollment.label", g.GetLabel(), election.MaxTitleLen); err != nil {
			return fromError(reasonAction, err), nil
		}
		taken, err := v.GrantTaken(g.GetTokenSha256())
		if err != nil || !taken {
			return Accept, err
		}
		return invalidAction("enrollment.token_sha256", "this enrollment token was already granted"), nil
	case *doorstepv1.CommitteeAction_Revocation:
		id := act.Revocation.GetDeviceId()
		if id == election.CommitteeAuthor {
			return invalidAction("revocation.device_id", "the committee key cannot be revoked here"), nil
		}
		_, ok, err := v.Author(id)
		if err != nil || ok {
			return Accept, err
		}
		return invalidAction("revocation.device_id", "device %q is not enrolled", id), nil
	case *doorstepv1.CommitteeAction_Open:
		if v.State() != StateDefined {
			return invalidAction("committee.open", "the election is already open or closed"), nil
		}
		h, n, err := v.RosterHash()
		switch {
		case err != nil:
			return Verdict{}, err
		case n == 0:
			return invalidAction("committee.open", "import the roster before opening the election"), nil
		case string(h[:]) != string(act.Open.GetRosterSha256()):
			return invalidAction("open.roster_sha256", "the open record freezes roster sha256 %x, but the roster records add up to %x: check the roster import",
				act.Open.GetRosterSha256(), h[:]), nil
		}
		return Accept, nil
	case *doorstepv1.CommitteeAction_Close:
		if v.State() != StateOpen {
			return invalidAction("committee.close", "only an open election can be closed"), nil
		}
		return Accept, nil
	case *doorstepv1.CommitteeAction_Adjudication:
		return adjudication(v, act.Adjudication)
	case *doorstepv1.CommitteeAction_AuditorGrant:
		g := act.AuditorGrant
		if len(g.GetPublicKey()) != ed25519.PublicKeySize {
			return invalidAction("auditor_grant.public_key", "must be a %d-byte ed25519 public key, got %d bytes", ed25519.PublicKeySize, len(g.GetPublicKey())), nil
		}
		if err := election.CheckText("auditor_grant.label", g.GetLabel(), election.MaxTitleLen); err != nil {
			return fromError(reasonAction, err), nil
		}
		granted, _, err := v.Auditor(AuditorID(g.GetPublicKey()))
		if err != nil || !granted {
			return Accept, err
		}
		return invalidAction("auditor_grant.public_key", "auditor %s was already granted", AuditorID(g.GetPublicKey())), nil
	case *doorstepv1.CommitteeAction_AuditorRevocation:
		id := act.AuditorRevocation.GetAuditorId()
		if err := election.CheckText("auditor_revocation.reason", act.AuditorRevocation.GetReason(), election.MaxTextLen); err != nil {
			return fromError(reasonAction, err), nil
		}
		granted, revoked, err := v.Auditor(id)
		switch {
		case err != nil:
			return Verdict{}, err
		case !granted:
			return invalidAction("auditor_revocation.auditor_id", "auditor %q was never granted", id), nil
		case revoked:
			return invalidAction("auditor_revocation.auditor_id", "auditor %q is already revoked", id), nil
		}
		return Accept, nil
	}
	return invalidAction("committee", "unknown committee action"), nil
}

func rosterChunk(v View, r *doorstepv1.RosterChunk) (Verdict, error) {
	if v.State() != StateDefined {
		return invalidAction("committee.roster", "the roster is frozen once the election opens"), nil
	}
	units := Units(r.GetUnits())
	if len(units) == 0 {
		return invalidAction("roster.units", "the roster chunk has no units"), nil
	}
	seen := make(map[string]bool, len(units))
	for i := range units {
		u := &units[i]
		field := "roster.units[" + strconv.Itoa(i) + "]"
		if err := u.Validate(); err != nil {
			return invalidAction(field, "roster unit %d: %v", i+1, err), nil
		}
		_, dup, err := v.Unit(u.ID)
		if err != nil {
			return Verdict{}, err
		}
		if dup || seen[u.ID] {
			return invalidAction(field, "roster unit %d: unit %q is already on the roster", i+1, u.ID), nil
		}
		seen[u.ID] = true
	}
	return Accept, nil
}

func adjudication(v View, a *doorstepv1.Adjudication) (Verdict, error) {
	if v.State() < StateOpen {
		return invalidAction("committee.adjudication", "nothing to adjudicate before the election opens"), nil
	}
	if err := election.CheckText("adjudication.reason", a.GetReason(), election.MaxTextLen); err != nil {
		return fromError(reasonAction, err), nil
	}
	switch sub := a.GetSubject().(type) {
	case *doorstepv1.Adjudication_Unit:
		unit := sub.Unit.GetUnitId()
		_, ok, err := v.Unit(unit)
		if err != nil {
			return Verdict{}, err
		}
		if !ok {
			return invalidAction("adjudication.unit.unit_id", "unit %q is not on the roster", unit), nil
		}
		// A decision may name a ballot that has not arrived yet: it takes
		// effect when the ballot does, so the outcome never depends on the
		// order records arrive in.
		if id := sub.Unit.GetCountedRecordId(); id != "" {
			if err := signed.CheckRecordID("adjudication.unit.counted_record_id", id); err != nil {
				return fromError(reasonAction, err), nil
			}
		}
		return Accept, nil
	case *doorstepv1.Adjudication_Owner:
		ok, err := v.OwnerOnRoster(sub.Owner.GetOwnerKey())
		if err != nil {
			return Verdict{}, err
		}
		if !ok {
			return invalidAction("adjudication.owner.owner_key", "owner %q is not on the roster", sub.Owner.GetOwnerKey()), nil
		}
		_, _, vd := OwnerMark(v.Definition(), sub.Owner)
		return vd, nil
	}
	return invalidAction("adjudication", "an adjudication must name a unit or an owner"), nil
}

// OwnerMark reads a split owner's settlement: the index of the item it
// settles and the headcount vote it gives there. A vote the item's rule
// does not allow (an unknown candidate, more candidates than seats) is
// rejected as an invalid selection naming the item: a settlement must
// settle.
func OwnerMark(def *election.Definition, o *doorstepv1.OwnerDecision) (int, election.Mark, Verdict) {
	marks, invalid, err := def.Marks([]election.Selection{{ItemID: o.GetItemId(), Choice: election.Choice(o.GetChoice()), Candidates: o.GetCandidateIds()}})
	if err != nil {
		return 0, election.Mark{}, fromError(reasonSelection, prefixField("adjudication.owner.", err))
	}
	item := def.ItemIndex(o.GetItemId())
	if invalid {
		return 0, election.Mark{}, Reject(reasonSelection, "adjudication.owner.candidate_ids",
			"item %q: the settlement picks %d candidates for %d seats; pick at most %d", o.GetItemId(), len(o.GetCandidateIds()), def.Items[item].Seats, def.Items[item].Seats)
	}
	return item, marks[item], Accept
}

// DefineElection reads the committee's first record, which must define
// the election: the root of trust, to be signed by the committee key it
// names (the caller checks the signature with the key returned).
func DefineElection(rec *doorstepv1.Record) (*election.Definition, error) {
	pd := rec.GetCommittee().GetDefineElection()
	if pd == nil {
		return nil, election.Errorf(election.CodeInvalid, "record", "must be a committee define_election record")
	}
	if rec.GetAuthorId() != election.CommitteeAuthor || rec.GetAuthorSeq() != 1 {
		return nil, election.Errorf(election.CodeInvalid, "record", "the definition must be the committee's record number 1 (author %q, seq %d)", rec.GetAuthorId(), rec.GetAuthorSeq())
	}
	def, err := Definition(pd)
	if err != nil {
		return nil, err
	}
	if err := CheckElectionID(def.ID); err != nil {
		return nil, err
	}
	if def.ID != rec.GetElectionId() {
		return nil, election.Errorf(election.CodeInvalid, "election_id", "the record names election %q but the definition %q", rec.GetElectionId(), def.ID)
	}
	return def, nil
}

// CheckElectionID keeps election ids to characters that are safe in a
// checkpoint origin, a file name and a URL.
func CheckElectionID(id string) error {
	if err := election.CheckID("election_id", id); err != nil {
		return err
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return election.Errorf(election.CodeInvalid, "election_id", "%q may use only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}

// ObjectionEnds is when the committee may certify an election closed at
// closedAt: after the objection period of the preliminary notice, and not
// before the sync deadline (late ballots may still come until then).
func ObjectionEnds(def *election.Definition, closedAt time.Time) time.Time {
	ends := closedAt.Add(def.ObjectionPeriod)
	if def.SyncDeadline.After(ends) {
		ends = def.SyncDeadline
	}
	return ends
}

func certify(v View, c *doorstepv1.CertifyResult, at time.Time) (Verdict, error) {
	if v.State() != StateClosed {
		return invalidAction("committee.certify", "only a closed election's result can be certified"), nil
	}
	if ends := ObjectionEnds(v.Definition(), v.ClosedAt()); at.Before(ends) {
		return invalidAction("committee.certify", "the objection period of the preliminary notice runs until %s: certify after it",
			ends.UTC().Format(time.RFC3339)), nil
	}
	if len(c.GetTallySha256()) != sha256.Size {
		return invalidAction("certify.tally_sha256", "must be the SHA-256 of the tally's canonical JSON"), nil
	}
	h, known, err := v.TallyHash()
	if err != nil {
		return Verdict{}, err
	}
	if known && string(h[:]) != string(c.GetTallySha256()) {
		return invalidAction("certify.tally_sha256", "the tally has changed since it was shown for certifying: look at it again and certify that one"), nil
	}
	return Accept, nil
}
