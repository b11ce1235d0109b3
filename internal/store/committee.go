package store

import (
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

func decodeUnit(v []byte) (election.Unit, error) {
	u := &doorstepv1.Unit{}
	if err := proto.Unmarshal(v, u); err != nil {
		return election.Unit{}, fmt.Errorf("store: unit: %w", err)
	}
	return rules.Units([]*doorstepv1.Unit{u})[0], nil
}

func encodeUnitDecision(d tally.UnitDecision) []byte {
	b := binary.BigEndian.AppendUint64(nil, d.Seq)
	return append(b, d.CountedRecordID...)
}

func decodeUnitDecision(v []byte) (tally.UnitDecision, error) {
	if len(v) < 8 {
		return tally.UnitDecision{}, errCorrupt
	}
	return tally.UnitDecision{Seq: binary.BigEndian.Uint64(v), CountedRecordID: string(v[8:])}, nil
}

// CreateElection defines a new election from a define_election record
// signed by the committee key the definition names.
func (s *Store) CreateElection(ctx context.Context, sr *doorstepv1.SignedRecord) (*doorstepv1.RecordResult, *doorstepv1.Checkpoint, error) {
	if len(sr.GetBody()) > signed.MaxCommitteeBodyBytes {
		return nil, nil, election.Errorf(election.CodeTooLarge, "record.body", "is %d bytes; the limit is %d", len(sr.GetBody()), signed.MaxCommitteeBodyBytes)
	}
	rec, err := signed.Decode(sr.GetBody())
	if err != nil {
		return nil, nil, err
	}
	def, err := rules.DefineElection(rec)
	if err != nil {
		return nil, nil, err
	}
	pd := rec.GetCommittee().GetDefineElection()
	// The definition is the root of trust: it is signed by the key it names.
	if err := signed.Verify(def.CommitteeKey, sr); err != nil {
		return nil, nil, election.Errorf(election.CodeInvalid, "record.signature", "%v", err)
	}
	defBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(pd)
	if err != nil {
		return nil, nil, err
	}
	var res *doorstepv1.RecordResult
	j := &job{election: def.ID, records: 1}
	j.run = func(w *writeTx) error {
		res = nil
		now := s.now()
		if w.eb != nil {
			// Already defined: an exact retry gets its answer again.
			if v := w.bucket(bucketRecords).Get([]byte(rec.GetRecordId())); v != nil {
				e, err := w.entry(getI64(v))
				if err != nil {
					return err
				}
				if proto.Equal(e.GetRecord(), sr) {
					res = e.GetResult()
					res.Replayed = true
					return nil
				}
			}
			return refuse(election.Errorf(election.CodeConflict, "election_id", "election %q already exists: choose another id", def.ID))
		}
		eb, err := w.tx.Bucket(bucketElections).CreateBucket([]byte(def.ID))
		if err != nil {
			return err
		}
		for _, name := range electionBuckets {
			if _, err := eb.CreateBucket(name); err != nil {
				return err
			}
		}
		w.eb = eb
		w.def = def
		info := eb.Bucket(bucketInfo)
		if err := info.Put(keyDefinition, defBytes); err != nil {
			return err
		}
		if err := info.Put(keyState, []byte{byte(rules.StateDefined)}); err != nil {
			return err
		}
		w.state = rules.StateDefined
		committee := &device{pub: def.CommitteeKey, label: "election committee"}
		if err := w.bucket(bucketDevices).Put([]byte(election.CommitteeAuthor), committee.encode()); err != nil {
			return err
		}
		if err := w.putChain(election.CommitteeAuthor, 1, signed.BodyHash(sr.GetBody()), nil, rec.GetHlc()); err != nil {
			return err
		}
		res = &doorstepv1.RecordResult{RecordId: rec.GetRecordId(), Status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED}
		idx, err := w.appendLog(&doorstepv1.LogEntry{Record: sr, Result: res, Received: timestamppb.New(now)})
		if err != nil {
			return err
		}
		if err := w.bucket(bucketRecords).Put([]byte(rec.GetRecordId()), putI64(idx)); err != nil {
			return err
		}
		return w.bucket(bucketCommittee).Put(putU64(1), putI64(idx))
	}
	j.after = func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.elections[def.ID] == nil {
			s.elections[def.ID] = &electionCache{def: def, defProto: pd, keys: map[string]ed25519.PublicKey{election.CommitteeAuthor: def.CommitteeKey}, auditors: map[string]auditorKey{}}
		}
	}
	if err := s.submit(ctx, j); err != nil {
		return nil, nil, err
	}
	cp, err := s.Checkpoint(ctx, def.ID)
	if err != nil {
		return nil, nil, err
	}
	return res, cp, nil
}

