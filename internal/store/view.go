package store

import (
	"crypto/sha256"
	"time"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// writeTx is the rules.View of its election: decisions read the state the
// transaction has written so far.
var _ rules.View = (*writeTx)(nil)

func (w *writeTx) Definition() *election.Definition { return w.def }

func (w *writeTx) State() rules.State { return w.state }

func (w *writeTx) ClosedAt() time.Time {
	return time.UnixMilli(getI64(w.bucket(bucketInfo).Get(keyClosedAt)))
}

// Unit reads a roster unit, once per transaction: the decision and the
// ballot it accepts both ask.
func (w *writeTx) Unit(id string) (election.Unit, bool, error) {
	if u, ok := w.units[id]; ok {
		return u, true, nil
	}
	v := w.bucket(bucketUnits).Get([]byte(id))
	if v == nil {
		return election.Unit{}, false, nil
	}
	u, err := decodeUnit(v)
	if err != nil {
		return election.Unit{}, false, err
	}
	w.units[id] = u
	return u, true, nil
}

func (w *writeTx) OwnerOnRoster(ownerKey string) (bool, error) {
	return w.bucket(bucketOwners).Get([]byte(ownerKey)) != nil, nil
}

func (w *writeTx) RosterHash() ([32]byte, int, error) {
	units, err := w.rosterUnits()
	if err != nil {
		return [32]byte{}, 0, err
	}
	return election.HashUnits(units), len(units), nil
}

// rosterUnits reads every unit imported so far, in id order.
func (w *writeTx) rosterUnits() ([]election.Unit, error) {
	var units []election.Unit
	err := w.bucket(bucketUnits).ForEach(func(_, v []byte) error {
		u, err := decodeUnit(v)
		units = append(units, u)
		return err
	})
	return units, err
}

func (w *writeTx) GrantTaken(tokenHash []byte) (bool, error) {
	return w.bucket(bucketGrants).Get(tokenHash) != nil, nil
}

func (w *writeTx) Author(id string) (rules.Author, bool, error) {
	d, err := w.device(id)
	if err != nil || d == nil {
		return rules.Author{}, false, err
	}
	return rules.Author{Revoked: d.revoked, RevokedAfter: d.revokedAfter, MaxSeq: d.maxSeq}, true, nil
}

// ChainBody answers from the device's high-water marks when it can: the
// next record in order needs no read of the chain.
func (w *writeTx) ChainBody(author string, seq uint64) (body [32]byte, hlc uint64, ok bool, err error) {
	d, err := w.device(author)
	if err != nil || d == nil || seq == 0 || seq > d.maxSeq {
		return body, 0, false, err
	}
	if seq == d.contiguous {
		copy(body[:], d.contigHash)
		return body, d.contigHLC, true, nil
	}
	v := w.bucket(bucketChain).Get(chainKey(author, seq))
	if v == nil {
		return body, 0, false, nil
	}
	copy(body[:], v[:32])
	return body, chainHLC(v), true, nil
}

func (w *writeTx) ChainPrev(author string, seq uint64) (prev [32]byte, hlc uint64, ok bool, err error) {
	d, err := w.device(author)
	if err != nil || d == nil || seq > d.maxSeq {
		return prev, 0, false, err
	}
	v := w.bucket(bucketChain).Get(chainKey(author, seq))
	if v == nil {
		return prev, 0, false, nil
	}
	copy(prev[:], v[32:64])
	return prev, chainHLC(v), true, nil
}

func (w *writeTx) Auditor(id string) (granted, revoked bool, err error) {
	v := w.bucket(bucketAuditors).Get([]byte(id))
	if v == nil {
		return false, false, nil
	}
	a, err := decodeAuditor(v)
	if err != nil {
		return false, false, err
	}
	return true, a.revoked, nil
}

func (w *writeTx) TallyHash() ([32]byte, bool, error) {
	t, err := w.loadTotals()
	if err != nil {
		return [32]byte{}, false, err
	}
	info := w.bucket(bucketInfo)
	res := tally.Decide(w.def, getI64(info.Get(keyRosterArea)), int(getI64(info.Get(keyRosterHead))), t)
	return sha256.Sum256(res.CanonicalJSON()), true, nil
}
