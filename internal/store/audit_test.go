package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// auditStore is an open election whose log holds more entries than one
// read transaction of LogEntries copies (4,096).
func auditStore(t *testing.T) (*store.Store, *signedtest.Author, *signedtest.Author) {
	t.Helper()
	s := openStore(t, t.TempDir())
	com := signedtest.NewAuthor(eid, election.CommitteeAuthor, "audit committee", t0)
	dev := signedtest.NewAuthor(eid, "", "audit device", t0)
	units := []election.Unit{{ID: "1-1-101", Area: 9000, OwnerKey: "a"}, {ID: "1-1-102", Area: 8000, OwnerKey: "b"}}
	setup(t, s, com, units, []*signedtest.Author{dev}, doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD)
	for range 5 {
		batch := make([]*doorstepv1.SignedRecord, store.MaxBatch)
		for i := range batch {
			batch[i] = dev.Visit(t, "1-1-101", doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME)
		}
		if _, _, err := s.Push(context.Background(), eid, batch); err != nil {
			t.Fatal(err)
		}
	}
	return s, com, dev
}

func TestLogEntries(t *testing.T) {
	s, _, _ := auditStore(t)
	ctx := context.Background()
	size, err := s.LogSize(ctx, eid)
	if err != nil || size < 5000 {
		t.Fatalf("log size %d, %v; want over 5000", size, err)
	}
	var b ballotlog.Builder
	err = s.LogEntries(ctx, eid, 0, size, func(idx int64, e []byte) error {
		if idx != b.Size() {
			return fmt.Errorf("entry %d where %d belongs", idx, b.Size())
		}
		_, err := b.Append(e)
		return err
	})
	if err != nil {
		t.Fatalf("LogEntries: %v", err)
	}
	cp, err := s.Checkpoint(ctx, eid)
	if err != nil {
		t.Fatal(err)
	}
	if root, _ := b.TreeHash(size); !bytes.Equal(root[:], cp.GetRootHash()) {
		t.Errorf("entries streamed in chunks have root %x; the checkpoint says %x", root[:], cp.GetRootHash())
	}

	t.Run("entries are copies", func(t *testing.T) {
		var kept [][]byte
		if err := s.LogEntries(ctx, eid, 4090, 4100, func(_ int64, e []byte) error { kept = append(kept, e); return nil }); err != nil {
			t.Fatal(err)
		}
		// Reading more moves bbolt's pages on; kept bytes must not change.
		before := bytes.Clone(kept[0])
		if err := s.LogEntries(ctx, eid, 0, size, func(int64, []byte) error { return nil }); err != nil {
			t.Fatal(err)
		}
		if len(kept) != 10 || !bytes.Equal(kept[0], before) {
			t.Errorf("kept %d entries; first changed: %v", len(kept), !bytes.Equal(kept[0], before))
		}
	})
	t.Run("stops on the callback's error", func(t *testing.T) {
		stop := errors.New("stop")
		n := 0
		err := s.LogEntries(ctx, eid, 0, size, func(int64, []byte) error {
			n++
			if n == 3 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || n != 3 {
			t.Errorf("err %v after %d entries; want stop after 3", err, n)
		}
	})
	t.Run("stops when cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.LogEntries(cctx, eid, 0, size, func(int64, []byte) error { return nil }); !errors.Is(err, context.Canceled) {
			t.Errorf("err %v; want context.Canceled", err)
		}
	})
	for _, r := range [][2]int64{{-1, 3}, {5, 4}, {0, size + 1}} {
		if err := s.LogEntries(ctx, eid, r[0], r[1], func(int64, []byte) error { return nil }); election.ErrorCode(err) != election.CodeInvalid {
			t.Errorf("range %v: %v; want CodeInvalid", r, err)
		}
	}
	if err := s.LogEntries(ctx, "no-such", 0, 0, func(int64, []byte) error { return nil }); election.ErrorCode(err) != election.CodeNotFound {
		t.Errorf("unknown election: %v; want CodeNotFound", err)
	}
}

