package ballotlog_test

import (
	"math"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// TestMaxEntryBytes: an entry about the largest record the server takes,
// with every other field at its largest, is within MaxEntryBytes, and an
// entry of MaxEntryBytes fits one StreamLogEntriesResponse.
func TestMaxEntryBytes(t *testing.T) {
	var flags []doorstepv1.RecordFlag
	for v := range doorstepv1.RecordFlag_name {
		flags = append(flags, doorstepv1.RecordFlag(v))
	}
	offset := int64(math.MinInt64)
	largest := &doorstepv1.LogEntry{
		Record: &doorstepv1.SignedRecord{Body: make([]byte, signed.MaxCommitteeBodyBytes), Signature: make([]byte, 64)},
		Result: &doorstepv1.RecordResult{
			RecordId: "01a1f7f8-33e8-7320-95b6-00a9f5e02e02",
			Status:   doorstepv1.RecordStatus(math.MaxInt32),
			Reason:   doorstepv1.ReasonCode(math.MaxInt32),
			// Messages quote identifiers and short texts; this is four
			// times the longest text any field may hold.
			Message:     strings.Repeat("字", 4*election.MaxTextLen/3),
			Flags:       flags,
			ReceiptCode: "XXXXX-XXXXX",
			Replayed:    true,
			LogIndex:    math.MaxUint64,
			Refused:     true,
		},
		Received:       timestamppb.New(time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)),
		ElectionId:     strings.Repeat("e", election.MaxIDLen),
		DeviceOffsetMs: &offset,
	}
	b, err := ballotlog.EncodeEntry(largest)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > ballotlog.MaxEntryBytes {
		t.Errorf("the largest entry is %d bytes, over MaxEntryBytes (%d)", len(b), ballotlog.MaxEntryBytes)
	}
	t.Logf("the largest entry is the body and %d bytes; the margin is %d", len(b)-signed.MaxCommitteeBodyBytes, ballotlog.EntryMargin)

	resp := &doorstepv1.StreamLogEntriesResponse{Index: math.MaxUint64, Entry: make([]byte, ballotlog.MaxEntryBytes)}
	if n := proto.Size(resp); n > signed.MaxMessageBytes {
		t.Errorf("a response with an entry of MaxEntryBytes is %d bytes, over the message limit (%d)", n, signed.MaxMessageBytes)
	}
}
