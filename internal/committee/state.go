package committee

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/atomicfile"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// stateVersion is the layout of the state file this code writes and reads.
const stateVersion = 1

// maxStateBytes bounds a state file: a roster of a million units in
// pending chunks is about 100 MB; anything larger is not ours.
const maxStateBytes = 512 << 20

// State is the committee's chain for one election, as persisted.
type State struct {
	Version    int    `json:"version"`
	ElectionID string `json:"election_id"`
	// Seq is the author_seq of the last record signed; 0 before the first.
	Seq uint64 `json:"seq"`
	// LastHash is the SHA-256 of record Seq's body (empty when Seq is 0).
	LastHash []byte `json:"last_hash,omitempty"`
	// Acked is the highest seq the server has answered, with every seq
	// below it answered too; AckedHash is that record's body hash.
	Acked     uint64 `json:"acked"`
	AckedHash []byte `json:"acked_hash,omitempty"`
	// HLC is the last hybrid clock value issued.
	HLC uint64 `json:"hlc"`
	// Pending holds the records Acked+1 … Seq, signed and not yet answered.
	Pending []PendingRecord `json:"pending,omitempty"`
	// Definition is the serialized ElectionDefinition this machine signed.
	Definition []byte `json:"definition,omitempty"`
	// Roster is the roster this machine imported.
	Roster *Roster `json:"roster,omitempty"`
	// Server is what the server said about itself when last asked.
	Server *Server `json:"server,omitempty"`
}

// PendingRecord is a signed record waiting for the server's answer.
type PendingRecord struct {
	Seq       uint64 `json:"seq"`
	RecordID  string `json:"record_id"`
	Kind      string `json:"kind"`
	Body      []byte `json:"body"`
	Signature []byte `json:"signature"`
}

// Signed returns the record as it travels.
func (p PendingRecord) Signed() *doorstepv1.SignedRecord {
	return &doorstepv1.SignedRecord{Body: p.Body, Signature: p.Signature}
}

// Roster is what the committee imported: the hash it will open with.
type Roster struct {
	SHA256    []byte `json:"sha256"`
	Units     int    `json:"units"`
	AreaCenti int64  `json:"area_centi_m2"`
	Owners    int    `json:"owners"`
	// FirstSeq and LastSeq are the author_seq range of its chunk records.
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
	// Complete: the server accepted every chunk.
	Complete bool `json:"complete"`
}

