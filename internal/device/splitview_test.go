package device_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/proto"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/cli"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// splitViewWarning is what a canvasser is told, word for word.
const splitViewWarning = "the server showed a different history of the ballot log than before: do not trust it; tell the election committee"

// serverKey reads the fixture server's identity key from its data folder.
func (f *fixture) serverKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	key, created, err := ballotlog.LoadOrCreateKey(filepath.Join(f.dataDir, tallyd.KeyFile), rand.Reader)
	if err != nil || created {
		t.Fatalf("server key: created %v, %v", created, err)
	}
	return key
}

// twin starts server B: the same identity key and TLS certificate as f's
// server A (copied into its own data folder) and the same committee
// records, so a device pinned to A's keys and A's committee records
// accepts B, but B's ballot log is its own. It returns B and its data
// folder.
func (f *fixture) twin(t *testing.T) (*tallyd.Server, string) {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{tallyd.KeyFile, servercert.KeyFile, servercert.CertFile} {
		b, err := os.ReadFile(filepath.Join(f.dataDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := f.srv.Store().CommitteeRecords(context.Background(), electionID)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := b.Client().New(b.Addr(), grpc.WithDefaultCallOptions((&callauth.Signer{ElectionID: electionID, KeyID: election.CommitteeAuthor, Key: f.committee.Key}).CallOption()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ec := doorstepv1.NewElectionServiceClient(conn)
	if _, err := ec.CreateElection(context.Background(), &doorstepv1.CreateElectionRequest{Record: recs[0]}, callauth.Operator(b.OperatorToken())); err != nil {
		t.Fatalf("B: create election: %v", err)
	}
	if _, err := ec.SubmitCommitteeRecords(context.Background(), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: electionID, Records: recs[1:]}); err != nil {
		t.Fatalf("B: committee records: %v", err)
	}
	return b, dir
}

// enrollOn enrolls a key on a server with an enrollment code's token.
func enrollOn(t *testing.T, addr string, code enrollcode.Code, pub ed25519.PublicKey) string {
	t.Helper()
	conn, err := client.ForPin(code.TLS).New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := doorstepv1.NewSyncServiceClient(conn).Enroll(context.Background(), &doorstepv1.EnrollRequest{
		ElectionId: electionID, EnrollmentToken: code.Token, DevicePublicKey: pub, Label: "twin",
	})
	if err != nil {
		t.Fatalf("enroll on %s: %v", addr, err)
	}
	return resp.GetDeviceId()
}

// pushOn pushes records to a server, failing on any rejection.
func pushOn(t *testing.T, cfg client.Config, addr string, as *signedtest.Author, recs ...*doorstepv1.SignedRecord) {
	t.Helper()
	conn, err := cfg.New(addr, grpc.WithDefaultCallOptions((&callauth.Signer{ElectionID: electionID, KeyID: as.ID, Key: as.Key}).CallOption()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := doorstepv1.NewSyncServiceClient(conn).PushRecords(context.Background(), &doorstepv1.PushRecordsRequest{ElectionId: electionID, Records: recs})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.GetResults() {
		if r.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			t.Fatalf("push to %s: %v %s", addr, r.GetReason(), r.GetMessage())
		}
	}
}

// TestSyncRefusesSplitView: a device syncs with server A, then its address
// leads to server B, which has A's identity key and committee records but
// another ballot log. B cannot prove that its log extends the checkpoint
// the device holds from A: the device refuses to sync, sends nothing,
// keeps A's checkpoint and its records, and says so in sync and status.
func TestSyncRefusesSplitView(t *testing.T) {
	tests := []struct {
		name string
		// ballots is how many ballots another device pushes to B, which
		// sets B's log size against the device's checkpoint from A (8
		// entries: 5 committee records, the device's enrollment, 2 ballots).
		ballots int
	}{
		{"B's log is longer", 6},
		{"B's log is as long", 1},
		{"B's log is shorter", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			phoneCode, otherCode := f.code("phone"), f.code("other")
			dir := filepath.Join(t.TempDir(), "phone")
			d := openDevice(t, dir, device.Options{})
			enr, err := d.Join(context.Background(), phoneCode, "phone")
			if err != nil {
				t.Fatal(err)
			}
			mustRecord(t, d, owner("1-1-101", yes("rules")))
			mustRecord(t, d, owner("1-1-102", no("rules")))
			rep, err := d.Sync(context.Background(), 1)
			if err != nil {
				t.Fatalf("sync with A: %v", err)
			}
			fromA := rep.Checkpoint
			if fromA.GetSize() != 8 {
				t.Fatalf("A's checkpoint has %d entries; this test expects 8", fromA.GetSize())
			}

			b, dirB := f.twin(t)
			enrollOn(t, b.Addr(), phoneCode, d.PublicKey())
			other := signedtest.NewAuthor(electionID, "", "other device", time.Now().Add(-time.Minute))
			if tt.ballots > 0 {
				other.ID = enrollOn(t, b.Addr(), otherCode, other.Public())
				for i := range tt.ballots {
					pushOn(t, b.Client(), b.Addr(), other, other.Ballot(t, testUnits[2+i%4].ID, "", signedtest.Yes("rules")))
				}
			}
			if err := b.Close(); err != nil {
				t.Fatal(err)
			}
			// The device's address now leads to B.
			addrA := f.addr
			f.stop()
			b, err = tallyd.Start(context.Background(), tallyd.Config{DataDir: dirB, Listen: addrA})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })

			mustRecord(t, d, owner("1-2-201", yes("rules")))
			for attempt := range 2 {
				rep, err = d.Sync(context.Background(), 3)
				if !errors.Is(err, device.ErrSplitView) || !errors.Is(err, ballotlog.ErrSplitView) {
					t.Fatalf("sync %d with B: %v; want the split view error", attempt+1, err)
				}
				if rep.Attempts != 1 || rep.Pushed != 0 || rep.Pending != 1 {
					t.Errorf("sync %d with B: %+v; want one attempt, nothing sent, the record kept", attempt+1, rep)
				}
			}
			st := statusOf(t, d)
			if !proto.Equal(st.Checkpoint, fromA) {
				t.Errorf("checkpoint held after the split view = %v; want A's %v", st.Checkpoint, fromA)
			}
			if st.Records != 3 || st.Pending != 1 || !strings.Contains(st.LastError, splitViewWarning) {
				t.Errorf("status = %+v", st)
			}
			ds, err := b.Store().DeviceState(context.Background(), electionID, enr.DeviceID)
			if err != nil {
				t.Fatal(err)
			}
			if ds.HighSeq != 0 || ds.MaxSeq != 0 {
				t.Errorf("B holds the device's records up to %d; the device sent B nothing", ds.MaxSeq)
			}

			// What the canvasser sees.
			closeDevice(t, d)
			code, out, errs := runCLI(t, "canvass", "sync", "--device-dir", dir, "--attempts", "1")
			if code != 1 || !strings.Contains(errs, splitViewWarning) {
				t.Errorf("doorstep canvass sync: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
			}
			code, out, errs = runCLI(t, "canvass", "status", "--device-dir", dir)
			if code != 0 || !strings.Contains(out, splitViewWarning) {
				t.Errorf("doorstep canvass status: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errs)
			}
		})
	}
}

// runCLI runs the doorstep command line in this process.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{
		Stdin:     strings.NewReader(""),
		Stdout:    &out,
		Stderr:    &errb,
		Now:       time.Now,
		Getenv:    func(string) string { return "" },
		ConfigDir: t.TempDir(),
	}
	code = cli.Main(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// TestSyncRefusesBadCheckpoints: checkpoints that the pinned server key did
// not sign for this election's log, or that contradict the one held, stop
// the sync; the answers that came with them are not taken as
// acknowledgements.
func TestSyncRefusesBadCheckpoints(t *testing.T) {
	f := newFixture(t)
	key := f.serverKey(t)
	sign := func(t *testing.T, origin string, k ed25519.PrivateKey, size int64, root tlog.Hash) *doorstepv1.Checkpoint {
		t.Helper()
		s, err := ballotlog.NewSigner(origin, k)
		if err != nil {
			t.Fatal(err)
		}
		cp, err := s.Sign(size, root)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	origin := f.srv.Store().Origin(electionID)
	held := func(t *testing.T, d *device.Device) (int64, tlog.Hash) {
		cp := statusOf(t, d).Checkpoint
		var h tlog.Hash
		copy(h[:], cp.GetRootHash())
		return int64(cp.GetSize()), h
	}
	tests := []struct {
		name string
		// forge returns what the server is made to answer, given the
		// checkpoint it really signed and the one the device holds.
		forge func(t *testing.T, real *doorstepv1.Checkpoint, heldSize int64, heldRoot tlog.Hash) *doorstepv1.Checkpoint
		want  error
	}{
		{"fields differ from the signed text", func(t *testing.T, real *doorstepv1.Checkpoint, _ int64, _ tlog.Hash) *doorstepv1.Checkpoint {
			cp := proto.Clone(real).(*doorstepv1.Checkpoint)
			cp.RootHash[0] ^= 1
			return cp
		}, device.ErrBadCheckpoint},
		{"signed by another key", func(t *testing.T, real *doorstepv1.Checkpoint, _ int64, _ tlog.Hash) *doorstepv1.Checkpoint {
			var root tlog.Hash
			copy(root[:], real.GetRootHash())
			return sign(t, origin, otherKey, int64(real.GetSize()), root)
		}, device.ErrBadCheckpoint},
		{"the server's key, another election's log", func(t *testing.T, real *doorstepv1.Checkpoint, _ int64, _ tlog.Hash) *doorstepv1.Checkpoint {
			var root tlog.Hash
			copy(root[:], real.GetRootHash())
			return sign(t, origin+"-other", key, int64(real.GetSize()), root)
		}, device.ErrBadCheckpoint},
		{"the held size with another root", func(t *testing.T, _ *doorstepv1.Checkpoint, size int64, root tlog.Hash) *doorstepv1.Checkpoint {
			root[0] ^= 1
			return sign(t, origin, key, size, root)
		}, device.ErrSplitView},
		{"fewer entries than the held checkpoint", func(t *testing.T, _ *doorstepv1.Checkpoint, size int64, root tlog.Hash) *doorstepv1.Checkpoint {
			return sign(t, origin, key, size-1, root)
		}, device.ErrSplitView},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startProxy(t, f.srv.Client(), f.addr)
			d, _ := f.joinVia(t, p, device.Options{})
			mustRecord(t, d, owner("1-1-101", yes("rules")))
			if _, err := d.Sync(context.Background(), 1); err != nil {
				t.Fatalf("first sync: %v", err)
			}
			size, root := held(t, d)
			before := statusOf(t, d).Checkpoint

			t.Run("at the start of a sync", func(t *testing.T) {
				p.mu.Lock()
				p.editCheckpoint = func(r *doorstepv1.GetCheckpointResponse) { r.Checkpoint = tt.forge(t, r.GetCheckpoint(), size, root) }
				p.mu.Unlock()
				defer func() { p.mu.Lock(); p.editCheckpoint = nil; p.mu.Unlock() }()
				mustRecord(t, d, owner("1-1-102", yes("rules")))
				rep, err := d.Sync(context.Background(), 3)
				if !errors.Is(err, tt.want) || rep.Attempts != 1 || rep.Pushed != 0 {
					t.Errorf("sync: %v after %d attempts, %d sent; want %v at once and nothing sent", err, rep.Attempts, rep.Pushed, tt.want)
				}
			})
			t.Run("in a push answer", func(t *testing.T) {
				p.mu.Lock()
				p.editPush = func(r *doorstepv1.PushRecordsResponse) { r.Checkpoint = tt.forge(t, r.GetCheckpoint(), size, root) }
				p.mu.Unlock()
				defer func() { p.mu.Lock(); p.editPush = nil; p.mu.Unlock() }()
				rep, err := d.Sync(context.Background(), 3)
				if !errors.Is(err, tt.want) || rep.Attempts != 1 || rep.Answered != 0 || rep.Pending != 1 {
					t.Errorf("sync: %v, %+v; want %v at once and the record still waiting", err, rep, tt.want)
				}
			})
			if st := statusOf(t, d); !proto.Equal(st.Checkpoint, before) {
				t.Errorf("checkpoint held = %v; want the one from before, %v", st.Checkpoint, before)
			}
			// An honest answer again: the record goes through.
			if rep, err := d.Sync(context.Background(), 1); err != nil || rep.Pending != 0 {
				t.Errorf("sync with an honest server: %+v, %v", rep, err)
			}
		})
	}
}

// TestSyncChecksConsistencyAcrossSyncs: over several syncs, with other
// devices' records arriving in between, each new checkpoint is proved to
// extend the held one and replaces it.
func TestSyncChecksConsistencyAcrossSyncs(t *testing.T) {
	f := newFixture(t)
	d, _ := f.joined(t, "phone")
	d2, _ := f.joined(t, "other")
	var sizes []uint64
	for i, u := range []string{"1-1-101", "1-1-102", "1-2-201"} {
		mustRecord(t, d, owner(u, yes("rules")))
		mustRecord(t, d2, owner(testUnits[3+i].ID, no("rules")))
		if _, err := d2.Sync(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		rep, err := d.Sync(context.Background(), 1)
		if err != nil {
			t.Fatalf("sync %d: %v", i+1, err)
		}
		sizes = append(sizes, rep.Checkpoint.GetSize())
		if st := statusOf(t, d); !proto.Equal(st.Checkpoint, rep.Checkpoint) {
			t.Errorf("sync %d: held checkpoint %v; reported %v", i+1, st.Checkpoint, rep.Checkpoint)
		}
	}
	for i := 1; i < len(sizes); i++ {
		if sizes[i] <= sizes[i-1] {
			t.Errorf("checkpoint sizes %v do not grow", sizes)
		}
	}
}
