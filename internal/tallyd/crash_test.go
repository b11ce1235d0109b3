package tallyd_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/proctest"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/store"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashDeviceEnv); dir != "" {
		os.Exit(crashDeviceMain(dir)) // a device process of the fault suite
	}
	if args := os.Getenv(watchProcEnv); args != "" {
		os.Exit(watchersMain(args)) // BenchmarkWatch's watchers
	}
	os.Exit(proctest.Main(m))
}

// crashSeed fixes the kill moments and the canvasser's choices.
const crashSeed = 20261120

// tallydProc is the tallyd binary serving one data folder on one fixed
// loopback port, across kills and restarts.
type tallydProc struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	// metrics, when set, is where the process serves its metrics.
	metrics string
	p       *proctest.Proc
}

// freeAddr finds a loopback port nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func (s *tallydProc) start() {
	s.t.Helper()
	args := []string{"-data", s.dir, "-listen", s.addr}
	if s.metrics != "" {
		args = append(args, "-metrics", s.metrics)
	}
	s.p = proctest.Start(s.t, s.bin, proctest.Options{}, args...)
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.p.WaitStderr(c, "tallyd: serving on "+s.addr); err != nil {
		s.t.Fatal(err)
	}
}

// client is how to reach the process: pinned to the TLS certificate it
// made in its data folder on first start.
func (s *tallydProc) client() client.Config {
	s.t.Helper()
	cert, err := servercert.LoadFiles(filepath.Join(s.dir, servercert.CertFile), filepath.Join(s.dir, servercert.KeyFile))
	if err != nil {
		s.t.Fatal(err)
	}
	pin, err := servercert.LeafPin(cert)
	if err != nil {
		s.t.Fatal(err)
	}
	return client.Config{Pin: pin}
}

// operatorToken is the token the process made in its data folder.
func (s *tallydProc) operatorToken() string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(s.dir, tallyd.OperatorTokenFile))
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// kill sends SIGKILL: no shutdown, no flush, nothing.
func (s *tallydProc) kill() {
	s.t.Helper()
	if !s.p.Kill() {
		s.t.Fatalf("tallyd had exited before the kill: %v\n%s", s.p.Wait(context.Background()), s.p.Stderr())
	}
}

// stop shuts tallyd down cleanly, as an operator's Ctrl-C does.
func (s *tallydProc) stop() {
	s.t.Helper()
	if err := s.p.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.p.Wait(c); err != nil {
		s.t.Fatalf("tallyd after SIGTERM: %v\n%s", err, s.p.Stderr())
	}
}

// openStore opens the data folder of a stopped tallyd directly, checks the
// bbolt file, and closes it when the test ends or close is called.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	key, created, err := ballotlog.LoadOrCreateKey(filepath.Join(dir, tallyd.KeyFile), rand.Reader)
	if err != nil || created {
		t.Fatalf("server key: created %v, %v", created, err)
	}
	st, err := store.Open(context.Background(), store.Config{Path: filepath.Join(dir, tallyd.DBFile), Signer: ballotlog.NewKeySigner(key), Origin: tallyd.DefaultOrigin})
	if err != nil {
		t.Fatalf("open the killed server's store: %v", err)
	}
	if err := st.Check(); err != nil {
		t.Errorf("bbolt check of the server's file: %v", err)
	}
	return st
}

// loggedIDs counts the log entries per record id of one author.
func loggedIDs(t *testing.T, st *store.Store, author string) map[string]int {
	t.Helper()
	return loggedByAuthor(t, st)[author]
}

