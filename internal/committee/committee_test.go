package committee_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

var t0 = time.Date(2026, 6, 20, 9, 30, 0, 0, time.UTC)

func fixedNow() time.Time { return t0 }

var discard = slog.New(slog.DiscardHandler)

// newDir makes a committee folder with a key from a fixed seed.
func newDir(t *testing.T) (string, ed25519.PublicKey) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "committee")
	pub, err := committee.Init(dir, bytes.NewReader(bytes.Repeat([]byte{42}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	return dir, pub
}

func open(t *testing.T, dir, id string) *committee.Signer {
	t.Helper()
	s, err := committee.Open(dir, id, fixedNow, discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openAction() *doorstepv1.CommitteeAction {
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: make([]byte, 32)}}}
}

func revokeAction(dev string) *doorstepv1.CommitteeAction {
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Revocation{Revocation: &doorstepv1.DeviceRevocation{DeviceId: dev, Reason: "lost"}}}
}

func decode(t *testing.T, sr *doorstepv1.SignedRecord) *doorstepv1.Record {
	t.Helper()
	rec, err := signed.Decode(sr.GetBody())
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestInitAndLoadKey(t *testing.T) {
	dir, pub := newDir(t)
	fi, err := os.Stat(filepath.Join(dir, committee.KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("key mode = %v; want 0600", fi.Mode().Perm())
	}
	key, err := committee.LoadKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !key.Public().(ed25519.PublicKey).Equal(pub) {
		t.Error("loaded key differs from the one made")
	}
	if _, err := committee.Init(dir, bytes.NewReader(bytes.Repeat([]byte{1}, 32))); !errors.Is(err, committee.ErrKeyExists) {
		t.Errorf("second Init = %v; want ErrKeyExists", err)
	}
	if again, _ := committee.LoadKey(dir); !bytes.Equal(again, key) {
		t.Error("second Init changed the key")
	}
	if _, err := committee.LoadKey(t.TempDir()); !errors.Is(err, committee.ErrNoKey) {
		t.Errorf("LoadKey(empty) = %v; want ErrNoKey", err)
	}
}

func TestLoadKeyRefusesBadFiles(t *testing.T) {
	good := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32))
	damaged := bytes.Clone(good)
	damaged[40] ^= 1
	tests := []struct {
		name string
		data []byte
		mode os.FileMode
		want string
	}{
		{"readable by others", good, 0o644, "chmod 600"},
		{"short", good[:40], 0o600, "40 bytes"},
		{"long", append(bytes.Clone(good), 0), 0o600, "65 bytes"},
		{"halves disagree", damaged, 0o600, "damaged"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, committee.KeyFile)
			if err := os.WriteFile(p, tt.data, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(p, tt.mode); err != nil {
				t.Fatal(err)
			}
			_, err := committee.LoadKey(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("LoadKey = %v; want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestSignChains(t *testing.T) {
	dir, pub := newDir(t)
	s := open(t, dir, "cuihu-4th")
	recs, err := s.Sign(openAction(), revokeAction("d1"), revokeAction("d2"))
	if err != nil {
		t.Fatal(err)
	}
	var prev []byte
	var lastHLC uint64
	for i, sr := range recs {
		if err := signed.Verify(pub, sr); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		rec := decode(t, sr)
		if rec.GetAuthorSeq() != uint64(i+1) {
			t.Errorf("record %d: seq %d; want %d", i, rec.GetAuthorSeq(), i+1)
		}
		if !bytes.Equal(rec.GetPrevHash(), prev) {
			t.Errorf("record %d: prev_hash %x; want %x", i, rec.GetPrevHash(), prev)
		}
		if rec.GetAuthorId() != election.CommitteeAuthor || rec.GetElectionId() != "cuihu-4th" || rec.GetFormatVersion() != signed.FormatVersion {
			t.Errorf("record %d: author %q election %q version %d", i, rec.GetAuthorId(), rec.GetElectionId(), rec.GetFormatVersion())
		}
		if id := uuid.MustParse(rec.GetRecordId()); id.Version() != 7 {
			t.Errorf("record %d: id %s is not UUIDv7", i, id)
		}
		if !rec.GetAuthorTime().AsTime().Equal(t0) {
			t.Errorf("record %d: author_time %v; want %v", i, rec.GetAuthorTime().AsTime(), t0)
		}
		if rec.GetHlc() <= lastHLC {
			t.Errorf("record %d: hlc %d not after %d", i, rec.GetHlc(), lastHLC)
		}
		lastHLC = rec.GetHlc()
		h := signed.BodyHash(sr.GetBody())
		prev = h[:]
	}
	st := s.State()
	if st.Seq != 3 || st.Acked != 0 || len(st.Pending) != 3 || !bytes.Equal(st.LastHash, prev) {
		t.Errorf("state seq %d acked %d pending %d", st.Seq, st.Acked, len(st.Pending))
	}
	if st.Pending[0].Kind != committee.KindOpen || st.Pending[1].Kind != committee.KindRevocation {
		t.Errorf("kinds %q %q", st.Pending[0].Kind, st.Pending[1].Kind)
	}
}

func TestChainSurvivesReopen(t *testing.T) {
	dir, _ := newDir(t)
	s := open(t, dir, "e1")
	first, err := s.Sign(openAction(), revokeAction("d1"))
	if err != nil {
		t.Fatal(err)
	}
	// A crash after persisting and before sending: nothing acknowledged.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, "e1")
	st := s.State()
	if st.Seq != 2 || len(st.Pending) != 2 {
		t.Fatalf("after reopen: seq %d pending %d; want 2 and 2", st.Seq, len(st.Pending))
	}
	for i, p := range st.Pending {
		if !bytes.Equal(p.Body, first[i].GetBody()) || !bytes.Equal(p.Signature, first[i].GetSignature()) {
			t.Errorf("pending %d is not the same bytes as signed", i)
		}
	}
	next, err := s.Sign(revokeAction("d2"))
	if err != nil {
		t.Fatal(err)
	}
	rec := decode(t, next[0])
	want := signed.BodyHash(first[1].GetBody())
	if rec.GetAuthorSeq() != 3 || !bytes.Equal(rec.GetPrevHash(), want[:]) {
		t.Errorf("after reopen: seq %d prev %x; want 3 and %x", rec.GetAuthorSeq(), rec.GetPrevHash(), want)
	}
	if rec.GetHlc() <= decode(t, first[1]).GetHlc() {
		t.Error("hybrid clock went back across reopen")
	}
}

func TestAck(t *testing.T) {
	dir, _ := newDir(t)
	s := open(t, dir, "e1")
	recs, err := s.Sign(openAction(), revokeAction("d1"), revokeAction("d2"))
	if err != nil {
		t.Fatal(err)
	}
	id := func(i int) string { return decode(t, recs[i]).GetRecordId() }
	// An answer for record 2 alone acknowledges nothing: 1 is still open.
	if err := s.Ack([]*doorstepv1.RecordResult{{RecordId: id(1)}}); err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st.Acked != 0 || len(st.Pending) != 3 {
		t.Fatalf("acked %d pending %d; want 0 and 3", st.Acked, len(st.Pending))
	}
	if err := s.Ack([]*doorstepv1.RecordResult{{RecordId: id(0)}, {RecordId: id(1), Status: doorstepv1.RecordStatus_RECORD_STATUS_REJECTED}}); err != nil {
		t.Fatal(err)
	}
	st := s.State()
	want := signed.BodyHash(recs[1].GetBody())
	if st.Acked != 2 || len(st.Pending) != 1 || !bytes.Equal(st.AckedHash, want[:]) {
		t.Fatalf("acked %d pending %d hash %x", st.Acked, len(st.Pending), st.AckedHash)
	}
	s.Close()
	if st := open(t, dir, "e1").State(); st.Acked != 2 || st.Pending[0].RecordID != id(2) {
		t.Errorf("after reopen: acked %d, pending %v", st.Acked, st.Pending)
	}
}

func TestReconcile(t *testing.T) {
	hash := func(sr *doorstepv1.SignedRecord) []byte { h := signed.BodyHash(sr.GetBody()); return h[:] }
	tests := []struct {
		name        string
		ack         int // records acknowledged before
		high        int
		hash        func(recs []*doorstepv1.SignedRecord) []byte
		wantErr     error
		wantErrText string
		wantAcked   uint64
	}{
		{"server has none", 0, 0, func([]*doorstepv1.SignedRecord) []byte { return nil }, nil, "", 0},
		{"server has first two", 0, 2, func(r []*doorstepv1.SignedRecord) []byte { return hash(r[1]) }, nil, "", 2},
		{"server has all", 1, 3, func(r []*doorstepv1.SignedRecord) []byte { return hash(r[2]) }, nil, "", 3},
		{"server at acked", 2, 2, func(r []*doorstepv1.SignedRecord) []byte { return hash(r[1]) }, nil, "", 2},
		{"server ahead", 0, 4, func([]*doorstepv1.SignedRecord) []byte { return make([]byte, 32) }, committee.ErrForeignRecords, "up to number 4", 0},
		{"fork", 0, 2, func([]*doorstepv1.SignedRecord) []byte { return make([]byte, 32) }, committee.ErrForeignRecords, "forked", 0},
		{"fork at acked", 2, 2, func(r []*doorstepv1.SignedRecord) []byte { return hash(r[0]) }, committee.ErrForeignRecords, "forked", 2},
		{"server behind acked", 2, 1, func(r []*doorstepv1.SignedRecord) []byte { return hash(r[0]) }, nil, "is --server the server", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, _ := newDir(t)
			s := open(t, dir, "e1")
			recs, err := s.Sign(openAction(), revokeAction("d1"), revokeAction("d2"))
			if err != nil {
				t.Fatal(err)
			}
			var results []*doorstepv1.RecordResult
			for _, r := range recs[:tt.ack] {
				results = append(results, &doorstepv1.RecordResult{RecordId: decode(t, r).GetRecordId()})
			}
			if err := s.Ack(results); err != nil {
				t.Fatal(err)
			}
			err = s.Reconcile(uint64(tt.high), tt.hash(recs))
			switch {
			case tt.wantErrText == "" && err != nil:
				t.Fatalf("Reconcile: %v", err)
			case tt.wantErrText != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErrText)):
				t.Fatalf("Reconcile = %v; want error containing %q", err, tt.wantErrText)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("Reconcile = %v; want %v", err, tt.wantErr)
			}
			st := s.State()
			if st.Acked != tt.wantAcked || uint64(len(st.Pending)) != 3-tt.wantAcked {
				t.Errorf("acked %d pending %d; want %d and %d", st.Acked, len(st.Pending), tt.wantAcked, 3-tt.wantAcked)
			}
		})
	}
}

func TestFailedSaveSignsNothing(t *testing.T) {
	dir, _ := newDir(t)
	s := open(t, dir, "e1")
	// A folder where the state file should go makes the rename fail.
	statePath := filepath.Join(dir, "elections", "e1.json")
	if err := os.Mkdir(statePath, 0o700); err != nil {
		t.Fatal(err)
	}
	if recs, err := s.Sign(openAction()); err == nil || recs != nil {
		t.Fatalf("Sign with an unwritable state = %v, %v; want an error and no records", recs, err)
	}
	if st := s.State(); st.Seq != 0 || len(st.Pending) != 0 {
		t.Fatalf("failed Sign changed the chain: seq %d pending %d", st.Seq, len(st.Pending))
	}
	if tmps, _ := filepath.Glob(statePath + ".tmp-*"); len(tmps) != 0 {
		t.Errorf("temporary files left: %v", tmps)
	}
	if err := os.Remove(statePath); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Sign(openAction())
	if err != nil {
		t.Fatal(err)
	}
	if seq := decode(t, recs[0]).GetAuthorSeq(); seq != 1 {
		t.Errorf("seq after a failed save = %d; want 1 (nothing was sent)", seq)
	}
}

func TestLeftoverTempFileIgnored(t *testing.T) {
	dir, _ := newDir(t)
	s := open(t, dir, "e1")
	if _, err := s.Sign(openAction()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	// A crash mid-write leaves a partial temporary file beside the state.
	tmp := filepath.Join(dir, "elections", "e1.json.tmp-123")
	if err := os.WriteFile(tmp, []byte(`{"version": 1, "seq": 9`), 0o600); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir, "e1")
	if st := s.State(); st.Seq != 1 {
		t.Errorf("seq = %d; want 1", st.Seq)
	}
	if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("temporary file still there: %v", err)
	}
}

