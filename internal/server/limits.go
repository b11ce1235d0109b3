package server

import (
	"container/list"
	"context"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Defaults of Limits, and the limits that are not settable.
const (
	// DefaultMaxConcurrentStreams is how many calls one connection may
	// have in flight. A device syncs with a handful; the cap bounds the
	// handler goroutines one connection can start (it is also gRPC's
	// defence against HTTP/2 rapid reset).
	DefaultMaxConcurrentStreams = 64
	// DefaultHandshakeTimeout bounds a new connection's TLS handshake and
	// HTTP/2 opening: a phone on a slow link needs a few seconds, and a
	// connection that sends nothing is dropped after it.
	DefaultHandshakeTimeout = 10 * time.Second
	// MaxConnectionIdle closes (by GOAWAY) a connection with no call for
	// this long; the client reconnects on its next call.
	MaxConnectionIdle = 5 * time.Minute
	// MaxHeaderListBytes bounds one call's metadata. Doorstep's own (a
	// call signature, the operator token) is well under 1 KiB; gRPC's
	// default of 16 MiB would let one call hold 16 MiB.
	MaxHeaderListBytes = 8 << 10
)

// Limits bound what one connection may take of the server. Zero fields
// take the defaults.
type Limits struct {
	// MaxConcurrentStreams is the most calls in flight on one connection
	// (DefaultMaxConcurrentStreams). A gRPC client waits for a free one;
	// a client that does not gets its extra streams refused.
	MaxConcurrentStreams uint32
	// HandshakeTimeout bounds a new connection's TLS handshake and HTTP/2
	// opening (DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return l
}

// Receipt lookups are public, so they are limited per address: enough for
// a household checking its receipts, or a scrutineer checking a stack by
// hand, not for sweeping the space of codes.
const (
	receiptLookupsPerSecond = 5
	receiptLookupBurst      = 20
	// receiptAddresses bounds the addresses remembered; the least recently
	// seen is forgotten first (it then starts again with a full burst).
	receiptAddresses = 10_000
)

// errTooManyLookups is the answer to a lookup over its address's limit.
var errTooManyLookups = status.Error(codes.ResourceExhausted, "too many receipt lookups from this address; wait a few seconds")

// addrLimiter is a token bucket per caller address, for at most max
// addresses.
type addrLimiter struct {
	limit rate.Limit
	burst int
	max   int
	now   func() time.Time

	mu     sync.Mutex
	byAddr map[netip.Prefix]*list.Element // values are *addrBucket; guarded by mu
	lru    list.List                      // most recently used first; guarded by mu
}

type addrBucket struct {
	addr netip.Prefix
	lim  *rate.Limiter
}

func newAddrLimiter(perSecond float64, burst, max int, now func() time.Time) *addrLimiter {
	return &addrLimiter{limit: rate.Limit(perSecond), burst: burst, max: max, now: now, byAddr: make(map[netip.Prefix]*list.Element)}
}

// allow takes a token for the call's caller, reporting false when its
// address has none left.
func (a *addrLimiter) allow(ctx context.Context) bool {
	key := callerAddr(ctx)
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	if e, ok := a.byAddr[key]; ok {
		a.lru.MoveToFront(e)
		return e.Value.(*addrBucket).lim.AllowN(now, 1)
	}
	if a.lru.Len() >= a.max {
		oldest := a.lru.Back()
		a.lru.Remove(oldest)
		delete(a.byAddr, oldest.Value.(*addrBucket).addr)
	}
	b := &addrBucket{addr: key, lim: rate.NewLimiter(a.limit, a.burst)}
	a.byAddr[key] = a.lru.PushFront(b)
	return b.lim.AllowN(now, 1)
}

// len is the number of addresses remembered.
func (a *addrLimiter) len() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.lru.Len()
}

// callerAddr is who a call comes from, as a limit counts them: an IPv4
// address, or an IPv6 address's /64, which is what one subscriber is
// usually given (so changing address within it gains nothing). Calls with
// no IP address (a Unix socket) share one bucket.
func callerAddr(ctx context.Context) netip.Prefix {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Prefix{}
	}
	var ip netip.Addr
	switch a := p.Addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	switch {
	case ip.Is4():
		return netip.PrefixFrom(ip, 32)
	case ip.Is6():
		pfx, _ := ip.WithZone("").Prefix(64)
		return pfx
	}
	return netip.Prefix{}
}