// loggedByAuthor counts the log entries per author and record id, in one
// pass over the log.
func loggedByAuthor(t *testing.T, st *store.Store) map[string]map[string]int {
	t.Helper()
	c := context.Background()
	size, err := st.LogSize(c, testElection)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]int{}
	err = st.LogEntries(c, testElection, 0, size, func(idx int64, b []byte) error {
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
		a := rec.GetAuthorId()
		if out[a] == nil {
			out[a] = map[string]int{}
		}
		out[a][rec.GetRecordId()]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// crashElection is the election the crash test runs: a motion and a
// two-seat candidate election over n units.
type crashElection struct {
	committee *signedtest.Author
	records   []*doorstepv1.SignedRecord // define first, as the server got them
	token     string
	units     []election.Unit
}

// crashUnits are the crash election's n units; a device process makes
// them again from n.
func crashUnits(n int) []election.Unit {
	var units []election.Unit
	for i := range n {
		id := fmt.Sprintf("%d-%d-%d", i/200+1, i/100%2+1, i%100+101)
		owner := "o" + id
		if i%17 == 5 {
			owner = fmt.Sprintf("multi-%d", i/100) // owners with several units
		}
		units = append(units, election.Unit{ID: id, Area: 6500 + int64(i%60)*100, OwnerKey: owner})
	}
	return units
}

func newCrashElection(t *testing.T, n int) *crashElection {
	t.Helper()
	e := &crashElection{committee: signedtest.NewAuthor(testElection, election.CommitteeAuthor, "crash committee", time.Now().Add(-time.Hour)), units: crashUnits(n)}
	def := &doorstepv1.ElectionDefinition{
		ElectionId: testElection, Title: "kill -9", CommitteePublicKey: e.committee.Public(),
		Items: []*doorstepv1.Item{
			{ItemId: "rules", Title: "修订管理规约", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY}}},
			{ItemId: "board", Title: "选举业主委员会委员", Kind: &doorstepv1.Item_Candidates{Candidates: &doorstepv1.CandidateElection{Seats: 2,
				Candidates: []*doorstepv1.Candidate{{CandidateId: "c1", Name: "张伟"}, {CandidateId: "c2", Name: "王芳"}, {CandidateId: "c3", Name: "李娜"}}}}},
		},
		SyncDeadline: timestamppb.New(time.Now().Add(24 * time.Hour)),
	}
	tok, err := enrollcode.NewToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.token = tok
	for _, a := range []*doorstepv1.CommitteeAction{signedtest.Define(def), signedtest.Roster(e.units), signedtest.Open(e.units), signedtest.GrantToken(tok, "phone")} {
		e.records = append(e.records, e.committee.Committee(t, a))
	}
	return e
}

// setUp creates the election on the server at addr.
func (e *crashElection) setUp(t *testing.T, cfg client.Config, addr, operatorToken string) doorstepv1.ElectionServiceClient {
	t.Helper()
	signer := &callauth.Signer{ElectionID: testElection, KeyID: election.CommitteeAuthor, Key: e.committee.Key}
	conn, err := cfg.New(addr, grpc.WithDefaultCallOptions(signer.CallOption()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ec := doorstepv1.NewElectionServiceClient(conn)
	if _, err := ec.CreateElection(ctx(t), &doorstepv1.CreateElectionRequest{Record: e.records[0]}, callauth.Operator(operatorToken)); err != nil {
		t.Fatalf("create election: %v", err)
	}
	resp, err := ec.SubmitCommitteeRecords(ctx(t), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection, Records: e.records[1:]})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.GetResults() {
		if r.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
			t.Fatalf("committee record: %v %s", r.GetStatus(), r.GetMessage())
		}
	}
	return ec
}

// tallyJSON is the live tally's canonical JSON, read with the committee's
// signed call.
func (e *crashElection) tallyJSON(t *testing.T, ec doorstepv1.ElectionServiceClient) []byte {
	t.Helper()
	resp, err := ec.GetTally(ctx(t), &doorstepv1.GetTallyRequest{ElectionId: testElection},
		signedCall(testElection, election.CommitteeAuthor, e.committee.Key, time.Now))
	if err != nil {
		t.Fatalf("tally: %v", err)
	}
	return resp.GetTally().GetCanonicalJson()
}