func TestDamagedStateRefused(t *testing.T) {
	dir, _ := newDir(t)
	s := open(t, dir, "e1")
	if _, err := s.Sign(openAction(), revokeAction("x")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	p := filepath.Join(dir, "elections", "e1.json")
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"truncated":  data[:len(data)/2],
		"seq bumped": bytes.Replace(data, []byte(`"seq": 2,`), []byte(`"seq": 3,`), 1),
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(p, bad, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := committee.Open(dir, "e1", fixedNow, discard)
			if err == nil || !strings.Contains(err.Error(), "damaged") {
				t.Errorf("Open = %v; want a damaged-state error", err)
			}
		})
	}
}

func TestPendingSignedByOtherKeyRefused(t *testing.T) {
	dir, _ := newDir(t)
	s := open(t, dir, "e1")
	if _, err := s.Sign(openAction()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	if err := os.WriteFile(filepath.Join(dir, committee.KeyFile), other, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := committee.Open(dir, "e1", fixedNow, discard); err == nil || !strings.Contains(err.Error(), "different key") {
		t.Errorf("Open = %v; want a different-key error", err)
	}
}

func TestLock(t *testing.T) {
	dir, _ := newDir(t)
	s := open(t, dir, "e1")
	if _, err := committee.Open(dir, "e1", fixedNow, discard); !errors.Is(err, committee.ErrBusy) {
		t.Errorf("second Open = %v; want ErrBusy", err)
	}
	other := open(t, dir, "e2") // another election is not locked
	other.Close()
	s.Close()
	open(t, dir, "e1").Close()
}

func TestDefinitionRosterServerAndList(t *testing.T) {
	dir, pub := newDir(t)
	s := open(t, dir, "选举/4")
	def := &doorstepv1.ElectionDefinition{ElectionId: "选举/4", Title: "t", CommitteePublicKey: pub}
	if _, err := s.Sign(&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: def}}); err != nil {
		t.Fatal(err)
	}
	wrong := &doorstepv1.ElectionDefinition{ElectionId: "other"}
	if _, err := s.Sign(&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: wrong}}); err == nil {
		t.Error("signing another election's definition succeeded")
	}
	if _, err := s.Sign(&doorstepv1.CommitteeAction{}); err == nil {
		t.Error("signing an empty action succeeded")
	}
	sum := sha256.Sum256([]byte("roster"))
	if err := s.SetRoster(&committee.Roster{SHA256: sum[:], Units: 3, AreaCenti: 30000, Owners: 2, FirstSeq: 2, LastSeq: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetServer(committee.Server{Address: "127.0.0.1:7070", Fingerprint: "SHA256:x"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	open(t, dir, "a").Close() // a fresh chain writes no state until it signs
	states, err := committee.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != 1 || states[0].ElectionID != "选举/4" {
		t.Fatalf("List = %+v", states)
	}
	st := states[0]
	got, err := st.DefinitionProto()
	if err != nil || !proto.Equal(got, def) {
		t.Errorf("definition = %v, %v; want %v", got, err, def)
	}
	if st.Roster == nil || !bytes.Equal(st.Roster.SHA256, sum[:]) || st.Roster.Units != 3 {
		t.Errorf("roster = %+v", st.Roster)
	}
	if st.Server == nil || st.Server.Fingerprint != "SHA256:x" {
		t.Errorf("server = %+v", st.Server)
	}
}

func rosterChunk(ids ...string) *doorstepv1.CommitteeAction {
	var us []*doorstepv1.Unit
	for _, id := range ids {
		us = append(us, &doorstepv1.Unit{UnitId: id, AreaCentiM2: 100, OwnerKey: "o-" + id})
	}
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Roster{Roster: &doorstepv1.RosterChunk{Units: us}}}
}

func TestSignRoster(t *testing.T) {
	dir, _ := newDir(t)
	s := open(t, dir, "e1")
	if _, err := s.Sign(openAction()); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("r"))
	recs, err := s.SignRoster(committee.Roster{SHA256: sum[:], Units: 3}, rosterChunk("a", "b"), rosterChunk("c"))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Fatalf("%d records; want 2", len(recs))
	}
	s.Close()
	st, ok, err := committee.ReadState(dir, "e1")
	if err != nil || !ok {
		t.Fatalf("ReadState = %v, %v", ok, err)
	}
	if r := st.Roster; r == nil || r.FirstSeq != 2 || r.LastSeq != 3 || r.Units != 3 {
		t.Errorf("roster = %+v; want seqs 2..3 and 3 units", r)
	}
	s = open(t, dir, "e1")
	if _, err := s.SignRoster(committee.Roster{}, openAction()); err == nil {
		t.Error("SignRoster accepted an open action")
	}
	if _, ok, err := committee.ReadState(dir, "nothing-here"); ok || err != nil {
		t.Errorf("ReadState(missing) = %v, %v; want false, nil", ok, err)
	}
}

func TestDiscardUncreated(t *testing.T) {
	dir, pub := newDir(t)
	s := open(t, dir, "e1")
	def := &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: &doorstepv1.ElectionDefinition{ElectionId: "e1", CommitteePublicKey: pub}}}
	if _, err := s.Sign(def); err != nil {
		t.Fatal(err)
	}
	if err := s.DiscardUncreated(); err != nil {
		t.Fatal(err)
	}
	if st := s.State(); st.Seq != 0 || len(st.Pending) != 0 || st.Definition != nil {
		t.Fatalf("after discard: %+v", st)
	}
	recs, err := s.Sign(def)
	if err != nil {
		t.Fatal(err)
	}
	if seq := decode(t, recs[0]).GetAuthorSeq(); seq != 1 {
		t.Errorf("definition after discard has seq %d; want 1", seq)
	}
	if err := s.Ack([]*doorstepv1.RecordResult{{RecordId: decode(t, recs[0]).GetRecordId()}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DiscardUncreated(); err == nil {
		t.Error("DiscardUncreated after an answer succeeded")
	}
}
