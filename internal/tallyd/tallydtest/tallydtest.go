// Package tallydtest runs the small election of the election record's
// test vectors (api/testdata/record-v1) on a real tallyd, deterministically:
// a fixed server key, a fixed clock, signedtest's deterministic authors.
// The record tests regenerate the vectors with it; the audit service and
// CLI tests use it as a realistic closed election. It is for tests only.
package tallydtest

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/store"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// The election's fixed names.
const (
	ElectionID = "estate-2026"
	// Origin is the server's origin; the log's is Origin + "/" + ElectionID.
	Origin = "doorstep.example"
)

// Begin is the clock's starting time.
var Begin = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)

// ServerKey is the tally server's fixed identity key.
func ServerKey() ed25519.PrivateKey {
	return signedtest.NewKey("doorstep record-v1 test vector server")
}

// Units is the roster: three buildings, one owner with two units (owner-wang),
// two unsold units held by the developer.
var Units = []election.Unit{
	{ID: "1-1-101", Area: 8950, OwnerKey: "owner-1-1-101", Building: "1"},
	{ID: "1-1-102", Area: 10225, OwnerKey: "owner-1-1-102", Building: "1"},
	{ID: "1-2-201", Area: 7600, OwnerKey: "owner-wang", Building: "1"},
	{ID: "2-1-901", Area: 12000, OwnerKey: "owner-wang", Building: "2"},
	{ID: "2-1-1001", Area: 13050, OwnerKey: "developer", DeveloperHeld: true, Building: "2"},
	{ID: "2-1-1002", Area: 9900, OwnerKey: "developer", DeveloperHeld: true, Building: "2"},
	{ID: "10-1-101", Area: 6400, OwnerKey: "owner-10-1-101", Building: "10"},
	{ID: "10-1-102", Area: 7100, OwnerKey: "owner-10-1-102", Building: "10"},
}

// Definition is the ballot sheet: two motions (ORDINARY, SPECIAL) and a
// candidate election of 2 seats among 3.
func Definition(committee ed25519.PublicKey) *doorstepv1.ElectionDefinition {
	return signedtest.Definition(ElectionID, committee, Begin.Add(72*time.Hour))
}

// Clock is a settable clock for the server and for signed calls.
type Clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock on.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Run is the election after it closed, its server still serving.
type Run struct {
	Server    *tallyd.Server
	Clock     *Clock
	Committee *signedtest.Author // its chain continues where the election left it
	Devices   []*signedtest.Author
	// Records are the device records by name: "counted" (1-1-101),
	// "replaced" and "replacement" (1-1-102), "split-a" and "split-b"
	// (owner-wang), "developer", "invalid-board" and "double" (identical
	// ballots of 10-1-101), "contest-x" and "contest-y" (10-1-102, settled
	// for y), "visit", "unknown-unit" (rejected).
	Records map[string]*doorstepv1.SignedRecord
}

// Store is the running server's store.
func (r *Run) Store() *store.Store { return r.Server.Store() }

