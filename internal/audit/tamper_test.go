package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd/tallydtest"
)

// The tamper tests change an exported record the way a forger, a careless
// copy or a lying server would, and check that Verify names what changed.

func readEntries(t *testing.T, dir string) [][]byte {
	t.Helper()
	f, err := os.Open(filepath.Join(dir, audit.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out [][]byte
	if err := audit.ReadLog(f, func(_ int64, e []byte) error { out = append(out, bytes.Clone(e)); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func writeEntries(t *testing.T, dir string, entries [][]byte) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, audit.LogFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := audit.NewLogWriter(f)
	for _, e := range entries {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
}

// resign plays the lying server: it signs the entries' new root with the
// real server key and fixes the manifest's log size.
func resign(t *testing.T, dir string, entries [][]byte) {
	t.Helper()
	m, err := audit.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := ballotlog.NewSigner(m.LogOrigin, tallydtest.ServerKey())
	if err != nil {
		t.Fatal(err)
	}
	cp, err := sg.Sign(int64(len(entries)), rootOf(t, entries))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, audit.CheckpointFile), []byte(cp.SignedNote), 0o644); err != nil {
		t.Fatal(err)
	}
	editManifest(t, dir, func(m *audit.Manifest) { m.LogSize = int64(len(entries)) })
}

func editManifest(t *testing.T, dir string, edit func(*audit.Manifest)) {
	t.Helper()
	m, err := audit.ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	edit(m)
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, audit.ManifestFile), append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// entryOf finds the log index of a signed record.
func entryOf(t *testing.T, entries [][]byte, sr *doorstepv1.SignedRecord) int {
	t.Helper()
	for i, raw := range entries {
		e, err := ballotlog.DecodeEntry(raw)
		if err == nil && bytes.Equal(e.GetRecord().GetBody(), sr.GetBody()) {
			return i
		}
	}
	t.Fatal("record not in the log")
	return -1
}

var (
	namedOnce    sync.Once
	namedRecords map[string]*doorstepv1.SignedRecord
)

// named re-creates a record of the vector election by name: the election
// is deterministic, so a second run signs the same bytes.
func named(t *testing.T, name string) *doorstepv1.SignedRecord {
	t.Helper()
	namedOnce.Do(func() {
		tb := &onceTB{TB: t}
		defer tb.cleanup()
		namedRecords = tallydtest.Start(tb, filepath.Join(t.TempDir(), "data")).Records
	})
	sr := namedRecords[name]
	if sr == nil {
		t.Fatalf("no record named %q", name)
	}
	return sr
}

func renumber(t *testing.T, entries [][]byte, from int) {
	t.Helper()
	for i := from; i < len(entries); i++ {
		entries[i] = withResult(t, entries[i], func(r *doorstepv1.RecordResult) { r.LogIndex = uint64(i) })
	}
}

// lateRoster is a roster chunk the committee signs after the close,
// continuing its chain as found in the log.
func lateRoster(t *testing.T, entries [][]byte) []byte {
	t.Helper()
	var last *doorstepv1.Record
	var lastBody []byte
	for _, raw := range entries {
		e, _ := ballotlog.DecodeEntry(raw)
		if rec, err := signed.Decode(e.GetRecord().GetBody()); err == nil && rec.GetAuthorId() == election.CommitteeAuthor {
			last, lastBody = rec, e.GetRecord().GetBody()
		}
	}
	prev := signed.BodyHash(lastBody)
	rec := &doorstepv1.Record{
		FormatVersion: signed.FormatVersion, RecordId: "01a1f900-0000-7000-8000-000000000001", ElectionId: tallydtest.ElectionID,
		AuthorId: election.CommitteeAuthor, AuthorSeq: last.GetAuthorSeq() + 1, PrevHash: prev[:], Hlc: last.GetHlc() + 1,
		Body: &doorstepv1.Record_Committee{Committee: signedtest.Roster([]election.Unit{{ID: "3-1-101", Area: 9000, OwnerKey: "owner-late", Building: "3"}})},
	}
	sr, err := signed.Sign(tallydtest.CommitteeKey(), rec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ballotlog.EncodeEntry(&doorstepv1.LogEntry{
		Record:     sr,
		Result:     &doorstepv1.RecordResult{RecordId: rec.RecordId, Status: doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED, LogIndex: uint64(len(entries))},
		Received:   timestamppb.New(tallydtest.Begin.Add(48 * time.Hour)),
		ElectionId: tallydtest.ElectionID,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTamper(t *testing.T) {
	tests := []struct {
		name   string
		tamper func(t *testing.T, dir string)
		want   [][]string // each must be in some discrepancy
	}{
		{"one byte flipped in an entry", func(t *testing.T, dir string) {
			es := readEntries(t, dir)
			i := entryOf(t, es, named(t, "counted"))
			e, _ := ballotlog.DecodeEntry(es[i])
			body := e.GetRecord().GetBody()
			k := bytes.Index(es[i], body) + bytes.LastIndex(body, []byte("c2")) + 1
			es[i][k] = '3' // the second pick now reads c3
			writeEntries(t, dir, es)
		}, [][]string{
			{"entry 8 (dv-", "record 1): signature: does not verify with the key of dv-"},
			{"checkpoint.txt: the Merkle root of the log's first 23 entries is"},
		}},
		{"an entry dropped", func(t *testing.T, dir string) {
			es := readEntries(t, dir)
			i := entryOf(t, es, named(t, "developer"))
			writeEntries(t, dir, append(es[:i:i], es[i+1:]...))
		}, [][]string{
			{"entry 12: result.log_index: the entry says it is entry 13 but is number 12"},
			{"log/entries.bin: holds 22 entries; the signed checkpoint is for 23"},
		}},
		{"two entries swapped", func(t *testing.T, dir string) {
			es := readEntries(t, dir)
			i, j := entryOf(t, es, named(t, "contest-x")), entryOf(t, es, named(t, "contest-y"))
			es[i], es[j] = es[j], es[i]
			writeEntries(t, dir, es)
		}, [][]string{
			{"entry 15: result.log_index: the entry says it is entry 16"},
			{"entry 16: result.log_index: the entry says it is entry 15"},
			{"checkpoint.txt: the Merkle root"},
		}},
		{"checkpoint re-signed with another key", func(t *testing.T, dir string) {
			m, _ := audit.ReadManifest(dir)
			sg, err := ballotlog.NewSigner(m.LogOrigin, signedtest.NewKey("impostor"))
			if err != nil {
				t.Fatal(err)
			}
			cp, _ := sg.Sign(m.LogSize, rootOf(t, readEntries(t, dir)))
			os.WriteFile(filepath.Join(dir, audit.CheckpointFile), []byte(cp.SignedNote), 0o644)
		}, [][]string{{"checkpoint.txt: does not verify with the server key in the manifest", "not signed by the expected server key"}}},
		{"published tally altered", func(t *testing.T, dir string) {
			p := filepath.Join(dir, audit.TallyFile)
			b := readFile(t, p)
			b = bytes.Replace(b, []byte(`"yes":{"area":46225,"headcount":5}`), []byte(`"yes":{"area":46225,"headcount":6}`), 1)
			os.WriteFile(p, b, 0o644)
		}, [][]string{
			{"tally items[rules].yes.headcount: published 6, recomputed 5"},
			{"results.csv: line 3 differs"},
		}},
		{"device record withheld by the server", func(t *testing.T, dir string) {
			es := readEntries(t, dir)
			i := entryOf(t, es, named(t, "replaced"))
			es = append(es[:i:i], es[i+1:]...)
			renumber(t, es, i)
			writeEntries(t, dir, es)
			resign(t, dir, es)
		}, [][]string{{"(dv-", "record 2): chain: record 2 is missing from the log, though dv-", "withheld or lost"}}},
		{"roster altered after open", func(t *testing.T, dir string) {
			es := readEntries(t, dir)
			es = append(es, lateRoster(t, es))
			writeEntries(t, dir, es)
			resign(t, dir, es)
		}, [][]string{{"entry 23 (committee record", "this roster record, which the rules reject: the roster is frozen once the election opens"}}},
		{"manifest roster hash altered", func(t *testing.T, dir string) {
			editManifest(t, dir, func(m *audit.Manifest) { m.RosterSHA256 = strings.Repeat("0", 64) })
		}, [][]string{{"manifest.json roster_sha256: says 0000", "the log gives aa861d84"}}},
		{"participation csv altered", func(t *testing.T, dir string) {
			p := filepath.Join(dir, audit.ParticipationFile)
			os.WriteFile(p, bytes.Replace(readFile(t, p), []byte("total,8,"), []byte("total,9,"), 1), 0o644)
		}, [][]string{{"participation.csv: line 5 differs"}}},
		{"log file truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, audit.LogFile)
			b := readFile(t, p)
			os.WriteFile(p, b[:len(b)-10], 0o644)
		}, [][]string{{"entry 22: log/entries.bin: at byte", "the file ends after"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := copyRecord(t)
			tt.tamper(t, dir)
			rep, err := audit.Verify(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			if rep.OK() {
				t.Fatal("Verify found nothing wrong")
			}
			for _, w := range tt.want {
				wantFinding(t, rep, w...)
			}
		})
	}
}

func TestVerifyUnreadableFolder(t *testing.T) {
	dir := copyRecord(t)
	for _, name := range []string{audit.CheckpointFile, audit.ManifestFile} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		if _, err := audit.Verify(context.Background(), dir); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("without %s: Verify error %v; want one naming the file", name, err)
		}
	}
	if _, err := audit.Verify(context.Background(), t.TempDir()); err == nil {
		t.Error("Verify of an empty folder succeeded")
	}
}

// TestExportRefusesUsedFolder keeps an export from mixing with old files.
func TestExportRefusesUsedFolder(t *testing.T) {
	dir := copyRecord(t)
	s := newSynth(t, 3)
	s.open()
	_, err := audit.Export(context.Background(), memSource{s}, dir)
	if err == nil || !strings.Contains(err.Error(), "is not empty") {
		t.Fatalf("Export into a used folder: %v; want a refusal", err)
	}
}

// TestExportRefusesForeignLog: a source whose entries do not match its own
// signed checkpoint is refused before anything is called a record.
func TestExportRefusesForeignLog(t *testing.T) {
	s := newSynth(t, 3)
	s.open()
	src := swappedSource{memSource{s}}
	_, err := audit.Export(context.Background(), src, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "not the") {
		t.Fatalf("Export of a log that does not match its checkpoint: %v", err)
	}
}

// swappedSource serves its log with one entry changed after signing.
type swappedSource struct{ memSource }

func (s swappedSource) LogEntries(ctx context.Context, start, end int64, fn func(int64, []byte) error) error {
	return s.memSource.LogEntries(ctx, start, end, func(i int64, e []byte) error {
		if i == 1 {
			x, _ := ballotlog.DecodeEntry(e)
			x = proto.CloneOf(x)
			x.Received.Nanos++
			e, _ = ballotlog.EncodeEntry(x)
		}
		return fn(i, e)
	})
}
