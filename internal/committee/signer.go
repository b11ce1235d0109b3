package committee

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/hlc"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// ErrBusy reports that another doorstep command is working on the same
// election in this committee folder.
var ErrBusy = errors.New("another doorstep command is using this election's committee chain; wait for it to finish")

// ErrForeignRecords reports that the server holds committee records this
// machine did not make.
var ErrForeignRecords = errors.New("another machine is signing with this committee key")

// Signer makes the committee's records for one election: it numbers,
// chains, signs and persists them, and remembers which ones the server has
// answered. It holds the election's lock from Open to Close. A Signer is
// not safe for concurrent use.
type Signer struct {
	dir   string
	path  string
	key   ed25519.PrivateKey
	now   func() time.Time
	log   *slog.Logger
	clock *hlc.Clock
	lock  *os.File
	st    State // as last persisted
}

// Open loads the committee key from dir and the chain of electionID, and
// locks the chain against other processes. now is the wall clock for
// author_time and the hybrid clock.
func Open(dir, electionID string, now func() time.Time, log *slog.Logger) (*Signer, error) {
	if err := election.CheckID("election", electionID); err != nil {
		return nil, err
	}
	key, err := LoadKey(dir)
	if err != nil {
		return nil, err
	}
	edir := filepath.Join(dir, electionsDir)
	if err := os.MkdirAll(edir, 0o700); err != nil {
		return nil, fmt.Errorf("committee folder: %w", err)
	}
	path := statePath(dir, electionID)
	lock, err := lockFile(strings.TrimSuffix(path, ".json") + ".lock")
	if err != nil {
		return nil, fmt.Errorf("election %s: %w", electionID, err)
	}
	st, err := readState(path, electionID)
	if err != nil {
		lock.Close()
		return nil, err
	}
	pub := key.Public().(ed25519.PublicKey)
	for _, p := range st.Pending {
		if signed.Verify(pub, p.Signed()) != nil {
			lock.Close()
			return nil, fmt.Errorf("committee state %s: pending record %d was signed with a different key than %s holds; was the key replaced?", path, p.Seq, KeyFile)
		}
	}
	// Temporary files left by a crash mid-write are not the state.
	if olds, _ := filepath.Glob(path + ".tmp-*"); len(olds) > 0 {
		for _, o := range olds {
			os.Remove(o)
		}
	}
	return &Signer{
		dir:   dir,
		path:  path,
		key:   key,
		now:   now,
		log:   log,
		clock: hlc.New(now, st.HLC),
		lock:  lock,
		st:    st,
	}, nil
}

// Close releases the election's lock.
func (s *Signer) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// PublicKey is the committee's public key.
func (s *Signer) PublicKey() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Key is the committee's private key, for signing calls (callauth).
func (s *Signer) Key() ed25519.PrivateKey { return s.key }

// State returns a copy of the chain's persisted state.
func (s *Signer) State() State { return s.st.Clone() }

// Sign makes one record per action, in order, chained after the last
// record signed, and persists them all as pending before returning them.
// If persisting fails, nothing is returned and the chain is unchanged, so
// nothing unpersisted can be sent.
func (s *Signer) Sign(actions ...*doorstepv1.CommitteeAction) ([]*doorstepv1.SignedRecord, error) {
	return s.sign(nil, actions)
}

// SignRoster signs roster chunk actions like Sign and records r as the
// imported roster, with its chunks' seq range, in the same write: a crash
// can never leave chunks signed without the roster they belong to.
func (s *Signer) SignRoster(r Roster, chunks ...*doorstepv1.CommitteeAction) ([]*doorstepv1.SignedRecord, error) {
	for _, c := range chunks {
		if ActionKind(c) != KindRoster {
			return nil, errors.New("committee record: SignRoster signs roster chunks only")
		}
	}
	return s.sign(func(st *State, first, last uint64) {
		r.FirstSeq, r.LastSeq = first, last
		st.Roster = &r
	}, chunks)
}

