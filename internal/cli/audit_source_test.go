package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
)

// breakStep is one StreamLogEntries call of a brokenLog: send entries
// from the request's start, then end with err (nil: send to the end).
type breakStep struct {
	send int
	err  error
}

// brokenLog serves a log of entries "entry i" whose streams break as its
// script says, one step a call; calls past the script are served whole.
type brokenLog struct {
	doorstepv1.UnimplementedAuditServiceServer
	mu     sync.Mutex
	script []breakStep
	starts []uint64
}

func (b *brokenLog) StreamLogEntries(req *doorstepv1.StreamLogEntriesRequest, st grpc.ServerStreamingServer[doorstepv1.StreamLogEntriesResponse]) error {
	b.mu.Lock()
	b.starts = append(b.starts, req.GetStart())
	step := breakStep{send: int(req.GetEnd() - req.GetStart())}
	if len(b.script) > 0 {
		step, b.script = b.script[0], b.script[1:]
	}
	b.mu.Unlock()
	for i := req.GetStart(); i < req.GetEnd() && i < req.GetStart()+uint64(step.send); i++ {
		if err := st.Send(&doorstepv1.StreamLogEntriesResponse{Index: i, Entry: fmt.Appendf(nil, "entry %d", i)}); err != nil {
			return err
		}
	}
	return step.err
}

func (b *brokenLog) callStarts() []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.starts)
}

func TestAuditSourceResumes(t *testing.T) {
	const n = 10
	unavailable := status.Error(codes.Unavailable, "the link dropped")
	errStop := errors.New("the disk is full")
	tests := []struct {
		name       string
		script     []breakStep
		fnErrAt    int64 // fn fails at this entry; -1 never
		wantCode   codes.Code
		wantErr    error
		wantStarts []uint64
	}{
		{"dropped link, resumed after the last entry", []breakStep{{3, unavailable}, {4, unavailable}}, -1, codes.OK, nil, []uint64{0, 3, 7}},
		{"aborted by the server, resumed", []breakStep{{0, status.Error(codes.Aborted, "conflict")}}, -1, codes.OK, nil, []uint64{0, 0}},
		{"server busy, resumed", []breakStep{{5, status.Error(codes.ResourceExhausted, "busy")}}, -1, codes.OK, nil, []uint64{0, 5}},
		{"refused, not resumed", []breakStep{{2, status.Error(codes.PermissionDenied, "not the committee")}}, -1, codes.PermissionDenied, nil, []uint64{0}},
		{"retries bounded without progress", []breakStep{{0, status.Error(codes.Internal, "bug")}, {0, status.Error(codes.Internal, "bug")}, {0, status.Error(codes.Internal, "bug")}}, -1, codes.Internal, nil, []uint64{0, 0, 0}},
		{"progress restores the retries", []breakStep{{0, status.Error(codes.Internal, "bug")}, {0, status.Error(codes.Internal, "bug")}, {1, unavailable}, {0, status.Error(codes.Internal, "bug")}}, -1, codes.OK, nil, []uint64{0, 0, 0, 1, 1}},
		{"this machine's own error, not resumed", nil, 4, codes.Unknown, errStop, []uint64{0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &brokenLog{script: tt.script}
			src := serveAuditSource(t, log)
			var got []string
			err := src.LogEntries(context.Background(), 0, n, func(idx int64, entry []byte) error {
				if idx == tt.fnErrAt {
					return errStop
				}
				if want := fmt.Sprintf("entry %d", idx); string(entry) != want || int64(len(got)) != idx {
					t.Errorf("entry %d = %q after %d entries; want %q in order", idx, entry, len(got), want)
				}
				got = append(got, string(entry))
				return nil
			})
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v; want %v", err, tt.wantErr)
				}
			case status.Code(err) != tt.wantCode:
				t.Fatalf("err = %v; want code %v", err, tt.wantCode)
			}
			if tt.wantCode == codes.OK && tt.wantErr == nil && len(got) != n {
				t.Errorf("got %d entries; want %d", len(got), n)
			}
			if starts := log.callStarts(); !slices.Equal(starts, tt.wantStarts) {
				t.Errorf("streams started at %v; want %v", starts, tt.wantStarts)
			}
		})
	}
}

// serveAuditSource runs log on a loopback port until the test ends and
// returns an auditSource of it that resumes twice in a row at most.
func serveAuditSource(t *testing.T, log *brokenLog) *auditSource {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	doorstepv1.RegisterAuditServiceServer(gs, log)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	conn, err := client.New(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		<-done
	})
	return &auditSource{
		audit:         doorstepv1.NewAuditServiceClient(conn),
		electionID:    "e",
		timeout:       10 * time.Second,
		streamTimeout: time.Minute,
		retries:       2,
		resumeWait:    time.Millisecond,
	}
}
