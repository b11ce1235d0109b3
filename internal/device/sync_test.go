package device_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/flakynet"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// proxy stands between a device and the real server and can misbehave the
// way networks and broken servers do: answer nothing, lose the answer to a
// push the server stored, or change what the server says.
type proxy struct {
	doorstepv1.UnimplementedSyncServiceServer
	up   doorstepv1.SyncServiceClient
	addr string
	// audit passes the device's ballot log checks through to the server.
	audit auditProxy

	mu             sync.Mutex
	down           bool                                     // guarded by mu: every call fails as unreachable
	losePushAnswer int                                      // guarded by mu: this many pushes reach the server but their answers are lost
	editState      func(*doorstepv1.GetDeviceStateResponse) // guarded by mu
	editElection   func(*doorstepv1.GetElectionResponse)    // guarded by mu
	editPush       func(*doorstepv1.PushRecordsResponse)    // guarded by mu
	editCheckpoint func(*doorstepv1.GetCheckpointResponse)  // guarded by mu
	pushes         [][]uint64                               // guarded by mu: author_seqs of each push that reached the server
}

func startProxy(t *testing.T, cfg client.Config, upstream string) *proxy {
	t.Helper()
	conn, err := cfg.New(upstream)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{up: doorstepv1.NewSyncServiceClient(conn), addr: lis.Addr().String()}
	p.audit = auditProxy{p: p, up: doorstepv1.NewAuditServiceClient(conn)}
	gs := grpc.NewServer()
	doorstepv1.RegisterSyncServiceServer(gs, p)
	doorstepv1.RegisterAuditServiceServer(gs, &p.audit)
	done := make(chan struct{})
	go func() { defer close(done); _ = gs.Serve(lis) }()
	t.Cleanup(func() { gs.Stop(); <-done; conn.Close() })
	return p
}

// fwd passes the caller's signature on to the server: it signs the method
// name, which the proxy keeps.
func (p *proxy) fwd(ctx context.Context) (context.Context, error) {
	p.mu.Lock()
	down := p.down
	p.mu.Unlock()
	if down {
		return nil, status.Error(codes.Unavailable, "proxy: the network is down")
	}
	in, _ := metadata.FromIncomingContext(ctx)
	out := metadata.MD{}
	for k, v := range in {
		if len(k) > 9 && k[:9] == "doorstep-" {
			out[k] = v
		}
	}
	return metadata.NewOutgoingContext(ctx, out), nil
}

func (p *proxy) setDown(v bool) { p.mu.Lock(); p.down = v; p.mu.Unlock() }

func (p *proxy) GetServerInfo(ctx context.Context, r *doorstepv1.GetServerInfoRequest) (*doorstepv1.GetServerInfoResponse, error) {
	ctx, err := p.fwd(ctx)
	if err != nil {
		return nil, err
	}
	return p.up.GetServerInfo(ctx, r)
}

func (p *proxy) Enroll(ctx context.Context, r *doorstepv1.EnrollRequest) (*doorstepv1.EnrollResponse, error) {
	ctx, err := p.fwd(ctx)
	if err != nil {
		return nil, err
	}
	return p.up.Enroll(ctx, r)
}

func (p *proxy) GetElection(ctx context.Context, r *doorstepv1.GetElectionRequest) (*doorstepv1.GetElectionResponse, error) {
	ctx, err := p.fwd(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := p.up.GetElection(ctx, r)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil && p.editElection != nil {
		p.editElection(resp)
	}
	return resp, err
}

func (p *proxy) GetDeviceState(ctx context.Context, r *doorstepv1.GetDeviceStateRequest) (*doorstepv1.GetDeviceStateResponse, error) {
	ctx, err := p.fwd(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := p.up.GetDeviceState(ctx, r)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil && p.editState != nil {
		p.editState(resp)
	}
	return resp, err
}

func (p *proxy) PushRecords(ctx context.Context, r *doorstepv1.PushRecordsRequest) (*doorstepv1.PushRecordsResponse, error) {
	ctx, err := p.fwd(ctx)
	if err != nil {
		return nil, err
	}
	var seqs []uint64
	for _, sr := range r.GetRecords() {
		rec, err := signed.Decode(sr.GetBody())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "proxy: %v", err)
		}
		seqs = append(seqs, rec.GetAuthorSeq())
	}
	resp, err := p.up.PushRecords(ctx, r)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pushes = append(p.pushes, seqs)
	if err == nil && p.losePushAnswer > 0 {
		p.losePushAnswer--
		return nil, status.Error(codes.Unavailable, "proxy: the link dropped before the answer arrived")
	}
	if err == nil && p.editPush != nil {
		p.editPush(resp)
	}
	return resp, err
}

