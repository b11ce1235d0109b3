package device

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// This file encodes and decodes the values the device stores that are not
// protobuf messages. Every decoder validates what it reads: the device file
// may be damaged or edited, and a damaged value must be an error, never a
// panic or a silent wrong answer.

// errCorrupt marks a stored value that does not decode.
var errCorrupt = errors.New("the device file is damaged")

// seqKey is the bucket key of an author_seq.
func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// decodeSeqKey reads an author_seq key.
func decodeSeqKey(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: a sequence key is %d bytes, want 8", errCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// chainHead is the end of the device's record chain: the last author_seq
// used and the hash of that record's body, which the next record names as
// prev_hash.
type chainHead struct {
	Seq  uint64
	Hash [sha256.Size]byte // zero when Seq is 0
}

// encode is 8 bytes of Seq, then the 32-byte hash unless Seq is 0.
func (c chainHead) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, c.Seq)
	if c.Seq == 0 {
		return b
	}
	return append(b, c.Hash[:]...)
}

func decodeChain(b []byte) (chainHead, error) {
	var c chainHead
	if len(b) < 8 {
		return c, fmt.Errorf("%w: the chain head is %d bytes", errCorrupt, len(b))
	}
	c.Seq = binary.BigEndian.Uint64(b)
	switch {
	case c.Seq == 0 && len(b) == 8:
		return c, nil
	case c.Seq != 0 && len(b) == 8+sha256.Size:
		copy(c.Hash[:], b[8:])
		return c, nil
	}
	return chainHead{}, fmt.Errorf("%w: the chain head at seq %d is %d bytes", errCorrupt, c.Seq, len(b))
}

func encodeUint64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint64(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("%w: a counter is %d bytes, want 8", errCorrupt, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// decodeJSON reads exactly one JSON object into v, refusing unknown fields
// and trailing data.
func decodeJSON(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", errCorrupt, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data after the value", errCorrupt)
	}
	return nil
}

func encodeJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only the fixed structs below are encoded; they always marshal.
		panic(fmt.Sprintf("device: encode %T: %v", v, err))
	}
	return b
}

// decodeEnrollment reads and checks a stored Enrollment.
func decodeEnrollment(b []byte) (Enrollment, error) {
	var e Enrollment
	if err := decodeJSON(b, &e); err != nil {
		return Enrollment{}, fmt.Errorf("enrollment: %w", err)
	}
	if err := e.validate(); err != nil {
		return Enrollment{}, fmt.Errorf("enrollment: %w: %w", errCorrupt, err)
	}
	return e, nil
}

func (e *Enrollment) validate() error {
	if e.Server == "" {
		return errors.New("no server address")
	}
	if err := election.CheckID("election_id", e.ElectionID); err != nil {
		return err
	}
	if err := election.CheckID("device_id", e.DeviceID); err != nil {
		return err
	}
	if len(e.ServerKey) != ed25519.PublicKeySize {
		return fmt.Errorf("server key is %d bytes, want %d", len(e.ServerKey), ed25519.PublicKeySize)
	}
	if e.Fingerprint == "" {
		return errors.New("no server fingerprint")
	}
	return nil
}

// unitState is what this device itself did at one unit.
type unitState struct {
	Ballots       int    `json:"ballots,omitempty"`
	LastBallotID  string `json:"last_ballot_id,omitempty"`
	LastBallotSeq uint64 `json:"last_ballot_seq,omitempty"`
	Visits        int    `json:"visits,omitempty"`
	LastVisit     int32  `json:"last_visit,omitempty"` // doorstepv1.VisitOutcome
}

func decodeUnitState(b []byte) (unitState, error) {
	var u unitState
	if err := decodeJSON(b, &u); err != nil {
		return unitState{}, fmt.Errorf("unit state: %w", err)
	}
	switch {
	case u.Ballots < 0 || u.Visits < 0:
		return unitState{}, fmt.Errorf("unit state: %w: negative count", errCorrupt)
	case (u.Ballots == 0) != (u.LastBallotID == "") || (u.Ballots == 0) != (u.LastBallotSeq == 0):
		return unitState{}, fmt.Errorf("unit state: %w: ballot count and last ballot disagree", errCorrupt)
	case (u.Visits == 0) != (u.LastVisit == 0):
		return unitState{}, fmt.Errorf("unit state: %w: visit count and last visit disagree", errCorrupt)
	case u.LastVisit < 0 || u.LastVisit > int32(doorstepv1.VisitOutcome_VISIT_OUTCOME_MOVED):
		return unitState{}, fmt.Errorf("unit state: %w: unknown visit outcome %d", errCorrupt, u.LastVisit)
	}
	return u, nil
}

// syncInfo is what the last sync attempts found.
type syncInfo struct {
	LastSync      time.Time `json:"last_sync,omitzero"`
	LastAttempt   time.Time `json:"last_attempt,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	ClockOffsetMS int64     `json:"clock_offset_ms,omitempty"`
	OffsetKnown   bool      `json:"offset_known,omitempty"`
}

func decodeSyncInfo(b []byte) (syncInfo, error) {
	var s syncInfo
	if err := decodeJSON(b, &s); err != nil {
		return syncInfo{}, fmt.Errorf("sync state: %w", err)
	}
	if !s.OffsetKnown && s.ClockOffsetMS != 0 {
		return syncInfo{}, fmt.Errorf("sync state: %w: a clock offset with no measurement", errCorrupt)
	}
	return s, nil
}

// electionState is what the verified committee records say about the
// election, besides the definition and roster.
type electionState struct {
	// CommitteeSeq is the highest committee author_seq stored.
	CommitteeSeq uint64 `json:"committee_seq"`
	// RosterUnits is the number of units in the roster records.
	RosterUnits int `json:"roster_units,omitempty"`
	// RosterHash is election.HashUnits of the roster.
	RosterHash []byte    `json:"roster_sha256,omitempty"`
	Opened     bool      `json:"opened,omitempty"`
	ClosedAt   time.Time `json:"closed_at,omitzero"`
}

func decodeElectionState(b []byte) (electionState, error) {
	var s electionState
	if err := decodeJSON(b, &s); err != nil {
		return electionState{}, fmt.Errorf("election state: %w", err)
	}
	switch {
	case s.CommitteeSeq == 0:
		return electionState{}, fmt.Errorf("election state: %w: no committee records", errCorrupt)
	case s.RosterUnits < 0 || s.RosterUnits > election.MaxRosterUnits:
		return electionState{}, fmt.Errorf("election state: %w: %d roster units", errCorrupt, s.RosterUnits)
	case s.RosterUnits > 0 && len(s.RosterHash) != sha256.Size:
		return electionState{}, fmt.Errorf("election state: %w: roster hash is %d bytes", errCorrupt, len(s.RosterHash))
	}
	return s, nil
}
