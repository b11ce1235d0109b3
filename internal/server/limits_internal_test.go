package server

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"google.golang.org/grpc/peer"
)

func fromAddr(addr net.Addr) context.Context {
	return peer.NewContext(context.Background(), &peer.Peer{Addr: addr})
}

func tcp(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }

func TestCallerAddr(t *testing.T) {
	tests := []struct {
		name string
		ctx  context.Context
		want string
	}{
		{"IPv4", fromAddr(tcp("192.0.2.7")), "192.0.2.7/32"},
		{"IPv4 mapped into IPv6", fromAddr(tcp("::ffff:192.0.2.7")), "192.0.2.7/32"},
		{"IPv6, its /64", fromAddr(tcp("2001:db8:1:2:aaaa::1")), "2001:db8:1:2::/64"},
		{"another address of the same /64", fromAddr(tcp("2001:db8:1:2:bbbb::9")), "2001:db8:1:2::/64"},
		{"not TCP", fromAddr(&net.UDPAddr{IP: net.ParseIP("192.0.2.8"), Port: 1}), "192.0.2.8/32"},
		{"a Unix socket", fromAddr(&net.UnixAddr{Name: "/run/tallyd.sock", Net: "unix"}), "invalid Prefix"},
		{"no peer", context.Background(), "invalid Prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := callerAddr(tt.ctx).String(); got != tt.want {
				t.Errorf("callerAddr = %s; want %s", got, tt.want)
			}
		})
	}
}

// TestAddrLimiter: each address has its own bucket (burst, then the rate),
// and past max addresses the least recently seen is forgotten.
func TestAddrLimiter(t *testing.T) {
	now := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	a := newAddrLimiter(5, 3, 2, func() time.Time { return now })
	x, y, z := fromAddr(tcp("192.0.2.1")), fromAddr(tcp("192.0.2.2")), fromAddr(tcp("192.0.2.3"))
	take := func(ctx context.Context, n int) (allowed int) {
		for range n {
			if a.allow(ctx) {
				allowed++
			}
		}
		return allowed
	}
	if got := take(x, 5); got != 3 {
		t.Fatalf("x: %d of 5 allowed at once; want the burst, 3", got)
	}
	if got := take(y, 1); got != 1 {
		t.Fatalf("y, another address: %d allowed; want 1", got)
	}
	now = now.Add(time.Second)
	if got := take(x, 5); got != 3 {
		t.Fatalf("x a second later: %d allowed; want 3 (5/s, capped at the burst)", got)
	}
	now = now.Add(200 * time.Millisecond)
	if got := take(x, 2); got != 1 {
		t.Fatalf("x 0.2 s later: %d allowed; want 1", got)
	}
	// x was seen last, so z's arrival forgets y; y starts afresh.
	take(z, 1)
	if a.len() != 2 {
		t.Fatalf("%d addresses remembered; want at most 2", a.len())
	}
	if _, ok := a.byAddr[netip.MustParsePrefix("192.0.2.2/32")]; ok {
		t.Error("y, the least recently seen, is still remembered")
	}
	if _, ok := a.byAddr[netip.MustParsePrefix("192.0.2.1/32")]; !ok {
		t.Error("x, seen more recently than y, was forgotten")
	}
	if got := take(x, 1); got != 0 {
		t.Errorf("x after the eviction: %d allowed; want 0 (its bucket is kept)", got)
	}
}