// RosterChunkUnits is how many units one roster record carries: small
// enough for one committee record body, few enough records for a big
// estate.
const RosterChunkUnits = 5000

// RosterActions splits roster into roster chunk actions of at most
// RosterChunkUnits units each, in the roster's order, and returns them
// with the Roster that SignRoster records for them.
func RosterActions(roster *election.Roster) (Roster, []*doorstepv1.CommitteeAction) {
	all := roster.Units()
	var chunks []*doorstepv1.CommitteeAction
	for start := 0; start < len(all); start += RosterChunkUnits {
		part := all[start:min(start+RosterChunkUnits, len(all))]
		chunks = append(chunks, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Roster{Roster: &doorstepv1.RosterChunk{Units: rules.UnitsProto(part)}}})
	}
	h := roster.Hash()
	return Roster{SHA256: h[:], Units: len(all), AreaCenti: roster.TotalArea(), Owners: roster.Headcount()}, chunks
}

// sign makes the records; update, if set, changes the state to persist
// with them, given the first and last seq signed.
func (s *Signer) sign(update func(st *State, first, last uint64), actions []*doorstepv1.CommitteeAction) ([]*doorstepv1.SignedRecord, error) {
	if len(actions) == 0 {
		return nil, errors.New("committee record: nothing to sign")
	}
	st := s.st.Clone()
	first := st.Seq + 1
	out := make([]*doorstepv1.SignedRecord, 0, len(actions))
	for _, a := range actions {
		kind := ActionKind(a)
		if kind == "" {
			return nil, errors.New("committee record: the action is empty")
		}
		if d := a.GetDefineElection(); d != nil {
			if d.GetElectionId() != st.ElectionID {
				return nil, fmt.Errorf("committee record: definition is for election %q, this chain is %q", d.GetElectionId(), st.ElectionID)
			}
			def, err := proto.MarshalOptions{Deterministic: true}.Marshal(d)
			if err != nil {
				return nil, fmt.Errorf("committee record: %w", err)
			}
			st.Definition = def
		}
		id, err := uuid.NewV7()
		if err != nil {
			return nil, fmt.Errorf("committee record id: %w", err)
		}
		now := s.now()
		rec := &doorstepv1.Record{
			FormatVersion: signed.FormatVersion,
			RecordId:      id.String(),
			ElectionId:    st.ElectionID,
			AuthorId:      election.CommitteeAuthor,
			AuthorSeq:     st.Seq + 1,
			PrevHash:      st.LastHash,
			Hlc:           s.clock.Now(),
			AuthorTime:    timestamppb.New(now),
			Body:          &doorstepv1.Record_Committee{Committee: a},
		}
		sr, err := signed.Sign(s.key, rec)
		if err != nil {
			return nil, fmt.Errorf("committee record: %w", err)
		}
		if len(sr.GetBody()) > signed.MaxCommitteeBodyBytes {
			return nil, fmt.Errorf("committee %s record is %d bytes; the limit is %d: split it", kind, len(sr.GetBody()), signed.MaxCommitteeBodyBytes)
		}
		h := signed.BodyHash(sr.GetBody())
		st.Seq++
		st.LastHash = h[:]
		st.Pending = append(st.Pending, PendingRecord{Seq: st.Seq, RecordID: rec.GetRecordId(), Kind: kind, Body: sr.GetBody(), Signature: sr.GetSignature()})
		out = append(out, sr)
	}
	st.HLC = s.clock.Last()
	if update != nil {
		update(&st, first, st.Seq)
	}
	if err := s.save(st); err != nil {
		return nil, err
	}
	s.log.Debug("committee records signed", "election", st.ElectionID, "count", len(out), "seq", st.Seq)
	return out, nil
}

// Pending returns the records signed and not yet answered, oldest first.
func (s *Signer) Pending() []PendingRecord { return s.State().Pending }

