package tallyd_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// ack is a record the server answered, with the size of the checkpoint
// that came with the answer.
type ack struct {
	id     string
	cpSize uint64
}

// pushLoad pushes each device's records in batches over its own gRPC
// connection, one batch after another, and records every answer.
type pushLoad struct {
	mu    sync.Mutex
	acks  []ack // guarded by mu
	errs  []error
	wg    sync.WaitGroup
	total int
}

func (l *pushLoad) start(t *testing.T, srv *tallyd.Server, devs []*signedtest.Author, recs [][]*doorstepv1.SignedRecord, batch int) {
	t.Helper()
	for i, d := range devs {
		conn, err := srv.Client().New(srv.Addr(), grpc.WithDefaultCallOptions(signedCall(testElection, d.ID, d.Key, time.Now)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		sc := doorstepv1.NewSyncServiceClient(conn)
		l.total += len(recs[i])
		l.wg.Add(1)
		go func(mine []*doorstepv1.SignedRecord) {
			defer l.wg.Done()
			for len(mine) > 0 {
				n := min(batch, len(mine))
				c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				resp, err := sc.PushRecords(c, &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: mine[:n]})
				cancel()
				l.mu.Lock()
				if err != nil {
					l.errs = append(l.errs, err)
					l.mu.Unlock()
					return
				}
				for _, r := range resp.GetResults() {
					l.acks = append(l.acks, ack{id: r.GetRecordId(), cpSize: resp.GetCheckpoint().GetSize()})
				}
				l.mu.Unlock()
				mine = mine[n:]
				time.Sleep(2 * time.Millisecond) // a canvassing day's pace, roughly: pushes keep coming
			}
		}(recs[i])
	}
}

func (l *pushLoad) acked() []ack {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ack(nil), l.acks...)
}

// loadRecords signs each device's ballots: doors of its own, about one in
// eight a revision of its own earlier ballot there, and a few at doors of
// another device (contested or double).
func loadRecords(t *testing.T, devs []*signedtest.Author, perDevice, units int) [][]*doorstepv1.SignedRecord {
	t.Helper()
	r := rand.New(rand.NewPCG(20261201, 1))
	out := make([][]*doorstepv1.SignedRecord, len(devs))
	for i, d := range devs {
		last := map[string]string{} // unit → this device's latest ballot there
		for k := range perDevice {
			u := unitID((i*perDevice + k) % units)
			switch {
			case k > 8 && r.IntN(8) == 0:
				u = unitID((i*perDevice + r.IntN(k)) % units)
			case r.IntN(30) == 0:
				u = unitID(((i+1)%len(devs)*perDevice + r.IntN(perDevice)) % units)
			}
			sr := d.Ballot(t, u, last[u], randChoice(r).selections()...)
			last[u] = signedtest.RecordID(t, sr)
			out[i] = append(out[i], sr)
		}
	}
	return out
}