// auditProxy forwards the AuditService calls a device makes while it
// syncs. It is a type of its own because the two Unimplemented servers
// cannot be embedded in one struct.
type auditProxy struct {
	doorstepv1.UnimplementedAuditServiceServer
	p  *proxy
	up doorstepv1.AuditServiceClient
}

func (a *auditProxy) GetCheckpoint(ctx context.Context, r *doorstepv1.GetCheckpointRequest) (*doorstepv1.GetCheckpointResponse, error) {
	ctx, err := a.p.fwd(ctx)
	if err != nil {
		return nil, err
	}
	resp, err := a.up.GetCheckpoint(ctx, r)
	a.p.mu.Lock()
	defer a.p.mu.Unlock()
	if err == nil && a.p.editCheckpoint != nil {
		a.p.editCheckpoint(resp)
	}
	return resp, err
}

func (a *auditProxy) GetConsistencyProof(ctx context.Context, r *doorstepv1.GetConsistencyProofRequest) (*doorstepv1.GetConsistencyProofResponse, error) {
	ctx, err := a.p.fwd(ctx)
	if err != nil {
		return nil, err
	}
	return a.up.GetConsistencyProof(ctx, r)
}

func (p *proxy) ListUnitStatus(ctx context.Context, r *doorstepv1.ListUnitStatusRequest) (*doorstepv1.ListUnitStatusResponse, error) {
	ctx, err := p.fwd(ctx)
	if err != nil {
		return nil, err
	}
	return p.up.ListUnitStatus(ctx, r)
}

func (p *proxy) pushed() [][]uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.pushes)
}

// joinVia joins a device through a proxy in front of the fixture's server.
func (f *fixture) joinVia(t *testing.T, p *proxy, opt device.Options) (*device.Device, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "dev")
	d := openDevice(t, dir, opt)
	code := f.code("proxied")
	code.Server, code.TLS = p.addr, servercert.Plaintext // the proxy listens in plaintext on loopback
	if _, err := d.Join(context.Background(), code, "proxied"); err != nil {
		t.Fatalf("join via proxy: %v", err)
	}
	return d, dir
}

func noRetryDial(c client.Config, addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return c.New(addr, append(opts, grpc.WithDisableRetry())...)
}

