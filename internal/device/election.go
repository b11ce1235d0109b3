package device

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// electionView is what a verified set of committee records says.
type electionView struct {
	def     *election.Definition
	defSeq  uint64
	records []committeeRecord // in committee seq order
	roster  *election.Roster  // nil when no roster records yet
	state   electionState
}

type committeeRecord struct {
	seq uint64
	sr  *doorstepv1.SignedRecord
}

// verifyElection checks the committee records the server sent for an
// election: the first is the definition, which names the committee key;
// every record is signed by that key, belongs to the election and is the
// committee's, their author_seq values rise and consecutive records chain by
// prev_hash. pinned, when not nil, is the committee key this device already
// trusts: the definition must name the same key. The roster is the union of
// the roster records, and when the election is open its hash must be the
// one the committee froze.
//
// The device trusts the definition on first use from the server whose key
// the enrollment code pinned; after that nothing can change it unnoticed.
func verifyElection(electionID string, srs []*doorstepv1.SignedRecord, pinned ed25519.PublicKey) (*electionView, error) {
	if len(srs) == 0 {
		return nil, fmt.Errorf("the server has no committee records for election %q: ask the committee whether the election exists", electionID)
	}
	first, err := signed.Decode(srs[0].GetBody())
	if err != nil {
		return nil, fmt.Errorf("committee record 1: %w", err)
	}
	dp := first.GetCommittee().GetDefineElection()
	if dp == nil {
		return nil, fmt.Errorf("the server's first committee record for election %q is not the election's definition", electionID)
	}
	def, err := rules.Definition(dp)
	if err != nil {
		return nil, fmt.Errorf("the election's definition is invalid: %w", err)
	}
	if def.ID != electionID || first.GetElectionId() != electionID {
		return nil, fmt.Errorf("the server sent the definition of election %q, not %q", def.ID, electionID)
	}
	key := def.CommitteeKey
	if pinned != nil && !key.Equal(pinned) {
		return nil, fmt.Errorf("the election's committee key changed: %w", ErrEquivocation)
	}
	v := &electionView{def: def, defSeq: first.GetAuthorSeq()}
	var (
		prevSeq     uint64
		prevHash    [32]byte
		units       []election.Unit
		frozenHash  []byte
		unitsAtOpen = -1
		defineSeen  bool
	)
	for i, sr := range srs {
		if err := signed.Verify(key, sr); err != nil {
			return nil, fmt.Errorf("committee record %d of election %q: %w", i+1, electionID, err)
		}
		rec, err := signed.Decode(sr.GetBody())
		if err != nil {
			return nil, fmt.Errorf("committee record %d of election %q: %w", i+1, electionID, err)
		}
		seq := rec.GetAuthorSeq()
		switch {
		case rec.GetElectionId() != electionID:
			return nil, fmt.Errorf("committee record %d belongs to election %q, not %q", seq, rec.GetElectionId(), electionID)
		case rec.GetAuthorId() != election.CommitteeAuthor:
			return nil, fmt.Errorf("record %d from %q is not the committee's", seq, rec.GetAuthorId())
		case rec.GetCommittee() == nil:
			return nil, fmt.Errorf("committee record %d holds no committee action", seq)
		case i > 0 && seq <= prevSeq:
			return nil, fmt.Errorf("committee records are out of order: %d after %d", seq, prevSeq)
		case i > 0 && seq == prevSeq+1 && !bytes.Equal(rec.GetPrevHash(), prevHash[:]):
			return nil, fmt.Errorf("committee record %d does not follow record %d (prev_hash differs): %w", seq, prevSeq, ErrEquivocation)
		}
		prevSeq, prevHash = seq, signed.BodyHash(sr.GetBody())
		v.records = append(v.records, committeeRecord{seq: seq, sr: sr})
		switch a := rec.GetCommittee().GetAction().(type) {
		case *doorstepv1.CommitteeAction_DefineElection:
			if defineSeen {
				return nil, fmt.Errorf("committee record %d defines the election a second time", seq)
			}
			defineSeen = true
		case *doorstepv1.CommitteeAction_Roster:
			units = append(units, rules.Units(a.Roster.GetUnits())...)
		case *doorstepv1.CommitteeAction_Open:
			if !v.state.Opened {
				v.state.Opened = true
				frozenHash = a.Open.GetRosterSha256()
				unitsAtOpen = len(units)
			}
		case *doorstepv1.CommitteeAction_Close:
			ts := a.Close.GetClosedAt()
			if !ts.IsValid() {
				ts = rec.GetAuthorTime()
			}
			v.state.ClosedAt = ts.AsTime().UTC()
		}
	}
	v.state.CommitteeSeq = prevSeq
	if unitsAtOpen >= 0 && len(frozenHash) > 0 {
		opened := make([]election.Unit, unitsAtOpen)
		copy(opened, units[:unitsAtOpen])
		r, err := election.NewRoster(opened)
		if err != nil {
			return nil, fmt.Errorf("the election's roster is invalid: %w", err)
		}
		if h := r.Hash(); !bytes.Equal(h[:], frozenHash) {
			return nil, fmt.Errorf("the roster the server sent does not match the one the committee froze when it opened the election: %w", ErrEquivocation)
		}
	}
	if len(units) > 0 {
		r, err := election.NewRoster(units)
		if err != nil {
			return nil, fmt.Errorf("the election's roster is invalid: %w", err)
		}
		h := r.Hash()
		v.roster, v.state.RosterUnits, v.state.RosterHash = r, len(r.Units()), h[:]
	}
	return v, nil
}

// storeElection stores a verified election view. Records the device already
// holds must come back byte for byte: a server that drops or changes a
// committee record is showing two histories.
func (w *wtx) storeElection(v *electionView) (added int, err error) {
	stored, err := w.committeeRecords()
	if err != nil {
		return 0, err
	}
	incoming := make(map[uint64]*doorstepv1.SignedRecord, len(v.records))
	for _, cr := range v.records {
		incoming[cr.seq] = cr.sr
	}
	for seq := range stored {
		if incoming[seq] == nil {
			return 0, fmt.Errorf("the server no longer shows committee record %d: %w", seq, ErrEquivocation)
		}
	}
	for _, cr := range v.records {
		if stored[cr.seq] == nil {
			added++
		}
		if err := w.putCommitteeRecord(cr.seq, cr.sr); err != nil {
			return 0, err
		}
	}
	old, _, err := w.electionState()
	if err != nil {
		return 0, err
	}
	if v.roster != nil && !bytes.Equal(old.RosterHash, v.state.RosterHash) {
		if err := w.replaceRoster(v.roster.Units()); err != nil {
			return 0, err
		}
	}
	if err := w.putDefinitionSeq(v.defSeq); err != nil {
		return 0, err
	}
	return added, w.putElectionState(v.state)
}