// Start runs the election on a new tallyd in dataDir (listening on a free
// loopback port) and closes it. The server stops when the test ends.
func Start(tb testing.TB, dataDir string) *Run {
	tb.Helper()
	srv, clk := StartServer(tb, dataDir)
	r := &Run{Server: srv, Clock: clk, Records: map[string]*doorstepv1.SignedRecord{},
		Committee: signedtest.NewAuthor(ElectionID, election.CommitteeAuthor, committeeSeed, Begin)}
	ctx := context.Background()
	st := srv.Store()
	if _, _, err := st.CreateElection(ctx, r.Committee.Committee(tb, signedtest.Define(Definition(r.Committee.Public())))); err != nil {
		tb.Fatalf("create election: %v", err)
	}
	r.committee(tb, signedtest.Roster(Units[:5]), signedtest.Roster(Units[5:]), signedtest.Grant("a", "canvasser A"), signedtest.Grant("b", "canvasser B"))
	for _, name := range []string{"a", "b"} {
		key := signedtest.NewKey("record-v1 device " + name)
		id := rules.DeviceID(key.Public().(ed25519.PublicKey))
		clk.Advance(time.Minute)
		if _, err := st.Enroll(ctx, ElectionID, signedtest.Token(name), key.Public().(ed25519.PublicKey), "canvasser "+name); err != nil {
			tb.Fatalf("enroll %s: %v", name, err)
		}
		r.Devices = append(r.Devices, signedtest.NewAuthor(ElectionID, id, "record-v1 device "+name, Begin.Add(time.Hour)))
	}
	r.committee(tb, signedtest.Open(Units))
	a, b := r.Devices[0], r.Devices[1]
	yes, no, abstain, pick := signedtest.Yes, signedtest.No, signedtest.Abstain, signedtest.Pick
	accepted, dup := doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED, doorstepv1.RecordStatus_RECORD_STATUS_DUPLICATE
	contested, rejected := doorstepv1.RecordStatus_RECORD_STATUS_CONTESTED, doorstepv1.RecordStatus_RECORD_STATUS_REJECTED
	r.push(tb, "counted", accepted, a.Ballot(tb, "1-1-101", "", yes("rules"), yes("fund"), pick("board", "c1", "c2")))
	r.push(tb, "replaced", accepted, a.Ballot(tb, "1-1-102", "", no("rules"), abstain("fund"), pick("board", "c1")))
	r.push(tb, "split-a", accepted, a.Ballot(tb, "1-2-201", "", yes("rules"), yes("fund"), pick("board", "c1")))
	r.push(tb, "split-b", accepted, b.Ballot(tb, "2-1-901", "", no("rules"), yes("fund"), pick("board", "c1")))
	r.push(tb, "developer", accepted, b.Ballot(tb, "2-1-1001", "", yes("rules"), no("fund"), pick("board", "c1", "c2")))
	r.push(tb, "invalid-board", accepted, a.Ballot(tb, "10-1-101", "", yes("rules"), yes("fund"), pick("board", "c1", "c2", "c3")))
	r.push(tb, "double", dup, b.Ballot(tb, "10-1-101", "", yes("rules"), yes("fund"), pick("board", "c1", "c2", "c3")))
	r.push(tb, "contest-x", accepted, a.Ballot(tb, "10-1-102", "", yes("rules"), yes("fund"), pick("board", "c2")))
	r.push(tb, "contest-y", contested, b.Ballot(tb, "10-1-102", "", no("rules"), no("fund"), pick("board", "c2")))
	r.push(tb, "visit", accepted, a.Visit(tb, "2-1-1002", doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME))
	r.push(tb, "unknown-unit", rejected, a.Ballot(tb, "9-9-999", "", yes("rules")))
	replaced, err := recordID(r.Records["replaced"])
	if err != nil {
		tb.Fatal(err)
	}
	r.push(tb, "replacement", accepted, a.Ballot(tb, "1-1-102", replaced, yes("rules"), yes("fund"), pick("board", "c1", "c2")))
	y, err := recordID(r.Records["contest-y"])
	if err != nil {
		tb.Fatal(err)
	}
	r.committee(tb, signedtest.SettleUnit("10-1-102", y), signedtest.SettleOwner("owner-wang", "rules", doorstepv1.Choice_CHOICE_YES), signedtest.Close())
	return r
}

// StartServer starts a tallyd in dataDir with the fixed server key and
// origin and a Clock at Begin, listening on a free loopback port. It stops
// when the test ends.
func StartServer(tb testing.TB, dataDir string) (*tallyd.Server, *Clock) {
	tb.Helper()
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dataDir, tallyd.KeyFile), ServerKey(), 0o600); err != nil {
		tb.Fatal(err)
	}
	clk := &Clock{t: Begin}
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: dataDir, Listen: "127.0.0.1:0", Origin: Origin, Now: clk.Now})
	if err != nil {
		tb.Fatalf("start tallyd: %v", err)
	}
	tb.Cleanup(func() {
		if err := srv.Close(); err != nil {
			tb.Errorf("stop tallyd: %v", err)
		}
	})
	return srv, clk
}

func recordID(sr *doorstepv1.SignedRecord) (string, error) {
	rec, err := decodeRecord(sr)
	if err != nil {
		return "", err
	}
	return rec.GetRecordId(), nil
}

// push sends one device record and insists on the answer the scenario
// expects, so the vectors show what they claim to.
func (r *Run) push(tb testing.TB, name string, want doorstepv1.RecordStatus, sr *doorstepv1.SignedRecord) {
	tb.Helper()
	r.Clock.Advance(time.Minute)
	res, _, err := r.Store().Push(context.Background(), ElectionID, []*doorstepv1.SignedRecord{sr})
	if err != nil {
		tb.Fatalf("push %s: %v", name, err)
	}
	if got := res[0].GetStatus(); got != want {
		tb.Fatalf("push %s: status %v (%s), want %v", name, got, res[0].GetMessage(), want)
	}
	r.Records[name] = sr
}

// committee signs and submits committee actions, each accepted.
func (r *Run) committee(tb testing.TB, acts ...*doorstepv1.CommitteeAction) {
	tb.Helper()
	var recs []*doorstepv1.SignedRecord
	for _, a := range acts {
		recs = append(recs, r.Committee.Committee(tb, a))
	}
	r.Clock.Advance(time.Minute)
	res, _, err := r.Store().SubmitCommittee(context.Background(), ElectionID, recs)
	if err != nil {
		tb.Fatalf("committee records: %v", err)
	}
	for _, x := range res {
		if x.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			tb.Fatalf("committee record rejected: %v %s", x.GetReason(), x.GetMessage())
		}
	}
}

func decodeRecord(sr *doorstepv1.SignedRecord) (*doorstepv1.Record, error) {
	return signed.Decode(sr.GetBody())
}

// CommitteeKey is the committee's fixed signing key.
func CommitteeKey() ed25519.PrivateKey { return signedtest.NewKey(committeeSeed) }

const committeeSeed = "record-v1 committee"