// Ack records the server's answers: each pending record, oldest first, that
// has an answer in results is done (whatever the answer: a rejection is a
// decision the server logged too). It stops at the first record without an
// answer, so Acked always covers a gap-free prefix.
func (s *Signer) Ack(results []*doorstepv1.RecordResult) error {
	answered := make(map[string]bool, len(results))
	for _, r := range results {
		answered[r.GetRecordId()] = true
	}
	n := 0
	for n < len(s.st.Pending) && answered[s.st.Pending[n].RecordID] {
		n++
	}
	if n == 0 {
		return nil
	}
	return s.save(s.acked(n))
}

// acked returns the state with the first n pending records acknowledged.
func (s *Signer) acked(n int) State {
	st := s.st.Clone()
	last := st.Pending[n-1]
	h := signed.BodyHash(last.Body)
	st.Acked = last.Seq
	st.AckedHash = h[:]
	st.Pending = st.Pending[n:]
	if len(st.Pending) == 0 {
		st.Pending = nil
	}
	return st
}

// Reconcile compares the chain with what the server reports holding
// (GetCommitteeState: highSeq and the hash of that record's body). Pending
// records the server already holds are acknowledged; the rest stay pending
// to be sent again. It fails, changing nothing, when the server holds
// records this machine never signed (ErrForeignRecords), holds a different
// record under one of this chain's numbers, or lacks records it already
// answered.
func (s *Signer) Reconcile(highSeq uint64, highHash []byte) error {
	st := s.st
	id := st.ElectionID
	switch {
	case highSeq > st.Seq:
		return fmt.Errorf("the server holds committee records up to number %d for election %s, but this machine signed only up to %d: %w. Keep one committee machine (and one copy of its folder) per election; if this folder was restored from an old backup, restore the newest one", highSeq, id, st.Seq, ErrForeignRecords)
	case highSeq < st.Acked:
		return fmt.Errorf("the server holds committee records only up to number %d for election %s, but it already answered up to %d: is --server the server this election was created on?", highSeq, id, st.Acked)
	case highSeq == 0:
		return nil
	}
	var want []byte
	n := int(highSeq - st.Acked) // pending records the server holds
	if n == 0 {
		want = st.AckedHash
	} else {
		h := signed.BodyHash(st.Pending[n-1].Body)
		want = h[:]
	}
	if !bytes.Equal(want, highHash) {
		return fmt.Errorf("the server's committee record number %d for election %s is not the one this machine signed: %w (the chains have forked); stop and compare the committee machines", highSeq, id, ErrForeignRecords)
	}
	if n == 0 {
		return nil
	}
	return s.save(s.acked(n))
}

// SetRoster records the roster import this machine made; nil forgets it
// (when the server refused every chunk, so nothing of it is there).
func (s *Signer) SetRoster(r *Roster) error {
	st := s.st.Clone()
	st.Roster = nil
	if r != nil {
		c := *r
		st.Roster = &c
	}
	return s.save(st)
}

// DiscardUncreated forgets every record of a chain the server never
// started: when CreateElection refused the definition outright, nothing of
// the chain is on the server and record number 1 must be signed anew. It
// refuses once the server has answered any record.
func (s *Signer) DiscardUncreated() error {
	if s.st.Acked > 0 {
		return fmt.Errorf("election %s: the server already holds committee records; they cannot be discarded", s.st.ElectionID)
	}
	st := s.st.Clone()
	st.Seq, st.LastHash, st.Pending, st.Definition, st.Roster = 0, nil, nil, nil, nil
	return s.save(st)
}

// SetServer records what the server said about itself.
func (s *Signer) SetServer(v Server) error {
	st := s.st.Clone()
	st.Server = &v
	return s.save(st)
}

func (s *Signer) save(st State) error {
	if s.lock == nil {
		return errors.New("committee chain is closed")
	}
	if err := writeState(s.path, st); err != nil {
		return err
	}
	s.st = st
	return nil
}
