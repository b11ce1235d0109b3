package server_test

import (
	"context"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
	"github.com/doorstep-vote/doorstep/internal/tallyd/tallydtest"
)

// publicFrom is an unsigned AuditService client whose connections come
// from the loopback address ip, as if from another machine.
func publicFrom(t *testing.T, srv *tallyd.Server, ip string) doorstepv1.AuditServiceClient {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	conn, err := srv.Client().New(srv.Addr(), grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return doorstepv1.NewAuditServiceClient(conn)
}

// TestReceiptLookupLimit: receipt lookups are public but limited per
// address, 20 at once and then 5 a second; another address has its own
// allowance. The server's clock stands still unless the test moves it, so
// the counts are exact.
func TestReceiptLookupLimit(t *testing.T) {
	run := tallydtest.Start(t, filepath.Join(t.TempDir(), "data"))
	sr := run.Records["counted"]
	req := &doorstepv1.LookupReceiptRequest{ElectionId: eid, ReceiptCode: ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature())}
	lookups := func(c doorstepv1.AuditServiceClient, n int) (served int, refused error) {
		t.Helper()
		for range n {
			resp, err := c.LookupReceipt(callCtx(t), req)
			if status.Code(err) == codes.ResourceExhausted {
				refused = err
				continue
			}
			if err != nil {
				t.Fatalf("LookupReceipt: %v", err)
			}
			if resp.GetStatus() != doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED {
				t.Fatalf("LookupReceipt: %v; want COUNTED", resp.GetStatus())
			}
			served++
		}
		return served, refused
	}

	household := publicFrom(t, run.Server, "127.0.0.1")
	served, refused := lookups(household, 25)
	if served != 20 {
		t.Fatalf("%d of 25 lookups at once served; want 20", served)
	}
	want := "too many receipt lookups from this address; wait a few seconds"
	if status.Convert(refused).Message() != want {
		t.Errorf("refusal %q; want %q", status.Convert(refused).Message(), want)
	}
	// Invalid lookups count too: the limit comes before any work.
	if _, err := household.LookupReceipt(callCtx(t), &doorstepv1.LookupReceiptRequest{ElectionId: eid, ReceiptCode: "UUUUU-UUUUU"}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a malformed lookup over the limit: %v; want ResourceExhausted", err)
	}

	run.Clock.Advance(time.Second)
	if served, _ := lookups(household, 10); served != 5 {
		t.Errorf("a second later, %d of 10 served; want 5", served)
	}

	// Another address is not held back by the first.
	neighbour := publicFrom(t, run.Server, "127.0.0.2")
	if _, err := neighbour.GetCheckpoint(callCtx(t), &doorstepv1.GetCheckpointRequest{ElectionId: eid}); err != nil {
		t.Skipf("no second loopback address here (%v)", err)
	}
	if served, _ := lookups(neighbour, 20); served != 20 {
		t.Errorf("another address: %d of 20 served; want 20", served)
	}
}
