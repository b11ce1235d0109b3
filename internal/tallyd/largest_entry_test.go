package tallyd_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

// rosterOfSize signs, as com's next record, a roster chunk whose body is
// exactly size bytes, and returns it with its units. The units are as
// long as the rules allow, and one last filler unit makes up the size.
func rosterOfSize(t *testing.T, com *signedtest.Author, size int) (*doorstepv1.SignedRecord, []election.Unit) {
	t.Helper()
	pad := func(s string, n int) string { return s + strings.Repeat("x", n-len(s)) }
	unit := func(i int) election.Unit {
		return election.Unit{ID: pad(fmt.Sprintf("u%06d-", i), election.MaxIDLen), Area: 9000,
			OwnerKey: pad(fmt.Sprintf("owner-%06d-", i), election.MaxIDLen), Building: pad("b", election.MaxIDLen/2)}
	}
	elem := func(u election.Unit) int { // a unit's size inside the chunk
		n := proto.Size(rules.UnitsProto([]election.Unit{u})[0])
		return protowire.SizeTag(1) + protowire.SizeBytes(n)
	}
	var units []election.Unit
	sr := com.Next(t, func(r *doorstepv1.Record) {
		chunk := &doorstepv1.RosterChunk{}
		r.Body = &doorstepv1.Record_Committee{Committee: &doorstepv1.CommitteeAction{
			Action: &doorstepv1.CommitteeAction_Roster{Roster: chunk}}}
		per := elem(unit(0))
		n := (size - proto.Size(r)) / per
		for {
			units = units[:0]
			for i := range n {
				units = append(units, unit(i))
			}
			chunk.Units = rules.UnitsProto(units)
			// Past 2 MiB the nested lengths keep their size, so one more
			// unit adds exactly its own size.
			gap := size - proto.Size(r)
			for id := 2; id <= election.MaxIDLen; id++ {
				for o := 1; o <= election.MaxIDLen; o++ {
					f := election.Unit{ID: pad("f", id), Area: 1, OwnerKey: pad("o", o), Building: pad("", election.MaxIDLen)}
					if d := gap - elem(f); d >= 0 && d <= election.MaxIDLen {
						f.Building = pad("", election.MaxIDLen-d)
						if elem(f) == gap {
							units = append(units, f)
							chunk.Units = rules.UnitsProto(units)
							return
						}
					}
				}
			}
			n-- // no filler fits the gap (it is too small, or negative): make room
		}
	})
	if len(sr.GetBody()) != size {
		t.Fatalf("made a body of %d bytes; want %d", len(sr.GetBody()), size)
	}
	return sr, units
}

// recordSource reads an election for audit.Export over gRPC, as
// 'doorstep audit export' does: the full log by calls signed with the
// committee key.
type recordSource struct {
	audit doorstepv1.AuditServiceClient
	sign  grpc.CallOption
	// largest is the size of the largest entry streamed.
	largest int
}

func (s *recordSource) Tally(ctx context.Context) ([]byte, *doorstepv1.Checkpoint, error) {
	resp, err := s.audit.GetPublishedTally(ctx, &doorstepv1.GetPublishedTallyRequest{ElectionId: testElection})
	return resp.GetTally().GetCanonicalJson(), resp.GetTally().GetCheckpoint(), err
}

func (s *recordSource) VerifierKey(ctx context.Context) (string, error) {
	resp, err := s.audit.GetCheckpoint(ctx, &doorstepv1.GetCheckpointRequest{ElectionId: testElection})
	return resp.GetVerifierKey(), err
}

func (s *recordSource) LogEntries(ctx context.Context, start, end int64, fn func(int64, []byte) error) error {
	st, err := s.audit.StreamLogEntries(ctx, &doorstepv1.StreamLogEntriesRequest{ElectionId: testElection, Start: uint64(start), End: uint64(end)}, s.sign)
	if err != nil {
		return err
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		s.largest = max(s.largest, len(m.GetEntry()))
		if err := fn(int64(m.GetIndex()), m.GetEntry()); err != nil {
			return err
		}
	}
}

