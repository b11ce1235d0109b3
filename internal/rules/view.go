package rules

import (
	"time"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// State is an election's stage.
type State uint8

const (
	// StateNone: no definition yet.
	StateNone State = iota
	// StateDefined: defined, the roster being imported.
	StateDefined
	// StateOpen: the roster is frozen and ballots count.
	StateOpen
	// StateClosed: ballots made before the close are still taken until
	// the sync deadline.
	StateClosed
	// StateCertified: the committee certified the result; nothing more
	// changes the count.
	StateCertified
)

// Author is what a decision needs of a record's author.
type Author struct {
	// Revoked is set once the committee revoked the device; records
	// numbered above RevokedAfter are rejected.
	Revoked      bool
	RevokedAfter uint64
	// MaxSeq is the highest record number the chain holds.
	MaxSeq uint64
}

// View is the election as it stands at the point of a decision: the
// store's write transaction, or the verifier's replay at one log entry.
// It only reads. Methods that can fail on storage return an error, which
// the decision passes on unchanged: it is never a verdict.
type View interface {
	// Definition is the election's definition; never nil once defined.
	Definition() *election.Definition
	State() State
	// ClosedAt is when the committee closed the election (zero if open).
	ClosedAt() time.Time

	// Unit returns a unit on the roster (the units imported so far before
	// the election opens).
	Unit(id string) (election.Unit, bool, error)
	// OwnerOnRoster reports whether some unit on the roster has the owner key.
	OwnerOnRoster(ownerKey string) (bool, error)
	// RosterHash is the roster hash (election.HashUnits) of the units
	// imported so far, and how many there are.
	RosterHash() ([32]byte, int, error)
	// GrantTaken reports whether an enrollment grant for the token hash
	// was already made.
	GrantTaken(tokenHash []byte) (bool, error)

	// TallyHash is the SHA-256 of the live tally's canonical JSON, when the
	// view can tell it at this point (the verifier's replay cannot, and
	// checks the certified tally against the final one instead).
	TallyHash() (hash [32]byte, known bool, err error)

	// Auditor reports whether the committee granted the auditor id, and
	// whether it revoked the grant since.
	Auditor(id string) (granted, revoked bool, err error)

	// Author returns an enrolled author (device or committee).
	Author(id string) (Author, bool, error)
	// ChainBody returns the body hash and the hybrid clock value of the
	// author's record seq, if the chain holds it (hlc 0: not known).
	ChainBody(author string, seq uint64) (body [32]byte, hlc uint64, ok bool, err error)
	// ChainPrev returns the previous-record hash that the author's record
	// seq names and its hybrid clock value, if the chain holds it.
	ChainPrev(author string, seq uint64) (prev [32]byte, hlc uint64, ok bool, err error)
}