// applyCommittee carries out one committee action that rules.Committee
// accepted.
func (w *writeTx) applyCommittee(p *prepared, a *doorstepv1.CommitteeAction, now time.Time, after *[]func()) error {
	info := w.bucket(bucketInfo)
	seq := p.rec.GetAuthorSeq()
	switch act := a.GetAction().(type) {
	case *doorstepv1.CommitteeAction_Roster:
		ub, ob, oub := w.bucket(bucketUnits), w.bucket(bucketOwners), w.bucket(bucketOwnerUnits)
		for _, pu := range act.Roster.GetUnits() {
			v, err := proto.Marshal(pu)
			if err != nil {
				return err
			}
			if err := ub.Put([]byte(pu.GetUnitId()), v); err != nil {
				return err
			}
			n := getI64(ob.Get([]byte(pu.GetOwnerKey())))
			if err := ob.Put([]byte(pu.GetOwnerKey()), putI64(n+1)); err != nil {
				return err
			}
			if err := oub.Put(join(pu.GetOwnerKey(), []byte(pu.GetUnitId())), nil); err != nil {
				return err
			}
		}
	case *doorstepv1.CommitteeAction_Enrollment:
		g := act.Enrollment
		return w.bucket(bucketGrants).Put(g.GetTokenSha256(), encodeGrant(grant{recordID: p.rec.GetRecordId(), label: g.GetLabel(), expires: g.GetExpires().AsTime()}))
	case *doorstepv1.CommitteeAction_Revocation:
		r := act.Revocation
		dev, err := w.device(r.GetDeviceId())
		if err != nil {
			return err
		}
		dev.revoked = true
		dev.revokedAfter = r.GetAfterSeq()
		if r.GetAfterSeq() == 0 {
			dev.revokedAfter = dev.maxSeq
		}
		w.saveDevice(r.GetDeviceId(), dev)
	case *doorstepv1.CommitteeAction_Open:
		units, err := w.rosterUnits()
		if err != nil {
			return err
		}
		var area int64
		for _, u := range units {
			area += u.Area
		}
		// Count by walking: bucket stats miss keys written earlier in this
		// transaction.
		var owners int64
		if err := w.bucket(bucketOwners).ForEach(func(_, _ []byte) error { owners++; return nil }); err != nil {
			return err
		}
		totals := tally.NewTotals(w.def)
		totals.SetRosterUnits(len(units))
		w.totals, w.totalsDirty = totals, true
		h := election.HashUnits(units)
		for _, kv := range [][2][]byte{
			{keyRosterHash, h[:]}, {keyRosterArea, putI64(area)}, {keyRosterHead, putI64(owners)},
			{keyRosterUnits, putI64(int64(len(units)))}, {keyState, []byte{byte(rules.StateOpen)}},
		} {
			if err := info.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		if err := info.Put(keyOpenedAt, putI64(now.UnixMilli())); err != nil {
			return err
		}
		w.state = rules.StateOpen
		if err := countBuildings(w.eb); err != nil {
			return err
		}
	case *doorstepv1.CommitteeAction_Close:
		if err := info.Put(keyClosedAt, putI64(now.UnixMilli())); err != nil {
			return err
		}
		if err := info.Put(keyState, []byte{byte(rules.StateClosed)}); err != nil {
			return err
		}
		w.state = rules.StateClosed
	case *doorstepv1.CommitteeAction_Adjudication:
		return w.adjudicate(act.Adjudication, seq)
	case *doorstepv1.CommitteeAction_Certify:
		if err := info.Put(keyCertifiedAt, putI64(now.UnixMilli())); err != nil {
			return err
		}
		if err := info.Put(keyState, []byte{byte(rules.StateCertified)}); err != nil {
			return err
		}
		w.state = rules.StateCertified
	case *doorstepv1.CommitteeAction_AuditorGrant:
		g := act.AuditorGrant
		id := rules.AuditorID(g.GetPublicKey())
		a := &auditor{pub: g.GetPublicKey(), label: g.GetLabel()}
		if err := w.bucket(bucketAuditors).Put([]byte(id), a.encode()); err != nil {
			return err
		}
		*after = append(*after, func() { w.s.setAuditor(w.id, id, a.pub, false) })
	case *doorstepv1.CommitteeAction_AuditorRevocation:
		id := act.AuditorRevocation.GetAuditorId()
		v := w.bucket(bucketAuditors).Get([]byte(id))
		a, err := decodeAuditor(v)
		if err != nil {
			return err
		}
		a.revoked = true
		if err := w.bucket(bucketAuditors).Put([]byte(id), a.encode()); err != nil {
			return err
		}
		*after = append(*after, func() { w.s.setAuditor(w.id, id, a.pub, true) })
	}
	return nil
}

// adjudicate carries out a settlement; a later decision of the committee
// on the same subject stands, whatever the order the two arrive in.
func (w *writeTx) adjudicate(a *doorstepv1.Adjudication, seq uint64) error {
	switch sub := a.GetSubject().(type) {
	case *doorstepv1.Adjudication_Unit:
		u, _, err := w.Unit(sub.Unit.GetUnitId())
		if err != nil {
			return err
		}
		db := w.bucket(bucketUnitDecision)
		if v := db.Get([]byte(u.ID)); v != nil {
			old, err := decodeUnitDecision(v)
			if err != nil {
				return err
			}
			if old.Seq > seq {
				return nil // a later decision already stands; this one is logged only
			}
		}
		if err := db.Put([]byte(u.ID), encodeUnitDecision(tally.UnitDecision{Seq: seq, CountedRecordID: sub.Unit.GetCountedRecordId()})); err != nil {
			return err
		}
		_, err = w.reconcile(u, nil)
		return err
	case *doorstepv1.Adjudication_Owner:
		o := sub.Owner
		item, mark, _ := rules.OwnerMark(w.def, o)
		os, err := w.ownerState(o.GetOwnerKey())
		if err != nil {
			return err
		}
		totals, err := w.loadTotals()
		if err != nil {
			return err
		}
		before := os.Contribution(w.def)
		os.SetDecision(tally.OwnerDecision{Seq: seq, Item: item, Mark: mark})
		after := os.Contribution(w.def)
		totals.Sub(before)
		totals.Add(after)
		w.totalsDirty = true
		return w.updateSplit(o.GetOwnerKey(), before.Split, after.Split)
	}
	return nil
}

type grant struct {
	recordID string
	label    string
	expires  time.Time
	usedBy   string
}

func encodeGrant(g grant) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(g.expires.UnixMilli()))
	for _, s := range []string{g.recordID, g.label, g.usedBy} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

