package store

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

func decodeUnit(v []byte) (*doorstepv1.Unit, error) {
	u := &doorstepv1.Unit{}
	if err := proto.Unmarshal(v, u); err != nil {
		return nil, fmt.Errorf("store: unit: %w", err)
	}
	return u, nil
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
	pd := rec.GetCommittee().GetDefineElection()
	if pd == nil {
		return nil, nil, election.Errorf(election.CodeInvalid, "record", "must be a committee define_election record")
	}
	if rec.GetAuthorId() != election.CommitteeAuthor || rec.GetAuthorSeq() != 1 {
		return nil, nil, election.Errorf(election.CodeInvalid, "record", "the definition must be the committee's record number 1 (author %q, seq %d)", rec.GetAuthorId(), rec.GetAuthorSeq())
	}
	def, err := rules.Definition(pd)
	if err != nil {
		return nil, nil, err
	}
	if err := checkElectionID(def.ID); err != nil {
		return nil, nil, err
	}
	if def.ID != rec.GetElectionId() {
		return nil, nil, election.Errorf(election.CodeInvalid, "election_id", "the record names election %q but the definition %q", rec.GetElectionId(), def.ID)
	}
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
		if err := info.Put(keyState, []byte{byte(stateDefined)}); err != nil {
			return err
		}
		w.state = stateDefined
		committee := &device{pub: def.CommitteeKey, label: "election committee"}
		if err := w.bucket(bucketDevices).Put([]byte(election.CommitteeAuthor), committee.encode()); err != nil {
			return err
		}
		bh := signed.BodyHash(sr.GetBody())
		chainVal := make([]byte, 64)
		copy(chainVal, bh[:])
		if err := w.bucket(bucketChain).Put(chainKey(election.CommitteeAuthor, 1), chainVal); err != nil {
			return err
		}
		if err := w.advanceDevice(election.CommitteeAuthor, 1, bh[:]); err != nil {
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
			s.elections[def.ID] = &electionCache{def: def, defProto: pd, keys: map[string]ed25519.PublicKey{election.CommitteeAuthor: def.CommitteeKey}}
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

// applyCommittee carries out one verified committee action.
func (w *writeTx) applyCommittee(p *prepared, a *doorstepv1.CommitteeAction, now time.Time, after *[]func()) (doorstepv1.ReasonCode, string, error) {
	invalid := doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION
	info := w.bucket(bucketInfo)
	seq := p.rec.GetAuthorSeq()
	switch act := a.GetAction().(type) {
	case *doorstepv1.CommitteeAction_DefineElection:
		return invalid, "the election is already defined; create a new election instead", nil
	case *doorstepv1.CommitteeAction_Roster:
		if w.state != stateDefined {
			return invalid, "the roster is frozen once the election opens", nil
		}
		ub, ob := w.bucket(bucketUnits), w.bucket(bucketOwners)
		units := rules.Units(act.Roster.GetUnits())
		if len(units) == 0 {
			return invalid, "the roster chunk has no units", nil
		}
		seen := make(map[string]bool, len(units))
		for i := range units {
			u := &units[i]
			if err := u.Validate(); err != nil {
				return invalid, fmt.Sprintf("roster unit %d: %v", i+1, err), nil
			}
			if seen[u.ID] || ub.Get([]byte(u.ID)) != nil {
				return invalid, fmt.Sprintf("roster unit %d: unit %q is already on the roster", i+1, u.ID), nil
			}
			seen[u.ID] = true
		}
		for i, u := range units {
			v, err := proto.Marshal(act.Roster.GetUnits()[i])
			if err != nil {
				return 0, "", err
			}
			if err := ub.Put([]byte(u.ID), v); err != nil {
				return 0, "", err
			}
			n := getI64(ob.Get([]byte(u.OwnerKey)))
			if err := ob.Put([]byte(u.OwnerKey), putI64(n+1)); err != nil {
				return 0, "", err
			}
		}
	case *doorstepv1.CommitteeAction_Enrollment:
		g := act.Enrollment
		if len(g.GetTokenSha256()) != sha256.Size {
			return invalid, "enrollment.token_sha256 must be a SHA-256 hash", nil
		}
		if err := election.CheckText("enrollment.label", g.GetLabel(), election.MaxTitleLen); err != nil {
			return invalid, err.Error(), nil
		}
		gb := w.bucket(bucketGrants)
		if gb.Get(g.GetTokenSha256()) != nil {
			return invalid, "this enrollment token was already granted", nil
		}
		if err := gb.Put(g.GetTokenSha256(), encodeGrant(grant{recordID: p.rec.GetRecordId(), label: g.GetLabel(), expires: g.GetExpires().AsTime()})); err != nil {
			return 0, "", err
		}
	case *doorstepv1.CommitteeAction_Revocation:
		r := act.Revocation
		if r.GetDeviceId() == election.CommitteeAuthor {
			return invalid, "the committee key cannot be revoked here", nil
		}
		dev, err := w.device(r.GetDeviceId())
		if err != nil {
			return 0, "", err
		}
		if dev == nil {
			return invalid, fmt.Sprintf("device %q is not enrolled", r.GetDeviceId()), nil
		}
		dev.revoked = true
		dev.revokedAfter = r.GetAfterSeq()
		if r.GetAfterSeq() == 0 {
			dev.revokedAfter = dev.maxSeq
		}
		w.saveDevice(r.GetDeviceId(), dev)
	case *doorstepv1.CommitteeAction_Open:
		if w.state != stateDefined {
			return invalid, "the election is already open or closed", nil
		}
		var units []election.Unit
		err := w.bucket(bucketUnits).ForEach(func(k, v []byte) error {
			u, err := decodeUnit(v)
			if err != nil {
				return err
			}
			units = append(units, rules.Units([]*doorstepv1.Unit{u})...)
			return nil
		})
		if err != nil {
			return 0, "", err
		}
		if len(units) == 0 {
			return invalid, "import the roster before opening the election", nil
		}
		h := election.HashUnits(units)
		if !bytes.Equal(h[:], act.Open.GetRosterSha256()) {
			return invalid, fmt.Sprintf("the roster on the server (sha256 %s) is not the one the committee signed: check the roster import", hex.EncodeToString(h[:])), nil
		}
		var area int64
		for _, u := range units {
			area += u.Area
		}
		// Count by walking: bucket stats miss keys written earlier in this
		// transaction.
		var owners int64
		if err := w.bucket(bucketOwners).ForEach(func(_, _ []byte) error { owners++; return nil }); err != nil {
			return 0, "", err
		}
		totals := tally.NewTotals(w.def)
		totals.SetRosterUnits(len(units))
		w.totals, w.totalsDirty = totals, true
		for _, kv := range [][2][]byte{
			{keyRosterHash, h[:]}, {keyRosterArea, putI64(area)}, {keyRosterHead, putI64(owners)},
			{keyRosterUnits, putI64(int64(len(units)))}, {keyState, []byte{byte(stateOpen)}},
		} {
			if err := info.Put(kv[0], kv[1]); err != nil {
				return 0, "", err
			}
		}
		w.state = stateOpen
	case *doorstepv1.CommitteeAction_Close:
		if w.state != stateOpen {
			return invalid, "only an open election can be closed", nil
		}
		if err := info.Put(keyClosedAt, putI64(now.UnixMilli())); err != nil {
			return 0, "", err
		}
		if err := info.Put(keyState, []byte{byte(stateClosed)}); err != nil {
			return 0, "", err
		}
		w.state = stateClosed
	case *doorstepv1.CommitteeAction_Adjudication:
		if w.state == stateDefined {
			return invalid, "nothing to adjudicate before the election opens", nil
		}
		return w.adjudicate(act.Adjudication, seq)
	default:
		return invalid, "unknown committee action", nil
	}
	return 0, "", nil
}

func (w *writeTx) adjudicate(a *doorstepv1.Adjudication, seq uint64) (doorstepv1.ReasonCode, string, error) {
	invalid := doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION
	if err := election.CheckText("adjudication.reason", a.GetReason(), election.MaxTextLen); err != nil {
		return invalid, err.Error(), nil
	}
	switch sub := a.GetSubject().(type) {
	case *doorstepv1.Adjudication_Unit:
		u, ok, err := w.unit(sub.Unit.GetUnitId())
		if err != nil {
			return 0, "", err
		}
		if !ok {
			return invalid, fmt.Sprintf("unit %q is not on the roster", sub.Unit.GetUnitId()), nil
		}
		// A decision may name a ballot that has not arrived yet: it takes
		// effect when the ballot does, so the outcome never depends on the
		// order records arrive in.
		if id := sub.Unit.GetCountedRecordId(); id != "" {
			if err := signed.CheckRecordID("adjudication.unit.counted_record_id", id); err != nil {
				return invalid, err.Error(), nil
			}
		}
		db := w.bucket(bucketUnitDecision)
		if v := db.Get([]byte(u.GetUnitId())); v != nil {
			old, err := decodeUnitDecision(v)
			if err != nil {
				return 0, "", err
			}
			if old.Seq > seq {
				return 0, "", nil // a later decision already stands; this one is logged only
			}
		}
		if err := db.Put([]byte(u.GetUnitId()), encodeUnitDecision(tally.UnitDecision{Seq: seq, CountedRecordID: sub.Unit.GetCountedRecordId()})); err != nil {
			return 0, "", err
		}
		_, err = w.reconcile(u, nil)
		return 0, "", err
	case *doorstepv1.Adjudication_Owner:
		o := sub.Owner
		if w.bucket(bucketOwners).Get([]byte(o.GetOwnerKey())) == nil {
			return invalid, fmt.Sprintf("owner %q is not on the roster", o.GetOwnerKey()), nil
		}
		marks, _, err := w.def.Marks([]election.Selection{{ItemID: o.GetItemId(), Choice: election.Choice(o.GetChoice()), Candidates: o.GetCandidateIds()}})
		if err != nil {
			return invalid, err.Error(), nil
		}
		item := w.def.ItemIndex(o.GetItemId())
		os, err := w.ownerState(o.GetOwnerKey())
		if err != nil {
			return 0, "", err
		}
		totals, err := w.loadTotals()
		if err != nil {
			return 0, "", err
		}
		before := os.Contribution(w.def)
		os.SetDecision(tally.OwnerDecision{Seq: seq, Item: item, Mark: marks[item]})
		after := os.Contribution(w.def)
		totals.Sub(before)
		totals.Add(after)
		w.totalsDirty = true
		return 0, "", w.updateSplit(o.GetOwnerKey(), before.Split, after.Split)
	}
	return invalid, "an adjudication must name a unit or an owner", nil
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
	if err := election.CheckText("label", label, election.MaxTitleLen); err != nil {
		return "", err
	}
	if s.cached(electionID) == nil {
		return "", election.Errorf(election.CodeNotFound, "election_id", "there is no election %q on this server", electionID)
	}
	th, err := enrollcode.TokenHash(token)
	if err != nil {
		return "", election.Errorf(election.CodePermissionDenied, "enrollment_token", "this enrollment code is not valid: %v", err)
	}
	id := rules.DeviceID(pub)
	j := &job{election: electionID, records: 1}
	j.run = func(w *writeTx) error {
		if w.state == stateClosed {
			return refuse(election.Errorf(election.CodeFailedPrecondition, "election_id", "the election is closed; no new devices can enroll"))
		}
		gb := w.bucket(bucketGrants)
		v := gb.Get(th)
		if v == nil {
			return refuse(election.Errorf(election.CodePermissionDenied, "enrollment_token", "this enrollment code is not known: ask the committee for a new one"))
		}
		g, err := decodeGrant(v)
		if err != nil {
			return err
		}
		if g.usedBy != "" {
			if g.usedBy == id {
				return nil // a retry of an enrollment that went through
			}
			return refuse(election.Errorf(election.CodePermissionDenied, "enrollment_token", "this enrollment code was already used by another device: ask the committee for a new one"))
		}
		if !g.expires.IsZero() && g.expires.UnixMilli() > 0 && s.now().After(g.expires) {
			return refuse(election.Errorf(election.CodePermissionDenied, "enrollment_token", "this enrollment code expired at %s: ask the committee for a new one", g.expires.UTC().Format(time.RFC3339)))
		}
		db := w.bucket(bucketDevices)
		if db.Get([]byte(id)) != nil {
			return refuse(election.Errorf(election.CodeConflict, "device_public_key", "this device key is already enrolled"))
		}
		if err := db.Put([]byte(id), (&device{pub: pub, label: label}).encode()); err != nil {
			return err
		}
		g.usedBy = id
		if err := gb.Put(th, encodeGrant(g)); err != nil {
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

// checkElectionID keeps election ids to characters that are safe in a
// checkpoint origin, a file name and a URL.
func checkElectionID(id string) error {
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return election.Errorf(election.CodeInvalid, "election_id", "%q may use only letters, digits, '-', '_' and '.'", id)
		}
	}
	return nil
}