// TestLargestEntry: the largest entry the server logs, a roster chunk of
// the largest body it takes, goes through every path an entry takes: it
// is submitted over gRPC, streamed to the committee, exported into an
// election record and verified from the folder alone.
func TestLargestEntry(t *testing.T) {
	clk := &clock{t: base}
	h := startHarness(t, t.TempDir(), clk)
	com := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "committee", base.Add(-time.Hour))
	sc := loadScenario(t, com.Public())
	h.create(t, com, com.Committee(t, signedtest.Define(sc.def)))

	// One byte over the limit is refused at the door; the committee's
	// chain goes on as if it had not been sent.
	seq, prev, at := com.Seq, com.Prev, com.Clock
	over, _ := rosterOfSize(t, com, signed.MaxCommitteeBodyBytes+1)
	com.Seq, com.Prev, com.Clock = seq, prev, at
	resp, err := h.elec.SubmitCommitteeRecords(ctx(t), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection, Records: []*doorstepv1.SignedRecord{over}}, h.as(com))
	if err != nil {
		t.Fatal(err)
	}
	if r := resp.GetResults()[0]; r.GetReason() != doorstepv1.ReasonCode_REASON_CODE_TOO_LARGE || !r.GetRefused() {
		t.Fatalf("a body of %d bytes: %v %v refused=%v; want refused as too large", len(over.GetBody()), r.GetStatus(), r.GetReason(), r.GetRefused())
	}

	largest, units := rosterOfSize(t, com, signed.MaxCommitteeBodyBytes)
	h.committee(t, largest)
	src := &recordSource{audit: doorstepv1.NewAuditServiceClient(h.conn), sign: h.as(com)}
	h.committee(t, com.Committee(t, signedtest.Open(units)), com.Committee(t, signedtest.Grant("tok", "canvasser")))

	// A signed record is logged as received, and bytes beside its body
	// and signature (fields SignedRecord does not have) are not covered by
	// the signature: a device could pad its record past the bound, and the
	// log would then hold an entry no one could stream or export. The
	// store refuses to log it.
	dev := signedtest.NewAuthor(testElection, "", "device", base)
	h.enroll(t, dev, "tok")
	padded := dev.Visit(t, units[0].ID, doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME)
	padded.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 15, protowire.BytesType), make([]byte, ballotlog.MaxEntryBytes)))
	size := func() uint64 {
		cp, err := src.audit.GetCheckpoint(ctx(t), &doorstepv1.GetCheckpointRequest{ElectionId: testElection})
		if err != nil {
			t.Fatal(err)
		}
		return cp.GetCheckpoint().GetSize()
	}
	before := size()
	pr, err := h.sync.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: []*doorstepv1.SignedRecord{padded}}, h.as(dev))
	if err == nil && !pr.GetResults()[0].GetRefused() {
		t.Errorf("a record padded to %d bytes: %v; want it refused", proto.Size(padded), pr.GetResults()[0])
	}
	if after := size(); after != before {
		t.Fatalf("the log grew from %d to %d entries with a record padded past the entry bound", before, after)
	}
	// Padding of any size is refused at the door; the same record without
	// it is taken.
	small := proto.Clone(padded).(*doorstepv1.SignedRecord)
	small.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 15, protowire.BytesType), make([]byte, 100)))
	pr, err = h.sync.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: []*doorstepv1.SignedRecord{small}}, h.as(dev))
	if err != nil {
		t.Fatal(err)
	}
	if r := pr.GetResults()[0]; !r.GetRefused() || r.GetReason() != doorstepv1.ReasonCode_REASON_CODE_MALFORMED {
		t.Errorf("a record padded by 100 bytes: %v; want it refused as malformed", r)
	}
	if after := size(); after != before {
		t.Fatalf("the log grew from %d to %d entries with a padded record", before, after)
	}
	clean := &doorstepv1.SignedRecord{Body: padded.GetBody(), Signature: padded.GetSignature()}
	pr, err = h.sync.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: []*doorstepv1.SignedRecord{clean}}, h.as(dev))
	if err != nil {
		t.Fatal(err)
	}
	if r := pr.GetResults()[0]; r.GetRefused() || r.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		t.Errorf("the same record without padding: %v; want it accepted", r)
	}
	h.committee(t, com.Committee(t, signedtest.Close()))

	dir := filepath.Join(t.TempDir(), "record")
	rep, err := audit.Export(ctx(t), src, dir)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("the exported record does not verify: %+v", rep.Discrepancies)
	}
	if src.largest <= signed.MaxCommitteeBodyBytes || src.largest > ballotlog.MaxEntryBytes {
		t.Fatalf("the largest entry streamed is %d bytes; want the %d-byte body's entry, at most %d", src.largest, signed.MaxCommitteeBodyBytes, ballotlog.MaxEntryBytes)
	}
	t.Logf("the largest entry is %d bytes: the body and %d more, of the %d the bound allows", src.largest, src.largest-signed.MaxCommitteeBodyBytes, ballotlog.EntryMargin)
	rep, err = audit.Verify(ctx(t), dir)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("verify: %+v", rep.Discrepancies)
	}
}