func TestProofs(t *testing.T) {
	s, _, _ := auditStore(t)
	ctx := context.Background()
	size, _ := s.LogSize(ctx, eid)
	var entries [][]byte
	var b ballotlog.Builder
	if err := s.LogEntries(ctx, eid, 0, size, func(_ int64, e []byte) error {
		entries = append(entries, e)
		_, err := b.Append(e)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tree := func(n int64) tlog.Tree {
		h, err := b.TreeHash(n)
		if err != nil {
			t.Fatal(err)
		}
		return tlog.Tree{N: n, Hash: h}
	}
	for _, c := range []struct{ index, size int64 }{{0, 1}, {0, size}, {4095, 4097}, {size - 1, size}, {17, 300}} {
		p, err := s.InclusionProof(ctx, eid, c.index, c.size)
		if err != nil {
			t.Fatalf("InclusionProof(%d, %d): %v", c.index, c.size, err)
		}
		if err := ballotlog.CheckInclusion(entries[c.index], c.index, tree(c.size), p); err != nil {
			t.Errorf("entry %d in %d: %v", c.index, c.size, err)
		}
	}
	for _, c := range []struct{ old, new int64 }{{0, size}, {1, size}, {4096, size}, {size, size}, {7, 4100}} {
		p, err := s.ConsistencyProof(ctx, eid, c.old, c.new)
		if err != nil {
			t.Fatalf("ConsistencyProof(%d, %d): %v", c.old, c.new, err)
		}
		if err := ballotlog.CheckConsistency(tree(c.old), tree(c.new), p); err != nil {
			t.Errorf("%d to %d: %v", c.old, c.new, err)
		}
	}
	for _, c := range []struct{ index, size int64 }{{0, 0}, {5, 5}, {-1, 3}, {0, size + 1}} {
		if _, err := s.InclusionProof(ctx, eid, c.index, c.size); election.ErrorCode(err) != election.CodeInvalid {
			t.Errorf("InclusionProof(%d, %d): %v; want CodeInvalid", c.index, c.size, err)
		}
	}
	for _, c := range []struct{ old, new int64 }{{5, 4}, {-1, 3}, {0, size + 1}} {
		if _, err := s.ConsistencyProof(ctx, eid, c.old, c.new); election.ErrorCode(err) != election.CodeInvalid {
			t.Errorf("ConsistencyProof(%d, %d): %v; want CodeInvalid", c.old, c.new, err)
		}
	}
}

func TestLookupReceiptAndPublished(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	com := signedtest.NewAuthor(eid, election.CommitteeAuthor, "receipt committee", t0)
	dev := signedtest.NewAuthor(eid, "", "receipt device", t0)
	units := []election.Unit{{ID: "1-1-101", Area: 9000, OwnerKey: "a"}, {ID: "1-1-102", Area: 8000, OwnerKey: "b"}}
	setup(t, s, com, units, []*signedtest.Author{dev}, doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD)
	good := dev.Ballot(t, "1-1-101", "", signedtest.Yes("m"))
	bad := dev.Ballot(t, "1-1-101", "", signedtest.Yes("no-such-item"))
	if _, _, err := s.Push(ctx, eid, []*doorstepv1.SignedRecord{good, bad}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Published(ctx, eid); election.ErrorCode(err) != election.CodeFailedPrecondition {
		t.Errorf("Published before the close: %v; want CodeFailedPrecondition", err)
	}
	tests := []struct {
		name string
		sr   *doorstepv1.SignedRecord
		unit string
		want doorstepv1.ReceiptStatus
	}{
		{"counted", good, "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED},
		{"counted in its unit", good, "1-1-101", doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED},
		{"not in another unit", good, "1-1-102", doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND},
		{"rejected selection", bad, "", doorstepv1.ReceiptStatus_RECEIPT_STATUS_REJECTED},
		{"rejected, in its unit", bad, "1-1-101", doorstepv1.ReceiptStatus_RECEIPT_STATUS_REJECTED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.LookupReceipt(ctx, eid, ballotlog.ReceiptCode(tt.sr.GetBody(), tt.sr.GetSignature()), tt.unit)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != tt.want {
				t.Fatalf("status %v; want %v", r.Status, tt.want)
			}
			if r.Checkpoint == nil {
				t.Fatal("no checkpoint")
			}
			if tt.want == doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND {
				return
			}
			var entry []byte
			if err := s.LogEntries(ctx, eid, r.LogIndex, r.LogIndex+1, func(_ int64, e []byte) error { entry = e; return nil }); err != nil {
				t.Fatal(err)
			}
			e, _ := ballotlog.DecodeEntry(entry)
			if !bytes.Equal(e.GetRecord().GetBody(), tt.sr.GetBody()) {
				t.Errorf("entry %d is not the ballot", r.LogIndex)
			}
			tree := tlog.Tree{N: int64(r.Checkpoint.GetSize())}
			copy(tree.Hash[:], r.Checkpoint.GetRootHash())
			if err := ballotlog.CheckInclusion(entry, r.LogIndex, tree, r.Proof); err != nil {
				t.Errorf("inclusion: %v", err)
			}
		})
	}
	if _, err := s.LookupReceipt(ctx, eid, "not a code", ""); election.ErrorCode(err) != election.CodeInvalid {
		t.Errorf("malformed code: %v; want CodeInvalid", err)
	}
	if _, _, err := s.SubmitCommittee(ctx, eid, []*doorstepv1.SignedRecord{com.Committee(t, signedtest.Close())}); err != nil {
		t.Fatal(err)
	}
	res, cp, err := s.Published(ctx, eid)
	if err != nil {
		t.Fatalf("Published after the close: %v", err)
	}
	if res.UnitsCounted != 1 || cp.GetSize() == 0 {
		t.Errorf("published %d units counted at size %d; want 1 at a real checkpoint", res.UnitsCounted, cp.GetSize())
	}
}