// canvass records n records on d, pace apart, kicking its background sync
// after each:
// ballots for units in roster order, with every tenth a revision of an
// earlier ballot and every thirteenth a visit with no ballot; once every
// unit has a ballot, revisions only. It ends early with ctx's error.
func canvass(ctx context.Context, d *device.Device, units []election.Unit, n int, pace time.Duration, rng *mathrand.Rand, kick chan<- struct{}) error {
	var voted []string
	next := 0
	for i := range n {
		if err := ctx.Err(); err != nil {
			return err
		}
		choice := []election.Choice{election.ChoiceYes, election.ChoiceNo, election.ChoiceAbstain}[rng.IntN(3)]
		sels := []election.Selection{{ItemID: "rules", Choice: choice}, {ItemID: "board", Candidates: [][]string{{"c1"}, {"c2", "c3"}, {"c1", "c3"}, nil}[rng.IntN(4)]}}
		var err error
		switch {
		case (i%10 == 9 || next >= len(units)) && len(voted) > 0:
			// Every tenth, and every one once each unit has a ballot.
			_, err = d.ReviseBallot(ctx, device.Ballot{UnitID: voted[rng.IntN(len(voted))], Selections: sels, Signer: doorstepv1.SignerKind_SIGNER_KIND_OWNER})
		case i%13 == 12:
			_, err = d.RecordVisit(ctx, device.Visit{UnitID: units[next%len(units)].ID, Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME})
			next++
		default:
			u := units[next%len(units)].ID
			next++
			_, err = d.RecordBallot(ctx, device.Ballot{UnitID: u, Selections: sels, Signer: doorstepv1.SignerKind_SIGNER_KIND_OWNER})
			voted = append(voted, u)
		}
		if err != nil {
			return fmt.Errorf("record %d: %w", i+1, err)
		}
		select {
		case kick <- struct{}{}:
		default:
		}
		// A door takes minutes; here a few milliseconds, so that pushes and
		// kills fall among the records rather than after the last.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pace):
		}
	}
	return nil
}

// acked returns the ids of the device's records the server has answered.
func acked(t *testing.T, d *device.Device) map[string]uint64 {
	t.Helper()
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]uint64{}
	for seq := uint64(1); seq <= uint64(st.Records); seq++ {
		sr, res, err := d.Record(seq)
		if err != nil {
			t.Fatal(err)
		}
		if res == nil {
			continue
		}
		rec, err := signed.Decode(sr.GetBody())
		if err != nil {
			t.Fatal(err)
		}
		out[rec.GetRecordId()] = seq
	}
	return out
}

