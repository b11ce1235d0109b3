package tallyd_test

import (
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// clock is a settable clock shared by the server and the test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// harness is a real tallyd on loopback with a real bbolt file.
type harness struct {
	t     *testing.T
	dir   string
	clock *clock
	srv   *tallyd.Server
	// authors are the keys the harness signs calls with, by id.
	authors map[string]*signedtest.Author
	first   *signedtest.Author // the first device enrolled
	conn    *grpc.ClientConn
	sync    doorstepv1.SyncServiceClient
	elec    doorstepv1.ElectionServiceClient
}

func startHarness(t *testing.T, dir string, c *clock) *harness {
	t.Helper()
	return startHarnessWith(t, tallyd.Config{DataDir: dir, Listen: "127.0.0.1:0", Now: c.Now}, c)
}

// startHarnessWith starts tallyd with cfg, whose clock is c.
func startHarnessWith(t *testing.T, cfg tallyd.Config, c *clock) *harness {
	t.Helper()
	dir := cfg.DataDir
	srv, err := tallyd.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start tallyd: %v", err)
	}
	conn, err := srv.Client().New(srv.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	h := &harness{t: t, dir: dir, clock: c, srv: srv, conn: conn, authors: map[string]*signedtest.Author{},
		sync: doorstepv1.NewSyncServiceClient(conn), elec: doorstepv1.NewElectionServiceClient(conn)}
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	if h.srv == nil {
		return
	}
	h.conn.Close()
	if err := h.srv.Store().Check(); err != nil {
		h.t.Errorf("bbolt check: %v", err)
	}
	if err := h.srv.Close(); err != nil {
		h.t.Errorf("close: %v", err)
	}
	h.srv = nil
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// signedCall returns a call option that signs a call as author.
func signedCall(electionID, author string, key ed25519.PrivateKey, now func() time.Time) grpc.CallOption {
	return (&callauth.Signer{ElectionID: electionID, KeyID: author, Key: key, Now: now}).CallOption()
}

// as signs a call as a.
func (h *harness) as(a *signedtest.Author) grpc.CallOption {
	return signedCall(testElection, a.ID, a.Key, h.clock.Now)
}

// create creates the election from com's definition record, as the
// operator, and lets the harness sign as com from then on.
func (h *harness) create(t *testing.T, com *signedtest.Author, define *doorstepv1.SignedRecord) *doorstepv1.CreateElectionResponse {
	t.Helper()
	h.authors[com.ID] = com
	resp, err := h.elec.CreateElection(ctx(t), &doorstepv1.CreateElectionRequest{Record: define}, callauth.Operator(h.srv.OperatorToken()))
	if err != nil {
		t.Fatalf("create election: %v", err)
	}
	return resp
}

// author finds the author of the first record that names a known one;
// junk is sent by the first device enrolled.
func (h *harness) author(t *testing.T, recs []*doorstepv1.SignedRecord) *signedtest.Author {
	t.Helper()
	for _, sr := range recs {
		if rec, err := signed.Decode(sr.GetBody()); err == nil && h.authors[rec.GetAuthorId()] != nil && rec.GetAuthorId() != election.CommitteeAuthor {
			return h.authors[rec.GetAuthorId()]
		}
	}
	if h.first == nil {
		t.Fatalf("none of the %d records is by a device the harness enrolled", len(recs))
	}
	return h.first
}

func (h *harness) push(t *testing.T, recs ...*doorstepv1.SignedRecord) []*doorstepv1.RecordResult {
	t.Helper()
	// Devices say their clock at every push; the harness's devices keep
	// the server's time.
	resp, err := h.sync.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: recs, DeviceTime: timestamppb.New(h.clock.Now())}, h.as(h.author(t, recs)))
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	if len(resp.Results) != len(recs) {
		t.Fatalf("push: %d results for %d records", len(resp.Results), len(recs))
	}
	if resp.Checkpoint.GetSize() == 0 || resp.Checkpoint.GetSignedNote() == "" {
		t.Fatalf("push: no checkpoint in answer")
	}
	return resp.Results
}