func statusOf(t *testing.T, d *device.Device) device.Status {
	t.Helper()
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestSyncPushesAndAcks(t *testing.T) {
	f := newFixture(t)
	d, _ := f.joined(t, "v1")
	ctx := context.Background()
	var saved []device.Saved
	for _, u := range []string{"1-1-101", "1-1-102", "2-1-901"} {
		saved = append(saved, mustRecord(t, d, owner(u, yes("rules"), pick("board", "c2"))))
	}
	v, err := d.RecordVisit(ctx, device.Visit{UnitID: "1-2-201", Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_BALLOT_LEFT})
	if err != nil {
		t.Fatal(err)
	}
	saved = append(saved, v)

	rep, err := d.Sync(ctx, 1)
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	if rep.Pushed != 4 || rep.Answered != 4 || rep.Pending != 0 || rep.Statuses[doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED] != 4 {
		t.Errorf("report = %+v; want 4 pushed and accepted, none pending", rep)
	}
	if rep.Checkpoint == nil || rep.Checkpoint.GetSize() == 0 || len(rep.Checkpoint.GetRootHash()) != 32 {
		t.Errorf("checkpoint = %v", rep.Checkpoint)
	}
	for _, s := range saved {
		_, _, res := decode(t, d, s.Seq)
		if res.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED || res.GetRecordId() != s.RecordID {
			t.Errorf("answer for record %d = %v", s.Seq, res)
		}
		if s.Receipt != "" && res.GetReceiptCode() != s.Receipt {
			t.Errorf("record %d: the server's receipt %q differs from the device's %q", s.Seq, res.GetReceiptCode(), s.Receipt)
		}
	}
	st := statusOf(t, d)
	if st.Pending != 0 || st.Answered[doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED] != 4 || st.LastSync.IsZero() || st.LastError != "" ||
		st.Checkpoint.GetSize() != rep.Checkpoint.GetSize() {
		t.Errorf("status after sync = %+v", st)
	}

	// Nothing is left to send.
	rep, err = d.Sync(ctx, 1)
	if err != nil || rep.Pushed != 0 || rep.ServerHighSeq != 4 {
		t.Errorf("second sync: %+v, %v; want nothing pushed, server at 4", rep, err)
	}

	// Another canvasser's ballot reaches this device's walk list.
	d2, _ := f.joined(t, "v2")
	mustRecord(t, d2, owner("10-1-101", no("rules")))
	if _, err := d2.Sync(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Sync(ctx, 1); err != nil {
		t.Fatal(err)
	}
	walk, err := d.Walk(device.Route{Buildings: []string{"10"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(walk) != 1 || walk[0].Progress != device.Done || walk[0].Ballots != 0 {
		t.Errorf("walk of building 10 = %+v; want 10-1-101 done by another device", walk)
	}
}

func TestSyncBatches(t *testing.T) {
	f := newFixture(t)
	p := startProxy(t, f.srv.Client(), f.addr)
	opt := device.Options{Sync: fastSync()}
	opt.Sync.BatchSize = 3
	d, _ := f.joinVia(t, p, opt)
	for i := range 10 {
		if _, err := d.RecordVisit(context.Background(), device.Visit{UnitID: testUnits[i%len(testUnits)].ID, Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := d.Sync(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]uint64{{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10}}
	if got := p.pushed(); !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("pushes = %v; want %v", got, want)
	}
	if rep.Answered != 10 || rep.Pending != 0 {
		t.Errorf("report = %+v", rep)
	}
}

func TestSyncUnreachableKeepsOutbox(t *testing.T) {
	f := newFixture(t)
	var waits []time.Duration
	// Once the server is back, waits are real but short: gRPC reconnects in
	// the background, and a retry that never waits can outrun it.
	var back bool
	opt := device.Options{Dial: noRetryDial, Sync: device.SyncOptions{
		CallTimeout: 2 * time.Second,
		BackoffBase: 100 * time.Millisecond,
		BackoffMax:  300 * time.Millisecond,
		Jitter:      rand.New(rand.NewPCG(1, 2)),
		Sleep: func(ctx context.Context, d time.Duration) error {
			waits = append(waits, d)
			if back {
				time.Sleep(20 * time.Millisecond)
			}
			return ctx.Err()
		},
	}}
	dir := filepath.Join(t.TempDir(), "dev")
	d := openDevice(t, dir, opt)
	if _, err := d.Join(context.Background(), f.code("v"), "v"); err != nil {
		t.Fatal(err)
	}
	addr := f.addr
	f.stop()

	s := mustRecord(t, d, owner("1-1-101", yes("rules")))
	rep, err := d.Sync(context.Background(), 5)
	var u *client.UnreachableError
	if !client.Unreachable(err) || !errors.As(err, &u) {
		t.Fatalf("sync with the server down: %v; want a *client.UnreachableError", err)
	}
	if rep.Attempts != 5 || rep.Pending != 1 || rep.Answered != 0 {
		t.Errorf("report = %+v; want 5 attempts, 1 pending", rep)
	}
	// Waits double from the base up to the ceiling, each a random time
	// between half and all of it.
	ceilings := []time.Duration{100, 200, 300, 300}
	if len(waits) != len(ceilings) {
		t.Fatalf("waited %d times; want %d", len(waits), len(ceilings))
	}
	for i, w := range waits {
		c := ceilings[i] * time.Millisecond
		if w < c/2 || w > c {
			t.Errorf("wait %d = %v; want between %v and %v", i, w, c/2, c)
		}
	}
	if st := statusOf(t, d); st.Pending != 1 || st.LastError == "" || !st.LastSync.IsZero() {
		t.Errorf("status = %+v; want the record pending and the error noted", st)
	}

	// The server comes back at the same address; the next sync delivers.
	f.addr = addr
	f.start()
	back = true
	rep, err = d.Sync(context.Background(), 10)
	if err != nil {
		t.Fatalf("sync after the server came back: %v", err)
	}
	if rep.Pending != 0 || rep.Answered != 1 {
		t.Errorf("report = %+v", rep)
	}
	if _, _, res := decode(t, d, s.Seq); res.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		t.Errorf("answer = %v", res)
	}
	if st := statusOf(t, d); st.LastError != "" || st.LastSync.IsZero() {
		t.Errorf("status after recovery = %+v", st)
	}
}

func TestBackoffIsDeterministicWithSeed(t *testing.T) {
	f := newFixture(t)
	run := func() []time.Duration {
		var waits []time.Duration
		opt := device.Options{Dial: noRetryDial, Sync: device.SyncOptions{
			Jitter: rand.New(rand.NewPCG(7, 7)),
			Sleep:  func(ctx context.Context, d time.Duration) error { waits = append(waits, d); return nil },
		}}
		p := startProxy(t, f.srv.Client(), f.addr)
		d, _ := f.joinVia(t, p, opt)
		p.setDown(true)
		if _, err := d.Sync(context.Background(), 4); !client.Unreachable(err) {
			t.Fatalf("sync: %v; want unreachable", err)
		}
		return waits
	}
	a, b := run(), run()
	if len(a) != 3 || !slices.Equal(a, b) {
		t.Errorf("waits with one seed: %v and %v; want the same three", a, b)
	}
}

// TestSyncLostAnswer: the server stores a batch but the answer is lost on
// the way back. Nothing leaves the outbox; the next sync sends the records
// again and gets the server's stored answers.
func TestSyncLostAnswer(t *testing.T) {
	f := newFixture(t)
	p := startProxy(t, f.srv.Client(), f.addr)
	d, _ := f.joinVia(t, p, device.Options{Dial: noRetryDial})
	for _, u := range []string{"1-1-101", "1-1-102"} {
		mustRecord(t, d, owner(u, yes("rules")))
	}
	p.mu.Lock()
	p.losePushAnswer = 1
	p.mu.Unlock()
	if _, err := d.Sync(context.Background(), 1); !client.Unreachable(err) {
		t.Fatalf("sync with a lost answer: %v; want unreachable", err)
	}
	if st := statusOf(t, d); st.Pending != 2 {
		t.Fatalf("pending after a lost answer = %d; want 2", st.Pending)
	}
	rep, err := d.Sync(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ServerHighSeq != 2 || rep.Pushed != 2 || rep.Pending != 0 {
		t.Errorf("report = %+v; want the server at 2 and both records resent and answered", rep)
	}
	for seq := uint64(1); seq <= 2; seq++ {
		if _, _, res := decode(t, d, seq); res.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED || !res.GetReplayed() {
			t.Errorf("answer %d = %v; want the stored answer, replayed", seq, res)
		}
	}
}

// TestSyncResendsWhatServerLost: a server restored from an old backup
// holds less than it once answered for; the device sends it again.
func TestSyncResendsWhatServerLost(t *testing.T) {
	f := newFixture(t)
	p := startProxy(t, f.srv.Client(), f.addr)
	d, _ := f.joinVia(t, p, device.Options{})
	for _, u := range []string{"1-1-101", "1-1-102", "2-1-901"} {
		mustRecord(t, d, owner(u, yes("rules")))
	}
	if _, err := d.Sync(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.editState = func(r *doorstepv1.GetDeviceStateResponse) {
		r.HighSeq, r.HighHash, r.MaxSeq = 1, nil, 3
		r.MissingSeqs = []uint64{2}
	}
	p.mu.Unlock()
	before := len(p.pushed())
	rep, err := d.Sync(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	got := p.pushed()[before:]
	if len(got) != 1 || !slices.Equal(got[0], []uint64{2}) || rep.Pending != 0 {
		t.Errorf("pushes = %v, report %+v; want record 2 resent", got, rep)
	}
}

func TestSyncRefusesForkedChain(t *testing.T) {
	tests := []struct {
		name string
		edit func(*doorstepv1.GetDeviceStateResponse)
	}{
		{"other record at the high seq", func(r *doorstepv1.GetDeviceStateResponse) { r.HighHash = bytes.Repeat([]byte{7}, 32) }},
		{"records this device never made", func(r *doorstepv1.GetDeviceStateResponse) { r.MaxSeq = 99 }},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t, f.srv.Client(), f.addr)
			d, _ := f.joinVia(t, p, device.Options{})
			mustRecord(t, d, owner("1-1-101", yes("rules")))
			if _, err := d.Sync(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			mustRecord(t, d, owner("1-1-102", yes("rules")))
			p.mu.Lock()
			p.editState = tt.edit
			p.mu.Unlock()
			rep, err := d.Sync(context.Background(), 5)
			if !errors.Is(err, device.ErrChainFork) {
				t.Fatalf("sync: %v; want ErrChainFork", err)
			}
			if rep.Attempts != 1 || rep.Pending != 1 {
				t.Errorf("report = %+v; want one attempt (no retry) and the record kept", rep)
			}
		})
	}
}

func TestSyncRefusesChangedCommitteeRecords(t *testing.T) {
	tests := []struct {
		name string
		edit func(*doorstepv1.GetElectionResponse)
		want error
	}{
		{"record dropped", func(r *doorstepv1.GetElectionResponse) {
			r.CommitteeRecords = r.CommitteeRecords[:len(r.CommitteeRecords)-1]
		}, device.ErrEquivocation},
		{"signature broken", func(r *doorstepv1.GetElectionResponse) {
			r.CommitteeRecords[1].Signature = bytes.Repeat([]byte{1}, 64)
		}, signed.ErrBadSignature},
	}
	f := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t, f.srv.Client(), f.addr)
			d, _ := f.joinVia(t, p, device.Options{})
			p.mu.Lock()
			p.editElection = tt.edit
			p.mu.Unlock()
			if _, err := d.Sync(context.Background(), 1); !errors.Is(err, tt.want) {
				t.Fatalf("sync: %v; want %v", err, tt.want)
			}
			// What the device had stays.
			if _, roster, err := d.Election(); err != nil || len(roster.Units()) != len(testUnits) {
				t.Errorf("election after a refused refresh: %v, %v", roster, err)
			}
		})
	}
}

func TestRunSyncInBackground(t *testing.T) {
	f := newFixture(t)
	p := startProxy(t, f.srv.Client(), f.addr)
	d, _ := f.joinVia(t, p, device.Options{Dial: noRetryDial})
	p.setDown(true)

	ctx, cancel := context.WithCancel(context.Background())
	kick := make(chan struct{}, 1)
	reports := make(chan error, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.RunSync(ctx, time.Hour, kick, func(rep device.SyncReport, err error) {
			if err == nil && rep.Pending != 0 {
				err = errors.New("records left pending")
			}
			reports <- err
		})
	}()
	defer func() { cancel(); <-done }()

	if err := <-reports; !client.Unreachable(err) {
		t.Fatalf("first background sync: %v; want unreachable", err)
	}
	mustRecord(t, d, owner("1-1-101", yes("rules")))
	p.setDown(false)
	kick <- struct{}{}
	deadline := time.After(20 * time.Second)
	for {
		select {
		case err := <-reports:
			if err == nil {
				if st := statusOf(t, d); st.Pending != 0 {
					t.Fatalf("pending after a background sync = %d", st.Pending)
				}
				return
			}
		case <-deadline:
			t.Fatal("the background sync never delivered the record")
		}
	}
}

// TestSyncBackoffResetsAfterProgress: on a link that drops every
// connection part way, a sync that got answers before it failed waits the
// shortest backoff again, rather than ever longer as if nothing worked.
func TestSyncBackoffResetsAfterProgress(t *testing.T) {
	f := newFixture(t)
	p, err := flakynet.Listen(f.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	type wait struct {
		d        time.Duration
		progress bool
	}
	var (
		d       *device.Device
		waits   []wait
		pending = -1
	)
	const base = time.Millisecond
	opt := device.SyncOptions{
		BatchSize: 2, CallTimeout: time.Second, BackoffBase: base, BackoffMax: time.Hour,
		Jitter: rand.New(rand.NewPCG(7, 7)),
		Sleep: func(ctx context.Context, w time.Duration) error {
			st, err := d.Status()
			if err != nil {
				return err
			}
			waits = append(waits, wait{w, st.Pending < pending})
			pending = st.Pending
			return ctx.Err()
		},
	}
	dir := filepath.Join(t.TempDir(), "phone")
	d = openDevice(t, dir, device.Options{Sync: opt})
	code := f.code("phone")
	code.Server = p.Addr()
	if _, err := d.Join(context.Background(), code, "phone"); err != nil {
		t.Fatal(err)
	}
	for i := range 24 {
		u := testUnits[i%len(testUnits)].ID
		if _, err := d.RecordVisit(context.Background(), device.Visit{UnitID: u, Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME}); err != nil {
			t.Fatal(err)
		}
	}
	// Reopened, so that its connection is a new one through the chaos.
	closeDevice(t, d)
	p.SetChaos(rand.New(rand.NewPCG(11, 11)), 6<<10)
	d = openDevice(t, dir, device.Options{Sync: opt})
	st, _ := d.Status()
	pending = st.Pending
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := d.Sync(ctx, 0)
	if err != nil {
		t.Fatalf("sync: %v (after %d attempts)", err, rep.Attempts)
	}
	if rep.Pending != 0 {
		t.Fatalf("%d records still pending", rep.Pending)
	}
	progressed := 0
	for i, w := range waits {
		if w.progress {
			progressed++
			if w.d > base {
				t.Errorf("wait %d came after a pass that got answers but is %v, longer than the first step %v", i, w.d, base)
			}
		}
	}
	if progressed == 0 || p.Cuts() == 0 {
		t.Fatalf("the link never dropped a pass part way (%d cuts, %d waits): the test shows nothing", p.Cuts(), len(waits))
	}
	t.Logf("%d attempts, %d cuts, %d waits after progress", rep.Attempts, p.Cuts(), progressed)
}
