package device_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/proctest"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// These tests run the real doorstep command in child processes and kill
// them with SIGKILL at random moments, seeded so that a failure can be
// replayed, then open what they left on disk.

func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

const crashSeed = 20260817

// manyUnits is a roster of n units in buildings of 200, each with its own
// owner.
func manyUnits(n int) []election.Unit {
	units := make([]election.Unit, n)
	for i := range units {
		id := fmt.Sprintf("%d-%d-%d", i/200+1, i/100%2+1, i%100+101)
		units[i] = election.Unit{ID: id, Area: 7000 + int64(i%50)*100, OwnerKey: "o" + id, Building: fmt.Sprint(i/200 + 1)}
	}
	return units
}

// doorstepEnv keeps child processes out of the user's own configuration.
func doorstepEnv(t *testing.T) proctest.Options {
	home := t.TempDir()
	return proctest.Options{Env: []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home}}
}

// runDoorstep runs doorstep to the end and fails the test unless it exits 0.
func runDoorstep(t *testing.T, bin string, opt proctest.Options, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := proctest.Start(t, bin, opt, args...)
	if err := p.Wait(ctx); err != nil {
		t.Fatalf("doorstep %v: %v\nstdout:\n%s\nstderr:\n%s", args, err, p.Stdout(), p.Stderr())
	}
	return p.Stdout()
}

// walkInput is a canvasser who never stops: it answers the walk's prompts
// with a ballot for every unit offered, choices drawn from a seeded source.
type walkInput struct {
	rng     *rand.Rand
	pending []byte
}

