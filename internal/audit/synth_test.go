package audit_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// synth writes a ballot log directly, as a server would, without one: the
// benchmark needs a million records quickly, and the replay tests need
// logs no honest server writes.
type synth struct {
	tb        testing.TB
	id        string
	origin    string
	serverKey ed25519.PrivateKey
	committee *signedtest.Author
	def       *doorstepv1.ElectionDefinition
	edef      *election.Definition
	units     []election.Unit
	roster    *election.Roster
	entries   [][]byte
	now       time.Time
	// ballots are the ballots the synthetic server counted, for its tally.
	ballots map[string][]tally.Ballot
}

var synthStart = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

func synthDefinition(id string, committeeKey ed25519.PublicKey) *doorstepv1.ElectionDefinition {
	return signedtest.Definition(id, committeeKey, synthStart.Add(72*time.Hour))
}

// newSynth defines an election with units units (one owner each, in
// buildings of 100) and imports its roster; it is not open yet.
func newSynth(tb testing.TB, units int) *synth {
	tb.Helper()
	s := &synth{
		tb: tb, id: "estate-2026", origin: "doorstep.example/estate-2026",
		serverKey: signedtest.NewKey("synthetic server"),
		committee: signedtest.NewAuthor("estate-2026", election.CommitteeAuthor, "synthetic committee", synthStart),
		now:       synthStart,
		ballots:   map[string][]tally.Ballot{},
	}
	s.def = synthDefinition(s.id, s.committee.Public())
	var err error
	if s.edef, err = rules.Definition(s.def); err != nil {
		tb.Fatal(err)
	}
	s.accept(s.committee.Committee(tb, signedtest.Define(s.def)), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
	for i := range units {
		s.units = append(s.units, election.Unit{
			ID: fmt.Sprintf("%d-1-%d", i/100+1, i%100+101), Area: 6000 + int64(i%80)*100, OwnerKey: fmt.Sprintf("o-%d", i), Building: fmt.Sprint(i/100 + 1),
		})
	}
	for start := 0; start < len(s.units); start += 50_000 {
		chunk := s.units[start:min(start+50_000, len(s.units))]
		s.accept(s.committee.Committee(tb, signedtest.Roster(chunk)), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
	}
	return s
}

// add appends an entry as the server would: numbered, dated, encoded once.
func (s *synth) add(e *doorstepv1.LogEntry) int64 {
	s.tb.Helper()
	idx := int64(len(s.entries))
	if e.Result != nil {
		e.Result.LogIndex = uint64(idx)
	}
	e.ElectionId = s.id
	s.now = s.now.Add(time.Millisecond)
	e.Received = timestamppb.New(s.now)
	b, err := ballotlog.EncodeEntry(e)
	if err != nil {
		s.tb.Fatal(err)
	}
	s.entries = append(s.entries, b)
	return idx
}

// accept logs sr with the given status; a ballot gets its receipt code.
func (s *synth) accept(sr *doorstepv1.SignedRecord, st doorstepv1.RecordStatus) int64 {
	s.tb.Helper()
	rec, err := signed.Decode(sr.GetBody())
	if err != nil {
		s.tb.Fatal(err)
	}
	res := &doorstepv1.RecordResult{RecordId: rec.GetRecordId(), Status: st}
	if rec.GetBallot() != nil {
		res.ReceiptCode = ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature())
	}
	return s.add(&doorstepv1.LogEntry{Record: sr, Result: res})
}

// count logs sr as an accepted ballot and counts it in the synthetic
// server's tally.
func (s *synth) count(sr *doorstepv1.SignedRecord) int64 {
	s.tb.Helper()
	rec, _ := signed.Decode(sr.GetBody())
	b := rec.GetBallot()
	marks, _, err := s.edef.Marks(rules.Selections(b.GetSelections()))
	if err != nil {
		s.tb.Fatal(err)
	}
	s.ballots[b.GetUnitId()] = append(s.ballots[b.GetUnitId()], tally.Ballot{RecordID: rec.GetRecordId(), DeviceID: rec.GetAuthorId(), HLC: rec.GetHlc(), Marks: marks})
	return s.accept(sr, doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
}

// reject logs sr as rejected for reason.
func (s *synth) reject(sr *doorstepv1.SignedRecord, reason doorstepv1.ReasonCode) int64 {
	rec, _ := signed.Decode(sr.GetBody())
	return s.add(&doorstepv1.LogEntry{Record: sr, Result: &doorstepv1.RecordResult{RecordId: rec.GetRecordId(), Status: doorstepv1.RecordStatus_RECORD_STATUS_REJECTED, Reason: reason}})
}

// device grants, enrolls and returns a device.
func (s *synth) device(name string) *signedtest.Author {
	s.tb.Helper()
	key := signedtest.NewKey("synthetic device " + name)
	id := rules.DeviceID(key.Public().(ed25519.PublicKey))
	grant := s.committee.Committee(s.tb, signedtest.Grant(name, name))
	s.accept(grant, doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
	a := signedtest.NewAuthor(s.id, id, "synthetic device "+name, synthStart)
	s.add(&doorstepv1.LogEntry{
		Result:     &doorstepv1.RecordResult{Status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED},
		Enrollment: &doorstepv1.DeviceEnrollment{DeviceId: id, DevicePublicKey: a.Public(), GrantRecordId: signedtest.RecordID(s.tb, grant), Label: name},
	})
	return a
}

func (s *synth) open() {
	s.tb.Helper()
	var err error
	if s.roster, err = election.NewRoster(s.units); err != nil {
		s.tb.Fatal(err)
	}
	s.accept(s.committee.Committee(s.tb, signedtest.Open(s.units)), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
}

func (s *synth) close() {
	s.tb.Helper()
	s.accept(s.committee.Committee(s.tb, signedtest.Close()), doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED)
}

// memSource serves the synthetic log to audit.Export.
type memSource struct {
	s *synth
}

func (m memSource) Tally(ctx context.Context) ([]byte, *doorstepv1.Checkpoint, error) {
	var b ballotlog.Builder
	for _, e := range m.s.entries {
		if _, err := b.Append(e); err != nil {
			return nil, nil, err
		}
	}
	root, err := b.TreeHash(b.Size())
	if err != nil {
		return nil, nil, err
	}
	cp, err := m.s.signer().Sign(b.Size(), root)
	if err != nil {
		return nil, nil, err
	}
	if m.s.roster == nil {
		return []byte("{}\n"), cp, nil // never opened: nothing to count
	}
	res, _ := tally.Compute(m.s.edef, m.s.roster, m.s.ballots, nil, nil)
	return res.CanonicalJSON(), cp, nil
}

func (m memSource) VerifierKey(ctx context.Context) (string, error) {
	return m.s.signer().VerifierKey(), nil
}

func (m memSource) LogEntries(ctx context.Context, start, end int64, fn func(int64, []byte) error) error {
	for i := start; i < end; i++ {
		if err := fn(i, m.s.entries[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *synth) signer() *ballotlog.Signer {
	sg, err := ballotlog.NewSigner(s.origin, s.serverKey)
	if err != nil {
		s.tb.Fatal(err)
	}
	return sg
}

// export writes the synthetic record into a new folder.
func (s *synth) export(dir string) *audit.Report {
	s.tb.Helper()
	rep, err := audit.Export(context.Background(), memSource{s}, dir)
	if err != nil {
		s.tb.Fatalf("export: %v", err)
	}
	return rep
}

// genBallots makes n counted ballots, one per unit, from devices devices,
// signing on every core: each device's chain is signed in order by one
// goroutine.
func (s *synth) genBallots(devices, n int) {
	s.tb.Helper()
	devs := make([]*signedtest.Author, devices)
	for i := range devs {
		devs[i] = s.device(fmt.Sprintf("canvasser-%d", i))
	}
	s.open()
	signedBy := make([][]*doorstepv1.SignedRecord, devices)
	var wg sync.WaitGroup
	for d := range devices {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := d; i < n; i += devices {
				sels := []*doorstepv1.Selection{signedtest.Yes("rules"), signedtest.No("fund"), signedtest.Pick("board", "c1", "c3")}
				switch i % 5 {
				case 1:
					sels = []*doorstepv1.Selection{signedtest.No("rules"), signedtest.Yes("fund"), signedtest.Pick("board", "c2")}
				case 2:
					sels = []*doorstepv1.Selection{signedtest.Abstain("rules"), signedtest.Pick("board", "c1", "c2")}
				}
				signedBy[d] = append(signedBy[d], devs[d].Ballot(nil, s.units[i].ID, "", sels...))
			}
		}()
	}
	wg.Wait()
	for i := range n {
		s.count(signedBy[i%devices][i/devices])
	}
}

// rootOf is the Merkle root of entries.
func rootOf(tb testing.TB, entries [][]byte) tlog.Hash {
	tb.Helper()
	var b ballotlog.Builder
	for _, e := range entries {
		if _, err := b.Append(e); err != nil {
			tb.Fatal(err)
		}
	}
	h, err := b.TreeHash(b.Size())
	if err != nil {
		tb.Fatal(err)
	}
	return h
}

// withResult re-encodes entry with its decision changed by edit, as a
// lying server would log it.
func withResult(tb testing.TB, entry []byte, edit func(*doorstepv1.RecordResult)) []byte {
	tb.Helper()
	e, err := ballotlog.DecodeEntry(entry)
	if err != nil {
		tb.Fatal(err)
	}
	e = proto.CloneOf(e)
	edit(e.Result)
	b, err := ballotlog.EncodeEntry(e)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
