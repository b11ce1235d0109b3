package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
	"github.com/doorstep-vote/doorstep/internal/tallyd/tallydtest"
)

const eid = tallydtest.ElectionID

func callCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// auditClient connects to srv; with a key, every call is signed as author.
func auditClient(t *testing.T, srv *tallyd.Server, clk *tallydtest.Clock, author string, key ed25519.PrivateKey) doorstepv1.AuditServiceClient {
	t.Helper()
	var opts []grpc.DialOption
	if key != nil {
		opts = append(opts, grpc.WithDefaultCallOptions((&callauth.Signer{ElectionID: eid, KeyID: author, Key: key, Now: clk.Now}).CallOption()))
	}
	conn, err := srv.Client().New(srv.Addr(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return doorstepv1.NewAuditServiceClient(conn)
}

func committeeClient(t *testing.T, run *tallydtest.Run) doorstepv1.AuditServiceClient {
	return auditClient(t, run.Server, run.Clock, election.CommitteeAuthor, tallydtest.CommitteeKey())
}

// checkpoint gets and verifies the current checkpoint.
func checkpoint(t *testing.T, c doorstepv1.AuditServiceClient) (*doorstepv1.Checkpoint, tlog.Tree, string) {
	t.Helper()
	resp, err := c.GetCheckpoint(callCtx(t), &doorstepv1.GetCheckpointRequest{ElectionId: eid})
	if err != nil {
		t.Fatalf("GetCheckpoint: %v", err)
	}
	tree, err := ballotlog.VerifyCheckpoint(resp.GetCheckpoint(), resp.GetVerifierKey())
	if err != nil {
		t.Fatalf("checkpoint does not verify with the key the server gave: %v", err)
	}
	return resp.GetCheckpoint(), tree, resp.GetVerifierKey()
}

// streamAll reads entries [start, end) and checks their numbering.
func streamAll(t *testing.T, c doorstepv1.AuditServiceClient, start, end uint64) ([][]byte, error) {
	t.Helper()
	st, err := c.StreamLogEntries(callCtx(t), &doorstepv1.StreamLogEntriesRequest{ElectionId: eid, Start: start, End: end})
	if err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		if m.GetIndex() != start+uint64(len(out)) {
			t.Fatalf("entry numbered %d where %d belongs", m.GetIndex(), start+uint64(len(out)))
		}
		out = append(out, m.GetEntry())
	}
}

func proofOf(t *testing.T, hs [][]byte) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(hs))
	for i, h := range hs {
		if len(h) != tlog.HashSize {
			t.Fatalf("proof hash of %d bytes", len(h))
		}
		copy(out[i][:], h)
	}
	return out
}

func TestAuditAuthorization(t *testing.T) {
	run := tallydtest.Start(t, filepath.Join(t.TempDir(), "data"))
	device := run.Devices[0]
	// The checkpoint is public; the whole log is the committee's and
	// granted auditors' (the role table's own test covers every cell).
	tests := []struct {
		name       string
		client     doorstepv1.AuditServiceClient
		checkpoint codes.Code
		stream     codes.Code
	}{
		{"unsigned", auditClient(t, run.Server, run.Clock, "", nil), codes.OK, codes.Unauthenticated},
		{"device", auditClient(t, run.Server, run.Clock, device.ID, device.Key), codes.OK, codes.PermissionDenied},
		{"committee", committeeClient(t, run), codes.OK, codes.OK},
		{"stranger key", auditClient(t, run.Server, run.Clock, device.ID, signedtest.NewKey("stranger")), codes.OK, codes.Unauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.client.GetCheckpoint(callCtx(t), &doorstepv1.GetCheckpointRequest{ElectionId: eid})
			if status.Code(err) != tt.checkpoint {
				t.Errorf("GetCheckpoint: %v; want %v", err, tt.checkpoint)
			}
			_, err = streamAll(t, tt.client, 0, 0)
			if status.Code(err) != tt.stream {
				t.Errorf("StreamLogEntries: %v; want %v", err, tt.stream)
			}
		})
	}
	t.Run("signed for another election", func(t *testing.T) {
		c := committeeClient(t, run)
		st, err := c.StreamLogEntries(callCtx(t), &doorstepv1.StreamLogEntriesRequest{ElectionId: "other"})
		if err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.PermissionDenied {
			t.Errorf("StreamLogEntries of another election: %v; want PermissionDenied", err)
		}
	})
}