// waitProgress waits until the device has made at least made records and
// the server has answered more than answered of them (or all there are),
// and returns how many are answered.
func waitProgress(t *testing.T, d *device.Device, made, answered int) int {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := d.Status()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range st.Answered {
			n += c
		}
		if st.Records >= made && (n > answered || (n == st.Records && n > 0)) {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("no progress in a minute: %d records made (waiting for %d), %d answered (waiting for more than %d); last error %q",
				st.Records, made, n, answered, st.LastError)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deviceRecords reads every record of d in chain order.
func deviceRecords(t *testing.T, d *device.Device) []*doorstepv1.SignedRecord {
	t.Helper()
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	var out []*doorstepv1.SignedRecord
	for seq := uint64(1); seq <= uint64(st.Records); seq++ {
		sr, _, err := d.Record(seq)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, sr)
	}
	return out
}

// TestServerKilledMidPush is the fault suite: it kills the tallyd process
// with SIGKILL at random moments while four devices push thousands of
// records to it (one in this process, three device processes of their
// own: see crashDeviceMain), and restarts it on the same folder and port.
// Every kill lands mid-push: before each, every device has had answers
// from the restarted server and none has finished. After each kill,
// everything any device saw acknowledged is in the killed server's file,
// once; the devices resume and finish by themselves; and at the end the
// tally is byte for byte the tally of a fresh server fed the same records
// once. Its last line gives the figures.
func TestServerKilledMidPush(t *testing.T) {
	// The devices canvass until the kills are done, a record every few
	// milliseconds (revising their ballots once each unit has one), and
	// at least spacing records apart here between kills.
	units, kills, procs, spacing := 1000, 20, 3, 40
	if testing.Short() {
		kills = 4
	}
	// Each device canvasses units of its own, so the clean replay does
	// not depend on the order the devices' records arrive in.
	total := (procs + 1) * units
	srv := &tallydProc{t: t, bin: proctest.Build(t, proctest.Tallyd), dir: t.TempDir(), addr: freeAddr(t), metrics: freeAddr(t)}
	srv.start()
	e := newCrashElection(t, total)
	ec := e.setUp(t, srv.client(), srv.addr, srv.operatorToken())
	fp := func() string {
		resp, err := doorstepv1.NewSyncServiceClient(mustDial(t, srv.client(), srv.addr)).GetServerInfo(ctx(t), &doorstepv1.GetServerInfoRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetFingerprint()
	}()
	// One grant per device process: an enrollment code is used once.
	var grants []*doorstepv1.SignedRecord
	for i := range procs {
		grants = append(grants, e.committee.Committee(t, signedtest.Grant(fmt.Sprintf("crash-proc-%d", i), "process")))
	}
	if _, err := ec.SubmitCommitteeRecords(ctx(t), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection, Records: grants}); err != nil {
		t.Fatal(err)
	}

	rng := mathrand.New(mathrand.NewPCG(crashSeed, 1))
	d, err := device.Open(filepath.Join(t.TempDir(), "phone"), device.Options{Sync: device.SyncOptions{
		BatchSize:   25,
		CallTimeout: 5 * time.Second,
		BackoffBase: 20 * time.Millisecond,
		BackoffMax:  300 * time.Millisecond,
		Jitter:      mathrand.New(mathrand.NewPCG(crashSeed, 2)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	enr, err := d.Join(ctx(t), enrollcode.Code{Server: srv.addr, ElectionID: testElection, Token: e.token, Fingerprint: fp, TLS: srv.client().Pin}, "phone")
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	// The device processes join here, then run on their folders.
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	devs := make([]*crashDevice, procs)
	for i := range devs {
		dir := filepath.Join(t.TempDir(), fmt.Sprintf("proc-%d", i))
		pd, err := device.Open(dir, device.Options{})
		if err != nil {
			t.Fatal(err)
		}
		penr, err := pd.Join(ctx(t), enrollcode.Code{Server: srv.addr, ElectionID: testElection, Token: signedtest.Token(fmt.Sprintf("crash-proc-%d", i)), Fingerprint: fp, TLS: srv.client().Pin}, "process")
		if err != nil {
			t.Fatalf("join device process %d: %v", i, err)
		}
		if err := pd.Close(); err != nil {
			t.Fatal(err)
		}
		from := (i + 1) * units
		devs[i] = &crashDevice{dir: dir, id: penr.DeviceID, p: proctest.Start(t, bin, proctest.Options{Env: []string{
			crashDeviceEnv + "=" + dir,
			fmt.Sprintf("%s=%d %d %d %d", crashDeviceArgs, total, from, from+units, crashSeed+uint64(i)+10),
		}})}
	}

	// The canvasser and the background sync run until the test stops them.
	bg, stop := context.WithCancel(context.Background())
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	canvassed := make(chan error, 1)
	var passes, failed atomic.Int64
	wg.Add(2)
	go func() {
		defer wg.Done()
		d.RunSync(bg, 100*time.Millisecond, kick, func(_ device.SyncReport, err error) {
			passes.Add(1)
			if err != nil {
				failed.Add(1)
			}
		})
	}()
	canvassing, endDay := context.WithCancel(bg)
	defer endDay()
	go func() {
		defer wg.Done()
		canvassed <- canvass(canvassing, d, e.units[:units], math.MaxInt, 5*time.Millisecond, mathrand.New(mathrand.NewPCG(crashSeed, 3)), kick)
	}()
	defer func() { stop(); wg.Wait() }()

	authors := []string{enr.DeviceID}
	for _, c := range devs {
		authors = append(authors, c.id)
	}
	made, answered, lost, twice, ackedTotal := 0, 0, 0, 0, 0
	procSeen := make([]int, procs) // acks each process had printed at the last kill
	for k := range kills {
		// The kills are spread over the canvassing, and each comes while
		// every device is pushing: once the canvasser here has made
		// spacing more records and the restarted server has answered
		// something to each device, at a random moment after.
		made += spacing
		waitProgress(t, d, made, answered)
		deadline := time.Now().Add(time.Minute)
		for i, c := range devs {
			for len(c.acked()) <= procSeen[i] {
				if c.p.Exited() {
					t.Fatalf("kill %d: device process %d ended before it: %v\n%s", k+1, i, c.p.Wait(context.Background()), c.p.Stderr())
				}
				if time.Now().After(deadline) {
					t.Fatalf("kill %d: device process %d had no answer from the restarted server in a minute:\n%s", k+1, i, c.p.Stderr())
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		time.Sleep(time.Duration(rng.Int64N(int64(300 * time.Millisecond))))
		before := map[string]map[string]bool{enr.DeviceID: {}}
		for id := range acked(t, d) {
			before[enr.DeviceID][id] = true
		}
		answered = len(before[enr.DeviceID])
		for i, c := range devs {
			before[c.id] = c.acked()
			procSeen[i] = len(before[c.id])
		}
		srv.kill()
		// No device has finished: they canvass until the kills are done.
		for i, c := range devs {
			if c.p.Exited() {
				t.Fatalf("kill %d: device process %d had ended: %v\n%s", k+1, i, c.p.Wait(context.Background()), c.p.Stderr())
			}
		}
		select {
		case err := <-canvassed:
			t.Fatalf("kill %d: the canvassing here had ended: %v", k+1, err)
		default:
		}
		st := openStore(t, srv.dir)
		n, held := 0, 0
		byAuthor := loggedByAuthor(t, st)
		for _, a := range authors {
			logged := byAuthor[a]
			held += len(logged)
			for id, c := range logged {
				if c > 1 {
					twice++
					t.Errorf("kill %d: record %s of %s is in the log %d times", k+1, id, a, c)
				}
			}
			for id := range before[a] {
				n++
				if logged[id] != 1 {
					lost++
					if lost <= 5 {
						t.Errorf("kill %d: record %s of %s was acknowledged before the kill; the server's log holds it %d times", k+1, id, a, logged[id])
					}
				}
			}
		}
		t.Logf("kill %d: %d records acknowledged before it; %d in the killed server's log", k+1, n, held)
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		srv.start()
	}
	// The day is over: the canvassers stop recording, and every device
	// sends what it holds and stops by itself.
	endDay()
	if err := <-canvassed; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("canvassing: %v", err)
	}
	for _, c := range devs {
		if err := c.p.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := d.Status()
		if err != nil {
			t.Fatal(err)
		}
		if st.Pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the device never caught up after the last restart: %d of %d records pending; last error %q", st.Pending, st.Records, st.LastError)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	wg.Wait()
	for i, c := range devs {
		wctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := c.p.Wait(wctx)
		cancel()
		if err != nil || !strings.HasSuffix(c.p.Stdout(), "done\n") {
			t.Fatalf("device process %d did not finish by itself: %v\n%s", i, err, c.p.Stderr())
		}
	}
	t.Logf("seed %d: %d sync passes here, %d of them failed", crashSeed, passes.Load(), failed.Load())
	scraped := scrape(t, srv.metrics)

	if err := d.Check(); err != nil {
		t.Errorf("bbolt check of the device file: %v", err)
	}
	got := e.tallyJSON(t, ec)
	pushed := []pushedBy{{d.PublicKey(), deviceRecords(t, d)}}
	ackedTotal = len(acked(t, d))
	for _, c := range devs {
		pd, err := device.Open(c.dir, device.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := pd.Check(); err != nil {
			t.Errorf("bbolt check of a device process's file: %v", err)
		}
		if st, err := pd.Status(); err != nil || st.Pending != 0 || st.Records < spacing {
			t.Errorf("device process %s: %+v, %v; want records, none pending", c.id, st, err)
		}
		pushed = append(pushed, pushedBy{pd.PublicKey(), deviceRecords(t, pd)})
		ackedTotal += len(acked(t, pd))
		pd.Close()
	}
	srv.stop()
	st := openStore(t, srv.dir)
	all := 0
	byAuthor := loggedByAuthor(t, st)
	for i, a := range authors {
		held := byAuthor[a]
		for j, sr := range pushed[i].recs {
			if id := signedtest.RecordID(t, sr); held[id] != 1 {
				if held[id] > 1 {
					twice++
				} else {
					lost++
				}
				t.Errorf("record %d (%s) of %s is in the server's log %d times; want once", j+1, id, a, held[id])
			}
		}
		if len(held) != len(pushed[i].recs) {
			t.Errorf("the server's log holds %d records of %s; it made %d", len(held), a, len(pushed[i].recs))
		}
		all += len(pushed[i].recs)
	}
	st.Close()

	want := cleanReplay(t, e, pushed)
	if !bytes.Equal(got, want) {
		t.Errorf("tally after %d kills differs from a clean replay of the same %d records:\ngot  %s\nwant %s", kills, all, got, want)
	}
	if v, _ := family(scraped, "doorstep_records_total"); v == 0 {
		t.Errorf("the restarted tallyd's metrics count no records: %v", v)
	}
	figures := fmt.Sprintf("fault suite: %d trials (SIGKILLs of tallyd mid-push, %d devices of which %d processes), %d records acknowledged, %d lost, %d counted twice",
		kills, procs+1, procs, ackedTotal, lost, twice)
	t.Log(figures)
	// Also on stdout, for .ci/run's fault step (go test -v prints it).
	fmt.Println(figures)
}

// pushedBy is one device's records in chain order, with its key.
type pushedBy struct {
	pub  ed25519.PublicKey
	recs []*doorstepv1.SignedRecord
}

// cleanReplay feeds a fresh in-process server the election and the
// devices' records once, device by device in chain order, and returns its
// tally.
func cleanReplay(t *testing.T, e *crashElection, devs []pushedBy) []byte {
	t.Helper()
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// In process, straight to the store: the reference needs no transport.
	st := srv.Store()
	if _, _, err := st.CreateElection(ctx(t), e.records[0]); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.SubmitCommittee(ctx(t), testElection, e.records[1:]); err != nil {
		t.Fatal(err)
	}
	for i, d := range devs {
		if i > 0 {
			// The first uses the election's own grant; the others one each.
			g := e.committee.Committee(t, signedtest.Grant(fmt.Sprintf("replay-%d", i), "replay"))
			if _, _, err := st.SubmitCommittee(ctx(t), testElection, []*doorstepv1.SignedRecord{g}); err != nil {
				t.Fatal(err)
			}
		}
		tok := e.token
		if i > 0 {
			tok = signedtest.Token(fmt.Sprintf("replay-%d", i))
		}
		if _, err := st.Enroll(ctx(t), testElection, tok, d.pub, "phone"); err != nil {
			t.Fatalf("enroll on the clean server: %v", err)
		}
		pushAll(t, st, d.recs)
	}
	res, _, err := st.Tally(ctx(t), testElection)
	if err != nil {
		t.Fatal(err)
	}
	return res.CanonicalJSON()
}

// pushAll pushes recs to st in batches, expecting none rejected.
func pushAll(t *testing.T, st *store.Store, recs []*doorstepv1.SignedRecord) {
	t.Helper()
	for len(recs) > 0 {
		n := min(len(recs), 500)
		results, _, err := st.Push(ctx(t), testElection, recs[:n])
		resp := &doorstepv1.PushRecordsResponse{Results: results}
		if err != nil {
			t.Fatalf("push to the clean server: %v", err)
		}
		for _, r := range resp.GetResults() {
			if r.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
				t.Errorf("the clean server rejected %s: %s", r.GetRecordId(), r.GetMessage())
			}
		}
		recs = recs[n:]
	}
}

func mustDial(t *testing.T, cfg client.Config, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := cfg.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
