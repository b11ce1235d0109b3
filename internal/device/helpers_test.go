package device_test

import (
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

const electionID = "estate-2026"

// testUnits is a small estate: buildings 1, 2 and 10, ids chosen so that
// natural order differs from byte order.
var testUnits = []election.Unit{
	{ID: "1-1-101", Area: 8950, OwnerKey: "o-1-1-101", Building: "1"},
	{ID: "1-1-102", Area: 10225, OwnerKey: "o-1-1-102", Building: "1"},
	{ID: "1-2-201", Area: 7600, OwnerKey: "o-multi", Building: "1"},
	{ID: "2-1-901", Area: 12000, OwnerKey: "o-multi", Building: "2"},
	{ID: "2-1-1001", Area: 13050, OwnerKey: "developer", DeveloperHeld: true, Building: "2"},
	{ID: "10-1-101", Area: 6400, OwnerKey: "o-10-1-101", Building: "10"},
}

// fixture is a real tallyd on loopback with one open election.
type fixture struct {
	t         testing.TB
	dataDir   string
	addr      string
	srv       *tallyd.Server
	committee *signedtest.Author
}

func newFixture(t testing.TB) *fixture { return newFixtureUnits(t, testUnits) }

// newFixtureUnits starts a server whose election has the given roster.
func newFixtureUnits(t testing.TB, units []election.Unit) *fixture {
	t.Helper()
	f := &fixture{t: t, dataDir: t.TempDir(), addr: "127.0.0.1:0"}
	f.start()
	t.Cleanup(f.stop)
	f.committee = signedtest.NewAuthor(electionID, election.CommitteeAuthor, "committee", time.Now().Add(-time.Hour))
	def := &doorstepv1.ElectionDefinition{
		ElectionId:         electionID,
		Title:              "第四届业主委员会换届选举",
		CommitteePublicKey: f.committee.Public(),
		Items: []*doorstepv1.Item{
			{ItemId: "rules", Title: "修订管理规约", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY}}},
			{ItemId: "board", Title: "选举业主委员会委员", Kind: &doorstepv1.Item_Candidates{Candidates: &doorstepv1.CandidateElection{
				Seats: 2,
				Candidates: []*doorstepv1.Candidate{
					{CandidateId: "c1", Name: "张伟"}, {CandidateId: "c2", Name: "王芳"}, {CandidateId: "c3", Name: "李娜"},
				},
			}}},
		},
		ContestPolicy: doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD,
		SyncDeadline:  timestamppb.New(time.Now().Add(30 * 24 * time.Hour)),
		RulesVersion:  "test",
	}
	ec := f.electionClient()
	ctx := context.Background()
	if _, err := ec.CreateElection(ctx, &doorstepv1.CreateElectionRequest{Record: f.committee.Committee(t, signedtest.Define(def))}, callauth.Operator(f.srv.OperatorToken())); err != nil {
		t.Fatalf("create election: %v", err)
	}
	f.submit(signedtest.Roster(units), signedtest.Open(units))
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: f.dataDir, Listen: f.addr})
	if err != nil {
		f.t.Fatalf("start tallyd: %v", err)
	}
	f.srv, f.addr = srv, srv.Addr()
}

func (f *fixture) stop() {
	if f.srv != nil {
		if err := f.srv.Close(); err != nil {
			f.t.Errorf("stop tallyd: %v", err)
		}
		f.srv = nil
	}
}

func (f *fixture) electionClient() doorstepv1.ElectionServiceClient {
	f.t.Helper()
	signer := &callauth.Signer{ElectionID: electionID, KeyID: election.CommitteeAuthor, Key: f.committee.Key}
	conn, err := f.srv.Client().New(f.addr, grpc.WithDefaultCallOptions(signer.CallOption()))
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { conn.Close() })
	return doorstepv1.NewElectionServiceClient(conn)
}