// Server identifies the tally server the election lives on.
type Server struct {
	Address     string `json:"address,omitempty"`
	TLSPin      string `json:"tls_pin,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
	PublicKey   []byte `json:"public_key,omitempty"`
	LogOrigin   string `json:"log_origin,omitempty"`
}

// Kinds of committee record, as PendingRecord.Kind names them.
const (
	KindDefine       = "define_election"
	KindRoster       = "roster"
	KindEnrollment   = "enrollment"
	KindRevocation   = "revocation"
	KindOpen         = "open"
	KindClose        = "close"
	KindAdjudication = "adjudication"
	KindCertify      = "certify"
)

// ActionKind names a committee action's kind, or "" for none.
func ActionKind(a *doorstepv1.CommitteeAction) string {
	switch a.GetAction().(type) {
	case *doorstepv1.CommitteeAction_DefineElection:
		return KindDefine
	case *doorstepv1.CommitteeAction_Roster:
		return KindRoster
	case *doorstepv1.CommitteeAction_Enrollment:
		return KindEnrollment
	case *doorstepv1.CommitteeAction_Revocation:
		return KindRevocation
	case *doorstepv1.CommitteeAction_Open:
		return KindOpen
	case *doorstepv1.CommitteeAction_Close:
		return KindClose
	case *doorstepv1.CommitteeAction_Adjudication:
		return KindAdjudication
	case *doorstepv1.CommitteeAction_Certify:
		return KindCertify
	}
	return ""
}

// Clone returns a deep copy of s.
func (s State) Clone() State {
	c := s
	c.LastHash = bytes.Clone(s.LastHash)
	c.AckedHash = bytes.Clone(s.AckedHash)
	c.Pending = slices.Clone(s.Pending)
	c.Definition = bytes.Clone(s.Definition)
	if s.Roster != nil {
		r := *s.Roster
		r.SHA256 = bytes.Clone(r.SHA256)
		c.Roster = &r
	}
	if s.Server != nil {
		v := *s.Server
		v.PublicKey = bytes.Clone(v.PublicKey)
		c.Server = &v
	}
	return c
}

// DefinitionProto decodes the stored definition, or returns nil if this
// machine has not signed one for the election.
func (s State) DefinitionProto() (*doorstepv1.ElectionDefinition, error) {
	if len(s.Definition) == 0 {
		return nil, nil
	}
	p := &doorstepv1.ElectionDefinition{}
	if err := proto.Unmarshal(s.Definition, p); err != nil {
		return nil, fmt.Errorf("stored definition of %s: %w", s.ElectionID, err)
	}
	return p, nil
}

// decodeState parses and checks a state file. Everything a later record
// depends on is checked: the pending records must be this election's
// committee records, numbered Acked+1 … Seq and chained by hash.
func decodeState(data []byte) (State, error) {
	var s State
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return State{}, fmt.Errorf("not a committee state file: %w", err)
	}
	if dec.More() {
		return State{}, errors.New("not a committee state file: more after the state")
	}
	if err := s.check(); err != nil {
		return State{}, err
	}
	return s, nil
}

func (s *State) check() error {
	if s.Version != stateVersion {
		return fmt.Errorf("state file version %d; this doorstep reads version %d", s.Version, stateVersion)
	}
	if err := election.CheckID("election_id", s.ElectionID); err != nil {
		return err
	}
	switch {
	case s.Acked > s.Seq:
		return fmt.Errorf("acked %d is past seq %d", s.Acked, s.Seq)
	case s.Seq-s.Acked != uint64(len(s.Pending)):
		return fmt.Errorf("%d pending records for seqs %d..%d", len(s.Pending), s.Acked+1, s.Seq)
	case s.Seq == 0 && len(s.LastHash) != 0, s.Seq > 0 && len(s.LastHash) != sha256.Size:
		return errors.New("last_hash does not match seq")
	case s.Acked == 0 && len(s.AckedHash) != 0, s.Acked > 0 && len(s.AckedHash) != sha256.Size:
		return errors.New("acked_hash does not match acked")
	case s.Acked == s.Seq && !bytes.Equal(s.AckedHash, s.LastHash):
		return errors.New("acked_hash differs from last_hash with nothing pending")
	}
	prev := s.AckedHash
	for i, p := range s.Pending {
		rec, err := signed.Decode(p.Body)
		if err != nil {
			return fmt.Errorf("pending record %d: %w", i, err)
		}
		switch {
		case p.Seq != s.Acked+uint64(i)+1 || rec.GetAuthorSeq() != p.Seq:
			return fmt.Errorf("pending record %d has seq %d (body %d); want %d", i, p.Seq, rec.GetAuthorSeq(), s.Acked+uint64(i)+1)
		case rec.GetRecordId() != p.RecordID:
			return fmt.Errorf("pending record %d: id %q differs from its body's %q", i, p.RecordID, rec.GetRecordId())
		case rec.GetElectionId() != s.ElectionID || rec.GetAuthorId() != election.CommitteeAuthor:
			return fmt.Errorf("pending record %d belongs to %s/%s, not %s/%s", i, rec.GetElectionId(), rec.GetAuthorId(), s.ElectionID, election.CommitteeAuthor)
		case !bytes.Equal(rec.GetPrevHash(), prev):
			return fmt.Errorf("pending record %d does not follow the previous record", i)
		case len(p.Signature) != 64:
			return fmt.Errorf("pending record %d has no signature", i)
		case p.Kind != ActionKind(rec.GetCommittee()) || p.Kind == "":
			return fmt.Errorf("pending record %d: kind %q differs from its body", i, p.Kind)
		}
		h := signed.BodyHash(p.Body)
		prev = h[:]
	}
	if len(s.Pending) > 0 && !bytes.Equal(prev, s.LastHash) {
		return errors.New("last_hash is not the hash of the last pending record")
	}
	if _, err := s.DefinitionProto(); err != nil {
		return err
	}
	if s.Roster != nil && len(s.Roster.SHA256) != sha256.Size {
		return errors.New("roster sha256 is not 32 bytes")
	}
	return nil
}

// electionsDir is where state files live inside the committee folder.
const electionsDir = "elections"

// fileStem turns an election id into a file name stem that is safe on
// every filesystem: letters, digits, '-' and '_' stay, everything else
// (and a leading '.') becomes %XX.
func fileStem(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func statePath(dir, electionID string) string {
	return filepath.Join(dir, electionsDir, fileStem(electionID)+".json")
}

// readState loads a state file; a missing one is a fresh chain.
func readState(path, electionID string) (State, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return State{Version: stateVersion, ElectionID: electionID}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("committee state: %w", err)
	}
	if len(data) > maxStateBytes {
		return State{}, fmt.Errorf("committee state %s is %d bytes, more than any real one", path, len(data))
	}
	s, err := decodeState(data)
	if err != nil {
		return State{}, fmt.Errorf("committee state %s is damaged: %w; restore it from a backup, or move it away to start the election's chain again (the server will then refuse the new chain)", path, err)
	}
	if s.ElectionID != electionID {
		// Two ids that differ only in letter case share a file on
		// case-insensitive filesystems.
		return State{}, fmt.Errorf("committee state %s belongs to election %q, not %q: use election ids that differ in more than letter case", path, s.ElectionID, electionID)
	}
	return s, nil
}

// writeState persists s atomically: a temporary file beside it, synced,
// renamed over the old one, and the folder synced, so a crash leaves the
// old state or the new one, never a mix.
func writeState(path string, s State) error {
	data, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("encode committee state: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.Replace(path, data); err != nil {
		return fmt.Errorf("save committee state: %w", err)
	}
	return nil
}

// ReadState returns the persisted state of one election without taking
// its lock (a snapshot for reading), and whether there is one.
func ReadState(dir, electionID string) (State, bool, error) {
	if err := election.CheckID("election", electionID); err != nil {
		return State{}, false, err
	}
	path := statePath(dir, electionID)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return State{}, false, nil
	}
	s, err := readState(path, electionID)
	if err != nil {
		return State{}, false, err
	}
	return s, true, nil
}

// List returns the state of every election in the committee folder, sorted
// by election id. It takes no locks: the answer is a snapshot.
func List(dir string) ([]State, error) {
	paths, err := filepath.Glob(filepath.Join(dir, electionsDir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("committee folder: %w", err)
	}
	var out []State
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("committee state: %w", err)
		}
		s, err := decodeState(data)
		if err != nil {
			return nil, fmt.Errorf("committee state %s is damaged: %w", p, err)
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b State) int { return strings.Compare(a.ElectionID, b.ElectionID) })
	return out, nil
}