// logRecords reads a log: each device record, in log order, and how
// often each record id is logged.
func logRecords(t *testing.T, srv *tallyd.Server) ([]*doorstepv1.SignedRecord, map[string]int, [][]byte) {
	t.Helper()
	st := srv.Store()
	size, err := st.LogSize(ctx(t), testElection)
	if err != nil {
		t.Fatal(err)
	}
	var recs []*doorstepv1.SignedRecord
	var entries [][]byte
	ids := map[string]int{}
	err = st.LogEntries(ctx(t), testElection, 0, size, func(_ int64, b []byte) error {
		entries = append(entries, b)
		e, err := ballotlog.DecodeEntry(b)
		if err != nil || e.GetRecord() == nil {
			return err
		}
		rec, err := signed.Decode(e.GetRecord().GetBody())
		if err != nil {
			return err
		}
		ids[rec.GetRecordId()]++
		if rec.GetAuthorId() != election.CommitteeAuthor {
			recs = append(recs, e.GetRecord())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return recs, ids, entries
}

var headLine = regexp.MustCompile(`election ` + testElection + `: log size (\d+), root (\S+)`)

// TestBackupUnderLoad backs a tallyd up with `tallyd backup` while four
// devices push through real gRPC, restores the copy into a fresh folder
// and starts tallyd on it: every record acknowledged before the backup,
// and every one whose answer's checkpoint the backup's covers, is there
// once; the restored log is the live log's first entries; and the
// restored tally equals a clean server's fed the same records.
func TestBackupUnderLoad(t *testing.T) {
	const units, perDevice, batch = 2000, 300, 10
	devs := make([]*signedtest.Author, 4)
	for i := range devs {
		devs[i] = signedtest.NewAuthor(testElection, "", fmt.Sprintf("backup device %d", i), time.Now().Add(-time.Hour))
		devs[i].ID = rules.DeviceID(devs[i].Public())
	}
	recs := loadRecords(t, devs, perDevice, units)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	srv := startElection(t, data, units, devs, true)
	defer srv.Close()

	var load pushLoad
	load.start(t, srv, devs, recs, batch)
	for len(load.acked()) < load.total/4 {
		time.Sleep(5 * time.Millisecond)
	}
	before := load.acked()
	out := filepath.Join(dir, "backup.db")
	var stdout, stderr bytes.Buffer
	if code := tallyd.Main(ctx(t), []string{"backup", "--data", data, "--out", out}, &stdout, &stderr); code != 0 {
		t.Fatalf("tallyd backup: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	during := load.acked()
	load.wg.Wait()
	if len(load.errs) > 0 {
		t.Fatalf("pushes failed: %v", load.errs)
	}
	t.Logf("tallyd backup said:\n%s", stdout.String())
	if !bytes.Contains(stdout.Bytes(), []byte("copied by the running tallyd")) {
		t.Errorf("the backup was not made by the running server:\n%s", stdout.String())
	}
	m := headLine.FindSubmatch(stdout.Bytes())
	if m == nil {
		t.Fatalf("no checkpoint of %s in the backup's output:\n%s", testElection, stdout.String())
	}
	size, _ := strconv.ParseUint(string(m[1]), 10, 64)
	root := string(m[2])
	_, _, live := logRecords(t, srv)
	if size < uint64(len(before)) || size >= uint64(len(live)) {
		t.Errorf("the backup's log has %d entries: want more than the %d records acknowledged before it and fewer than the %d logged by the end (a copy taken under load)", size, len(before), len(live))
	}
	t.Logf("%d records acknowledged before the backup, %d when it returned, %d in all; the backup's log has %d of the live log's %d entries", len(before), len(during), len(load.acked()), size, len(live))

	// Restore: the copy and the identity files in a fresh folder.
	restored := filepath.Join(dir, "restored")
	if err := os.MkdirAll(restored, 0o700); err != nil {
		t.Fatal(err)
	}
	copyTo(t, out, filepath.Join(restored, tallyd.DBFile))
	for _, name := range []string{tallyd.KeyFile, tallyd.OperatorTokenFile} {
		copyTo(t, filepath.Join(data, name), filepath.Join(restored, name))
	}
	rs, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: restored, Listen: "127.0.0.1:0", Plaintext: true})
	if err != nil {
		t.Fatalf("start tallyd on the restored folder: %v", err)
	}
	defer rs.Close()
	cp, err := rs.Store().Checkpoint(ctx(t), testElection)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := rs.Store().VerifierKey(testElection)
	if err != nil {
		t.Fatal(err)
	}
	tree, err := ballotlog.VerifyCheckpoint(cp, vkey)
	if err != nil {
		t.Fatalf("the restored server's checkpoint: %v", err)
	}
	if uint64(tree.N) != size || tree.Hash.String() != root {
		t.Errorf("the restored server signs size %d root %s; the backup said size %d root %s", tree.N, tree.Hash, size, root)
	}
	if rs.Fingerprint() != srv.Fingerprint() {
		t.Errorf("the restored server's key %s is not the original's %s", rs.Fingerprint(), srv.Fingerprint())
	}

	got, ids, entries := logRecords(t, rs)
	for i, e := range entries {
		if !bytes.Equal(e, live[i]) {
			t.Fatalf("restored log entry %d differs from the live log's", i)
		}
	}
	lost, coveredLost, twice := 0, 0, 0
	for _, a := range before {
		if ids[a.id] == 0 {
			lost++
		}
	}
	covered := 0
	for _, a := range load.acked() {
		if a.cpSize <= size {
			covered++
			if ids[a.id] == 0 {
				coveredLost++
			}
		}
	}
	for _, n := range ids {
		if n > 1 {
			twice++
		}
	}
	if lost > 0 || coveredLost > 0 || twice > 0 {
		t.Errorf("restored: %d of %d records acknowledged before the backup missing; %d of %d whose answer's checkpoint the backup covers missing; %d logged twice", lost, len(before), coveredLost, covered, twice)
	}

	// The restored server's tally is a clean replay's of the same records.
	clean := startElection(t, filepath.Join(dir, "clean"), units, devs, true)
	defer clean.Close()
	for len(got) > 0 {
		n := min(len(got), 500)
		if _, _, err := clean.Store().Push(ctx(t), testElection, got[:n]); err != nil {
			t.Fatal(err)
		}
		got = got[n:]
	}
	want, _, err := clean.Store().Tally(ctx(t), testElection)
	if err != nil {
		t.Fatal(err)
	}
	have, _, err := rs.Store().Tally(ctx(t), testElection)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have.CanonicalJSON(), want.CanonicalJSON()) {
		t.Errorf("restored tally differs from a clean replay of its records:\n got %s\nwant %s", have.CanonicalJSON(), want.CanonicalJSON())
	}
	if have.UnitsCounted == 0 {
		t.Error("the restored tally counts no unit")
	}

	// The restored file passes the offline check.
	if err := rs.Close(); err != nil {
		t.Fatal(err)
	}
	stdout.Reset()
	if code := tallyd.Main(ctx(t), []string{"check", "--data", restored}, &stdout, &stderr); code != 0 {
		t.Errorf("tallyd check of the restored folder: exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
}

func copyTo(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