// logged is the server's decision on a record as the ballot log holds it:
// what the committee and auditors see, where the device that pushed it was
// told less (see server's deviceAnswer).
func (h *harness) logged(t *testing.T, r *doorstepv1.RecordResult) *doorstepv1.RecordResult {
	t.Helper()
	var out *doorstepv1.RecordResult
	err := h.srv.Store().LogEntries(ctx(t), testElection, int64(r.GetLogIndex()), int64(r.GetLogIndex())+1, func(_ int64, b []byte) error {
		e, err := ballotlog.DecodeEntry(b)
		out = e.GetResult()
		return err
	})
	if err != nil {
		t.Fatalf("read log entry %d: %v", r.GetLogIndex(), err)
	}
	return out
}

func (h *harness) committee(t *testing.T, recs ...*doorstepv1.SignedRecord) []*doorstepv1.RecordResult {
	t.Helper()
	resp, err := h.elec.SubmitCommitteeRecords(ctx(t), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection, Records: recs}, h.as(h.authors[election.CommitteeAuthor]))
	if err != nil {
		t.Fatalf("committee: %v", err)
	}
	for i, r := range resp.Results {
		if r.Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
			t.Fatalf("committee record %d: %v %v: %s", i, r.Status, r.Reason, r.Message)
		}
	}
	return resp.Results
}

type want struct {
	status doorstepv1.RecordStatus
	reason doorstepv1.ReasonCode
	flags  []doorstepv1.RecordFlag
}

func check(t *testing.T, name string, got *doorstepv1.RecordResult, w want) {
	t.Helper()
	if got.Status != w.status || got.Reason != w.reason {
		t.Errorf("%s: got %v/%v (%q), want %v/%v", name, got.Status, got.Reason, got.Message, w.status, w.reason)
	}
	if len(got.Flags) != len(w.flags) {
		t.Errorf("%s: got flags %v, want %v", name, got.Flags, w.flags)
		return
	}
	for i := range w.flags {
		if got.Flags[i] != w.flags[i] {
			t.Errorf("%s: got flags %v, want %v", name, got.Flags, w.flags)
		}
	}
	if w.status == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED && got.Message == "" {
		t.Errorf("%s: a rejection needs a message", name)
	}
}

func (h *harness) enroll(t *testing.T, a *signedtest.Author, token string) {
	t.Helper()
	resp, err := h.sync.Enroll(ctx(t), &doorstepv1.EnrollRequest{ElectionId: testElection, EnrollmentToken: signedtest.Token(token), DevicePublicKey: a.Public(), Label: token})
	if err != nil {
		t.Fatalf("enroll %s: %v", token, err)
	}
	if resp.DeviceId != rules.DeviceID(a.Public()) {
		t.Fatalf("enroll: device id %q, want %q", resp.DeviceId, rules.DeviceID(a.Public()))
	}
	a.ID = resp.DeviceId
	h.authors[a.ID] = a
	if h.first == nil {
		h.first = a
	}
}

func (h *harness) tally(t *testing.T, committeeKey ed25519.PrivateKey) *doorstepv1.Tally {
	t.Helper()
	resp, err := h.elec.GetTally(ctx(t), &doorstepv1.GetTallyRequest{ElectionId: testElection}, signedCall(testElection, election.CommitteeAuthor, committeeKey, h.clock.Now))
	if err != nil {
		t.Fatalf("tally: %v", err)
	}
	return resp.Tally
}

// reuseID re-signs a record body with another unit under the same record id.
func reuseID(t *testing.T, a *signedtest.Author, sr *doorstepv1.SignedRecord, unit string) *doorstepv1.SignedRecord {
	t.Helper()
	rec, err := signed.Decode(sr.Body)
	if err != nil {
		t.Fatal(err)
	}
	rec.GetBallot().UnitId = unit
	out, err := signed.Sign(a.Key, rec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func statusCode(err error) codes.Code { return status.Code(err) }