func decodeGrant(b []byte) (grant, error) {
	if len(b) < 8 {
		return grant{}, errCorrupt
	}
	g := grant{expires: time.UnixMilli(int64(binary.BigEndian.Uint64(b)))}
	b = b[8:]
	var out [3]string
	for i := range out {
		if len(b) < 4 {
			return grant{}, errCorrupt
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if uint32(len(b)) < n {
			return grant{}, errCorrupt
		}
		out[i] = string(b[:n])
		b = b[n:]
	}
	g.recordID, g.label, g.usedBy = out[0], out[1], out[2]
	return g, nil
}

// Enroll registers a device key with a one-time token from the committee
// and returns the device id. Retrying with the same token and key is safe.
func (s *Store) Enroll(ctx context.Context, electionID, token string, pub ed25519.PublicKey, label string) (string, error) {
	if len(pub) != ed25519.PublicKeySize {
		return "", election.Errorf(election.CodeInvalid, "device_public_key", "must be a %d-byte ed25519 public key", ed25519.PublicKeySize)
	}
	if token == "" {
		return "", election.Errorf(election.CodeInvalid, "enrollment_token", "is required: scan or paste the enrollment code from the committee")
	}
	if s.cached(electionID) == nil {
		return "", errNoElection(electionID)
	}
	th, err := enrollcode.TokenHash(token)
	if err != nil {
		return "", election.Errorf(election.CodePermissionDenied, "enrollment_token", "this enrollment code is not valid: %v", err)
	}
	id := rules.DeviceID(pub)
	j := &job{election: electionID, records: 1}
	j.run = func(w *writeTx) error {
		gb := w.bucket(bucketGrants)
		var g *grant
		if v := gb.Get(th); v != nil {
			d, err := decodeGrant(v)
			if err != nil {
				return err
			}
			g = &d
		}
		var rg *rules.Grant
		if g != nil {
			rg = &rules.Grant{UsedBy: g.usedBy}
			if g.expires.UnixMilli() > 0 {
				rg.Expires = g.expires
			}
		}
		done, err := rules.Enrollment(w.state, rg, id, label, s.now())
		if err != nil {
			return refuse(err)
		}
		if done {
			return nil // a retry of an enrollment that went through
		}
		db := w.bucket(bucketDevices)
		if db.Get([]byte(id)) != nil {
			return refuse(election.Errorf(election.CodeConflict, "device_public_key", "this device key is already enrolled"))
		}
		// The committee knows the canvasser by the label it gave the grant
		// ("王阿姨"); the device's own name stands in when it gave none.
		// The log keeps the device's label as the device sent it.
		shown := label
		if g.label != "" {
			shown = g.label
		}
		if err := db.Put([]byte(id), (&device{pub: pub, label: shown}).encode()); err != nil {
			return err
		}
		g.usedBy = id
		if err := gb.Put(th, encodeGrant(*g)); err != nil {
			return err
		}
		_, err = w.appendLog(&doorstepv1.LogEntry{
			Result:     &doorstepv1.RecordResult{Status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED},
			Received:   timestamppb.New(s.now()),
			Enrollment: &doorstepv1.DeviceEnrollment{DeviceId: id, DevicePublicKey: pub, GrantRecordId: g.recordID, Label: label},
		})
		return err
	}
	j.after = func() { s.addKey(electionID, id, pub) }
	if err := s.submit(ctx, j); err != nil {
		return "", err
	}
	return id, nil
}