func TestStreamAndProofs(t *testing.T) {
	run := tallydtest.Start(t, filepath.Join(t.TempDir(), "data"))
	c := committeeClient(t, run)
	_, tree, _ := checkpoint(t, c)
	entries, err := streamAll(t, c, 0, 0)
	if err != nil {
		t.Fatalf("stream: %v", err)
	}
	if int64(len(entries)) != tree.N {
		t.Fatalf("streamed %d entries; the checkpoint has %d", len(entries), tree.N)
	}
	var b ballotlog.Builder
	for _, e := range entries {
		if _, err := b.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if root, _ := b.TreeHash(tree.N); root != tree.Hash {
		t.Fatalf("streamed entries have root %v; the checkpoint says %v", root, tree.Hash)
	}

	t.Run("ranges", func(t *testing.T) {
		part, err := streamAll(t, c, 3, 7)
		if err != nil || len(part) != 4 || !bytes.Equal(part[0], entries[3]) || !bytes.Equal(part[3], entries[6]) {
			t.Errorf("entries 3 to 7: %d entries, %v", len(part), err)
		}
		for _, r := range [][2]uint64{{0, uint64(tree.N) + 1}, {5, 3}, {1 << 63, 0}} {
			if _, err := streamAll(t, c, r[0], r[1]); status.Code(err) != codes.InvalidArgument {
				t.Errorf("entries %d to %d: %v; want InvalidArgument", r[0], r[1], err)
			}
		}
	})
	t.Run("inclusion", func(t *testing.T) {
		for _, i := range []int64{0, 1, tree.N / 2, tree.N - 1} {
			resp, err := c.GetInclusionProof(callCtx(t), &doorstepv1.GetInclusionProofRequest{ElectionId: eid, Index: uint64(i), TreeSize: uint64(tree.N)})
			if err != nil {
				t.Fatalf("GetInclusionProof(%d): %v", i, err)
			}
			if err := ballotlog.CheckInclusion(entries[i], i, tree, proofOf(t, resp.GetProof())); err != nil {
				t.Errorf("entry %d: %v", i, err)
			}
			if err := ballotlog.CheckInclusion(entries[(i+1)%tree.N], i, tree, proofOf(t, resp.GetProof())); err == nil {
				t.Errorf("entry %d's proof also proves another entry", i)
			}
		}
		if _, err := c.GetInclusionProof(callCtx(t), &doorstepv1.GetInclusionProofRequest{ElectionId: eid, Index: uint64(tree.N)}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("proof past the end: %v; want InvalidArgument", err)
		}
	})
	t.Run("consistency", func(t *testing.T) {
		for _, old := range []int64{1, 5, tree.N} {
			resp, err := c.GetConsistencyProof(callCtx(t), &doorstepv1.GetConsistencyProofRequest{ElectionId: eid, OldSize: uint64(old), NewSize: uint64(tree.N)})
			if err != nil {
				t.Fatalf("GetConsistencyProof(%d): %v", old, err)
			}
			oldRoot, _ := b.TreeHash(old)
			if err := ballotlog.CheckConsistency(tlog.Tree{N: old, Hash: oldRoot}, tree, proofOf(t, resp.GetProof())); err != nil {
				t.Errorf("from %d: %v", old, err)
			}
		}
		if _, err := c.GetConsistencyProof(callCtx(t), &doorstepv1.GetConsistencyProofRequest{ElectionId: eid, OldSize: 9, NewSize: 4}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("sizes out of order: %v; want InvalidArgument", err)
		}
	})
}

func TestLookupReceipt(t *testing.T) {
	run := tallydtest.Start(t, filepath.Join(t.TempDir(), "data"))
	public := auditClient(t, run.Server, run.Clock, "", nil)
	entries, err := streamAll(t, committeeClient(t, run), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	code := func(name string) string {
		sr := run.Records[name]
		return ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature())
	}
	// Of the two identical ballots of 10-1-101, the lower record id counts.
	counted, included := "invalid-board", "double"
	if signedtest.RecordID(t, run.Records["double"]) < signedtest.RecordID(t, run.Records["invalid-board"]) {
		counted, included = included, counted
	}
	tests := []struct {
		name, record, code, unit string
		want                     doorstepv1.ReceiptStatus
		wantUnit                 string
	}{
		{"counted", "counted", code("counted"), "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED, "1-1-101"},
		{"counted, typed loosely", "counted", " " + lowerO(code("counted")) + " ", "1-1-101", doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED, "1-1-101"},
		{"replaced", "replaced", code("replaced"), "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_SUPERSEDED, "1-1-102"},
		{"replacement", "replacement", code("replacement"), "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED, "1-1-102"},
		{"contest lost", "contest-x", code("contest-x"), "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED, "10-1-102"},
		{"contest settled for it", "contest-y", code("contest-y"), "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED, "10-1-102"},
		{"double visit counted", counted, code(counted), "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED, "10-1-101"},
		{"double visit copy", included, code(included), "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_INCLUDED, "10-1-101"},
		{"rejected", "unknown-unit", code("unknown-unit"), "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_REJECTED, "9-9-999"},
		{"other unit", "", code("counted"), "1-1-102", doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND, ""},
		{"unknown code", "", "00000-00000", "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := public.LookupReceipt(callCtx(t), &doorstepv1.LookupReceiptRequest{ElectionId: eid, ReceiptCode: tt.code, UnitId: tt.unit})
			if err != nil {
				t.Fatalf("LookupReceipt: %v", err)
			}
			if resp.GetStatus() != tt.want || resp.GetUnitId() != tt.wantUnit {
				t.Fatalf("status %v, unit %q; want %v, %q", resp.GetStatus(), resp.GetUnitId(), tt.want, tt.wantUnit)
			}
			tree, err := ballotlog.VerifyCheckpoint(resp.GetCheckpoint(), mustVerifierKey(t, run))
			if err != nil {
				t.Fatalf("checkpoint: %v", err)
			}
			if tt.record == "" {
				if len(resp.GetInclusionProof()) != 0 {
					t.Errorf("a proof for nothing found")
				}
				return
			}
			i := int64(resp.GetLogIndex())
			if err := ballotlog.CheckInclusion(entries[i], i, tree, proofOf(t, resp.GetInclusionProof())); err != nil {
				t.Errorf("inclusion: %v", err)
			}
			e, _ := ballotlog.DecodeEntry(entries[i])
			if !bytes.Equal(e.GetRecord().GetBody(), run.Records[tt.record].GetBody()) {
				t.Errorf("log entry %d is not the ballot looked up", i)
			}
		})
	}
	if _, err := public.LookupReceipt(callCtx(t), &doorstepv1.LookupReceiptRequest{ElectionId: eid, ReceiptCode: "UUUUU-UUUUU"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("malformed code: %v; want InvalidArgument", err)
	}
	if _, err := public.LookupReceipt(callCtx(t), &doorstepv1.LookupReceiptRequest{ElectionId: "no-such", ReceiptCode: "00000-00000"}); status.Code(err) != codes.NotFound {
		t.Errorf("unknown election: %v; want NotFound", err)
	}
}

// lowerO writes a code as a person might: lower case, O for 0, no dash.
func lowerO(code string) string {
	b := []byte(code)
	out := b[:0]
	for _, c := range b {
		switch {
		case c == '-':
			continue
		case c == '0':
			c = 'o'
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

func mustVerifierKey(t *testing.T, run *tallydtest.Run) string {
	t.Helper()
	v, err := run.Store().VerifierKey(eid)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestPublishedTally(t *testing.T) {
	t.Run("closed", func(t *testing.T) {
		run := tallydtest.Start(t, filepath.Join(t.TempDir(), "data"))
		resp, err := auditClient(t, run.Server, run.Clock, "", nil).GetPublishedTally(callCtx(t), &doorstepv1.GetPublishedTallyRequest{ElectionId: eid})
		if err != nil {
			t.Fatalf("GetPublishedTally: %v", err)
		}
		res, cp, err := run.Store().Tally(context.Background(), eid)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(resp.GetTally().GetCanonicalJson(), res.CanonicalJSON()) || resp.GetTally().GetCheckpoint().GetSize() != cp.GetSize() {
			t.Errorf("published tally differs from the store's at the same checkpoint")
		}
		if resp.GetTally().GetUnitsCounted() != 7 {
			t.Errorf("units counted %d, want 7", resp.GetTally().GetUnitsCounted())
		}
	})
	t.Run("open", func(t *testing.T) {
		srv, clk := tallydtest.StartServer(t, filepath.Join(t.TempDir(), "data"))
		committee := signedtest.NewAuthor(eid, election.CommitteeAuthor, "open election", tallydtest.Begin)
		if _, _, err := srv.Store().CreateElection(context.Background(), committee.Committee(t, signedtest.Define(tallydtest.Definition(committee.Public())))); err != nil {
			t.Fatal(err)
		}
		_, err := auditClient(t, srv, clk, "", nil).GetPublishedTally(callCtx(t), &doorstepv1.GetPublishedTallyRequest{ElectionId: eid})
		if status.Code(err) != codes.FailedPrecondition {
			t.Errorf("GetPublishedTally before the close: %v; want FailedPrecondition", err)
		}
	})
}

// TestSplitView is the check devices make on every sync: two servers
// with the same key and election whose logs part after the first entry
// (one history rewritten) are caught by a consistency proof, while a true
// extension passes.
func TestSplitView(t *testing.T) {
	honest := tallydtest.Start(t, filepath.Join(t.TempDir(), "honest"))
	rewritten, clk := tallydtest.StartServer(t, filepath.Join(t.TempDir(), "rewritten"))
	// The same committee signs the same definition at the same time, so
	// both logs start with the same entry; then the roster differs.
	committee := signedtest.NewAuthor(eid, election.CommitteeAuthor, "record-v1 committee", tallydtest.Begin)
	if _, _, err := rewritten.Store().CreateElection(context.Background(), committee.Committee(t, signedtest.Define(tallydtest.Definition(committee.Public())))); err != nil {
		t.Fatal(err)
	}
	rc := auditClient(t, rewritten, clk, election.CommitteeAuthor, tallydtest.CommitteeKey())
	_, seen1, _ := checkpoint(t, rc) // what a device saw from the rewritten server first
	clk.Advance(time.Minute)
	if _, _, err := rewritten.Store().SubmitCommittee(context.Background(), eid, []*doorstepv1.SignedRecord{committee.Committee(t, signedtest.Roster(tallydtest.Units[:3]))}); err != nil {
		t.Fatal(err)
	}
	_, seen2, _ := checkpoint(t, rc)
	if seen1.N != 1 || seen2.N != 2 {
		t.Fatalf("rewritten log sizes %d, %d; want 1, 2", seen1.N, seen2.N)
	}

	hc := committeeClient(t, honest)
	_, latest, vkey := checkpoint(t, hc)
	_, _, rvkey := checkpoint(t, rc)
	if vkey != rvkey {
		t.Fatalf("the two servers have different keys (%s, %s); the test needs one key showing two histories", vkey, rvkey)
	}
	proof := func(c doorstepv1.AuditServiceClient, from, to int64) []tlog.Hash {
		resp, err := c.GetConsistencyProof(callCtx(t), &doorstepv1.GetConsistencyProofRequest{ElectionId: eid, OldSize: uint64(from), NewSize: uint64(to)})
		if err != nil {
			t.Fatalf("GetConsistencyProof(%d, %d): %v", from, to, err)
		}
		return proofOf(t, resp.GetProof())
	}
	if err := ballotlog.CheckConsistency(seen1, seen2, proof(rc, 1, 2)); err != nil {
		t.Errorf("the rewritten server's own growth: %v", err)
	}
	if err := ballotlog.CheckConsistency(seen1, latest, proof(hc, 1, latest.N)); err != nil {
		t.Errorf("the shared first entry: %v", err)
	}
	err := ballotlog.CheckConsistency(seen2, latest, proof(hc, 2, latest.N))
	if !errors.Is(err, ballotlog.ErrSplitView) {
		t.Errorf("two histories under one key: %v; want ErrSplitView", err)
	}
}