func (w *walkInput) Read(p []byte) (int, error) {
	for len(w.pending) < len(p) {
		rules := []string{"yes", "no", "abstain", ""}[w.rng.IntN(4)]
		board := []string{"1", "2", "3", "1,2", "2,3", ""}[w.rng.IntN(6)]
		// ballot, the motion, the picks, signer, signer's name, comment, save.
		w.pending = fmt.Appendf(w.pending, "b\n%s\n%s\n\n\n\ny\n", rules, board)
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

var walkReceiptRE = regexp.MustCompile(`Saved on this device\. Receipt code: ([0-9A-Z]{5}-[0-9A-Z]{5})`)

// chainFacts is what a device folder holds, read back and checked.
type chainFacts struct {
	head     uint64
	ids      map[string]uint64 // record id → author_seq
	receipts map[string]uint64 // receipt code → author_seq
	ballots  map[string]int    // unit → ballots for it
}

// checkDeviceChain checks every record of d: signed by the device's key,
// numbered 1..head with no gap or reuse, each naming the hash of the one
// before, no record id used twice. It runs bbolt's consistency check too.
func checkDeviceChain(t *testing.T, d *device.Device) chainFacts {
	t.Helper()
	if err := d.Check(); err != nil {
		t.Fatalf("bbolt check of the device file: %v", err)
	}
	st := statusOf(t, d)
	f := chainFacts{head: uint64(st.Records), ids: map[string]uint64{}, receipts: map[string]uint64{}, ballots: map[string]int{}}
	var prev []byte
	for seq := uint64(1); seq <= f.head; seq++ {
		sr, _, err := d.Record(seq)
		if err != nil {
			t.Fatalf("record %d of %d: %v", seq, f.head, err)
		}
		if err := signed.Verify(d.PublicKey(), sr); err != nil {
			t.Fatalf("record %d: %v", seq, err)
		}
		rec, err := signed.Decode(sr.GetBody())
		if err != nil {
			t.Fatalf("record %d: %v", seq, err)
		}
		if rec.GetAuthorSeq() != seq {
			t.Fatalf("record stored at %d says author_seq %d", seq, rec.GetAuthorSeq())
		}
		if !bytes.Equal(rec.GetPrevHash(), prev) {
			t.Fatalf("record %d: prev_hash %x; want %x, the hash of record %d", seq, rec.GetPrevHash(), prev, seq-1)
		}
		h := signed.BodyHash(sr.GetBody())
		prev = h[:]
		if other, dup := f.ids[rec.GetRecordId()]; dup {
			t.Fatalf("records %d and %d share id %s", other, seq, rec.GetRecordId())
		}
		f.ids[rec.GetRecordId()] = seq
		if b := rec.GetBallot(); b != nil {
			f.receipts[ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature())] = seq
			f.ballots[b.GetUnitId()]++
		}
	}
	return f
}

// checkServerHoldsOnce checks that st holds each of the device's records
// exactly once: its chain with no gap, and one log entry per record id,
// none for records the device never made.
func checkServerHoldsOnce(t *testing.T, st *store.Store, deviceID string, f chainFacts) {
	t.Helper()
	ctx := context.Background()
	ds, err := st.DeviceState(ctx, electionID, deviceID)
	if err != nil {
		t.Fatal(err)
	}
	if ds.HighSeq != f.head || ds.MaxSeq > f.head || len(ds.MissingSeqs) != 0 {
		t.Errorf("server holds device records up to %d (max %d, missing %v); want all %d", ds.HighSeq, ds.MaxSeq, ds.MissingSeqs, f.head)
	}
	logged := logCounts(t, st, deviceID)
	for id, seq := range f.ids {
		if n := logged[id]; n != 1 {
			t.Errorf("record %d (%s) is in the server's log %d times; want once", seq, id, n)
		}
	}
	for id, n := range logged {
		if _, ok := f.ids[id]; !ok {
			t.Errorf("the server's log holds %d entries for record %s, which the device never made", n, id)
		}
	}
}

// logCounts counts the server's log entries per record id of one author.
func logCounts(t *testing.T, st *store.Store, author string) map[string]int {
	t.Helper()
	ctx := context.Background()
	size, err := st.LogSize(ctx, electionID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	err = st.LogEntries(ctx, electionID, 0, size, func(idx int64, b []byte) error {
		e, err := ballotlog.DecodeEntry(b)
		if err != nil {
			return fmt.Errorf("log entry %d: %w", idx, err)
		}
		if e.GetRecord() == nil {
			return nil
		}
		rec, err := signed.Decode(e.GetRecord().GetBody())
		if err != nil {
			return fmt.Errorf("log entry %d: %w", idx, err)
		}
		if rec.GetAuthorId() == author {
			out[rec.GetRecordId()]++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCanvasserKilledWhileRecording kills `doorstep canvass walk` again and
// again while it records ballot after ballot into one device folder. Every
// ballot a process reported saved must be on the device afterwards, the
// chain whole, the file sound; a sync then delivers each record once.
func TestCanvasserKilledWhileRecording(t *testing.T) {
	kills, units := 60, 2500
	if testing.Short() {
		kills, units = 15, 800
	}
	bin := proctest.Build(t, proctest.Doorstep)
	f := newFixtureUnits(t, manyUnits(units))
	opt := doorstepEnv(t)
	dir := filepath.Join(t.TempDir(), "phone")
	runDoorstep(t, bin, opt, "canvass", "join", "--device-dir", dir, enrollcode.Encode(f.code("walker")))

	rng := rand.New(rand.NewPCG(crashSeed, 1))
	t.Logf("seed %d", crashSeed)
	reported := map[string]int{} // receipt code → the kill round that printed it
	killed, saving := 0, 0
	for round := range kills {
		walkOpt := opt
		walkOpt.Stdin = &walkInput{rng: rand.New(rand.NewPCG(crashSeed, uint64(round)+2))}
		p := proctest.Start(t, bin, walkOpt, "canvass", "walk", "--device-dir", dir, "--offline")
		// From 0 to 250 ms after exec: some kills land while the process
		// starts or opens the file, most while it commits ballots.
		time.Sleep(time.Duration(rng.Int64N(int64(250 * time.Millisecond))))
		if p.Kill() {
			killed++
		} else if err := p.Wait(context.Background()); err != nil {
			t.Fatalf("round %d: walk failed by itself: %v\nstderr:\n%s", round, err, p.Stderr())
		}
		got := walkReceiptRE.FindAllStringSubmatch(p.Stdout(), -1)
		if len(got) > 0 {
			saving++
		}
		for _, m := range got {
			reported[m[1]] = round
		}
	}
	t.Logf("%d walks killed (%d of them while saving), %d ballots reported saved", killed, saving, len(reported))
	if killed < kills/2 {
		t.Errorf("only %d of %d walks were killed; the rest ran out of units to visit", killed, kills)
	}

	d := openDevice(t, dir, device.Options{})
	facts := checkDeviceChain(t, d)
	for code, round := range reported {
		if _, ok := facts.receipts[code]; !ok {
			t.Errorf("the ballot with receipt %s, reported saved in round %d, is not on the device", code, round)
		}
	}
	for unit, n := range facts.ballots {
		// A ballot and its unit's progress commit together: a walk never
		// offers a unit whose ballot was saved.
		if n != 1 {
			t.Errorf("unit %s has %d ballots; want 1", unit, n)
		}
	}
	if int(facts.head) < len(reported) {
		t.Errorf("the device holds %d records; %d were reported saved", facts.head, len(reported))
	}
	enr, err := d.Enrollment()
	if err != nil {
		t.Fatal(err)
	}
	closeDevice(t, d)

	out := runDoorstep(t, bin, opt, "canvass", "sync", "--device-dir", dir)
	if !bytes.Contains([]byte(out), []byte("Nothing waits to sync.")) {
		t.Errorf("sync output:\n%s", out)
	}
	checkServerHoldsOnce(t, f.srv.Store(), enr.DeviceID, facts)
	res, _, err := f.srv.Store().Tally(context.Background(), electionID)
	if err != nil {
		t.Fatal(err)
	}
	if res.UnitsCounted != len(facts.ballots) || res.UnitsContested != 0 || res.UnitsDouble != 0 {
		t.Errorf("tally counts %d units (%d contested, %d double); the device holds ballots for %d units",
			res.UnitsCounted, res.UnitsContested, res.UnitsDouble, len(facts.ballots))
	}
}

// TestCanvasserKilledWhileSyncing kills `doorstep canvass sync` of a device
// with thousands of queued ballots at random moments, again and again,
// until one sync runs to the end. The server then holds every record once
// and the device has every answer.
func TestCanvasserKilledWhileSyncing(t *testing.T) {
	queued := 3000
	if testing.Short() {
		queued = 600
	}
	bin := proctest.Build(t, proctest.Doorstep)
	units := manyUnits(queued)
	f := newFixtureUnits(t, units)
	d, dir := f.joined(t, "phone")
	saved := make([]device.Saved, 0, queued)
	for i, u := range units {
		b := owner(u.ID, yes("rules"), pick("board", "c1", "c3"))
		if i%3 == 1 {
			b = owner(u.ID, no("rules"), pick("board", "c2"))
		}
		saved = append(saved, mustRecord(t, d, b))
	}
	enr, err := d.Enrollment()
	if err != nil {
		t.Fatal(err)
	}
	closeDevice(t, d) // the sync processes need the folder

	opt := doorstepEnv(t)
	rng := rand.New(rand.NewPCG(crashSeed, 2))
	kills := 0
	var pendingSeen []int
	for round := 0; ; round++ {
		if round == 500 {
			t.Fatalf("no sync finished in %d tries", round)
		}
		p := proctest.Start(t, bin, opt, "canvass", "sync", "--device-dir", dir, "--attempts", "1")
		// The window grows each round, so a sync that makes no progress
		// between kills still finishes in the end.
		window := time.Duration(round+1) * 10 * time.Millisecond
		time.Sleep(time.Duration(rng.Int64N(int64(window))))
		if !p.Kill() {
			if err := p.Wait(context.Background()); err != nil {
				t.Fatalf("sync failed by itself after %d kills: %v\nstdout:\n%s\nstderr:\n%s", kills, err, p.Stdout(), p.Stderr())
			}
			break
		}
		kills++
		d := openDevice(t, dir, device.Options{})
		pendingSeen = append(pendingSeen, statusOf(t, d).Pending)
		closeDevice(t, d)
	}
	t.Logf("seed %d: %d syncs killed; records still waiting after each kill: %v", crashSeed, kills, pendingSeen)

	d = openDevice(t, dir, device.Options{})
	facts := checkDeviceChain(t, d)
	if facts.head != uint64(queued) {
		t.Fatalf("the device holds %d records; %d were saved", facts.head, queued)
	}
	for _, s := range saved {
		if facts.ids[s.RecordID] != s.Seq {
			t.Errorf("saved record %d (%s) is not on the device", s.Seq, s.RecordID)
		}
	}
	st := statusOf(t, d)
	if st.Pending != 0 || st.Answered[doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED] != queued {
		t.Errorf("device after the sync: %d pending, answers %v; want all %d accepted", st.Pending, st.Answered, queued)
	}
	checkServerHoldsOnce(t, f.srv.Store(), enr.DeviceID, facts)
	res, _, err := f.srv.Store().Tally(context.Background(), electionID)
	if err != nil {
		t.Fatal(err)
	}
	if res.UnitsCounted != queued {
		t.Errorf("tally counts %d units; want %d", res.UnitsCounted, queued)
	}
}