// submit signs committee actions and sends them, failing on any rejection.
func (f *fixture) submit(acts ...*doorstepv1.CommitteeAction) {
	f.t.Helper()
	var recs []*doorstepv1.SignedRecord
	for _, a := range acts {
		recs = append(recs, f.committee.Committee(f.t, a))
	}
	resp, err := f.electionClient().SubmitCommitteeRecords(context.Background(), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: electionID, Records: recs})
	if err != nil {
		f.t.Fatalf("submit committee records: %v", err)
	}
	for _, r := range resp.GetResults() {
		if r.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			f.t.Fatalf("committee record rejected: %v %s", r.GetReason(), r.GetMessage())
		}
	}
}

// code grants a new enrollment and returns its code.
func (f *fixture) code(label string) enrollcode.Code {
	f.t.Helper()
	token, err := enrollcode.NewToken(rand.Reader)
	if err != nil {
		f.t.Fatal(err)
	}
	f.submit(signedtest.GrantToken(token, label))
	return enrollcode.Code{Server: f.addr, ElectionID: electionID, Token: token, Fingerprint: f.srv.Fingerprint(), TLS: f.srv.Pin()}
}

// fastSync keeps retries quick and deterministic in tests.
func fastSync() device.SyncOptions {
	return device.SyncOptions{
		CallTimeout: 5 * time.Second,
		Sleep:       func(ctx context.Context, d time.Duration) error { return ctx.Err() },
	}
}

// openDevice opens a device folder, closing it and checking the bbolt file
// when the test ends.
func openDevice(t testing.TB, dir string, opt device.Options) *device.Device {
	t.Helper()
	if opt.Sync.Sleep == nil {
		opt.Sync = fastSync()
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	d, err := device.Open(dir, opt)
	if err != nil {
		t.Fatalf("open device: %v", err)
	}
	t.Cleanup(func() { closeDevice(t, d) })
	return d
}

// closeDevice checks and closes d; closing twice is harmless.
func closeDevice(t testing.TB, d *device.Device) {
	t.Helper()
	if err := d.Check(); err != nil && !errors.Is(err, device.ErrClosed) {
		t.Errorf("device file check: %v", err)
	}
	if err := d.Close(); err != nil {
		t.Errorf("close device: %v", err)
	}
}

// joined returns a device that has joined the fixture's election.
func (f *fixture) joined(t testing.TB, name string) (*device.Device, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	d := openDevice(t, dir, device.Options{})
	if _, err := d.Join(context.Background(), f.code(name), name); err != nil {
		t.Fatalf("join: %v", err)
	}
	return d, dir
}

func owner(unit string, sels ...election.Selection) device.Ballot {
	return device.Ballot{UnitID: unit, Selections: sels, Signer: doorstepv1.SignerKind_SIGNER_KIND_OWNER}
}

func yes(item string) election.Selection {
	return election.Selection{ItemID: item, Choice: election.ChoiceYes}
}

func no(item string) election.Selection {
	return election.Selection{ItemID: item, Choice: election.ChoiceNo}
}

func pick(item string, c ...string) election.Selection {
	return election.Selection{ItemID: item, Candidates: c}
}

func mustRecord(t testing.TB, d *device.Device, b device.Ballot) device.Saved {
	t.Helper()
	s, err := d.RecordBallot(context.Background(), b)
	if err != nil {
		t.Fatalf("record ballot for %s: %v", b.UnitID, err)
	}
	return s
}

// decode reads back a device record, checking its signature with the
// device's public key.
func decode(t *testing.T, d *device.Device, seq uint64) (*doorstepv1.Record, *doorstepv1.SignedRecord, *doorstepv1.RecordResult) {
	t.Helper()
	sr, res, err := d.Record(seq)
	if err != nil {
		t.Fatalf("record %d: %v", seq, err)
	}
	rec, err := signed.Decode(sr.GetBody())
	if err != nil {
		t.Fatalf("decode record %d: %v", seq, err)
	}
	return rec, sr, res
}

func fileMode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}
