// Package connlimit caps how many connections a server holds open at once.
//
// A gRPC server gives every accepted connection a goroutine, buffers and a
// file descriptor before the peer has proved anything: TLS and HTTP/2's
// opening come after Accept. Without a cap, anyone who can reach the port
// can open connections until the process runs out of descriptors or memory
// and honest callers are no longer accepted. [Listener] holds a slot per
// open connection; when all are taken it closes each new connection at
// once (a reset, so no state lingers), counts it, and says so in the log,
// at most once per LogEvery.
//
// A cap alone only moves the problem: an attacker who fills it keeps
// everyone else out. It works together with a deadline on a new
// connection's handshake (grpc.ConnectionTimeout) and an idle limit on
// established ones (keepalive.ServerParameters.MaxConnectionIdle), which
// free the slots of connections that do nothing.
package connlimit

import (
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// LogEvery is the most often a Listener logs that it is refusing
// connections; each line says how many it refused since the last.
const LogEvery = 10 * time.Second

// Listener is a net.Listener that holds at most Max connections open.
// A connection's slot is freed when it is closed.
type Listener struct {
	net.Listener
	max  int
	sem  chan struct{} // one token per open connection
	log  *slog.Logger
	now  func() time.Time
	open atomic.Int64
	// refused counts connections closed because the listener was full.
	refused atomic.Uint64

	mu         sync.Mutex
	lastLog    time.Time // guarded by mu
	sinceLog   uint64    // refusals not yet logged; guarded by mu
	loggedOnce bool      // guarded by mu
}

// NewListener caps inner at max open connections (max must be positive).
// It logs refusals to log; now is its clock for spacing those lines.
func NewListener(inner net.Listener, max int, log *slog.Logger, now func() time.Time) *Listener {
	if max <= 0 {
		panic("connlimit: max must be positive")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if now == nil {
		now = time.Now
	}
	return &Listener{Listener: inner, max: max, sem: make(chan struct{}, max), log: log, now: now}
}

// Accept waits for the next connection that fits under the cap; the ones
// that arrive while the cap is reached are closed and counted, and Accept
// goes on waiting. Errors are the inner listener's.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.sem <- struct{}{}:
			l.open.Add(1)
			return &conn{Conn: c, l: l}, nil
		default:
			l.refuse(c)
		}
	}
}

// Open is the number of connections holding a slot now.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Refused is the number of connections closed because the cap was reached.
func (l *Listener) Refused() uint64 { return l.refused.Load() }

// refuse counts and logs c, then closes it. Counting and logging come
// first so that whoever sees the connection closed sees it counted.
func (l *Listener) refuse(c net.Conn) {
	l.note()
	if tc, ok := c.(*net.TCPConn); ok {
		// A reset instead of a graceful close: the server keeps no
		// TIME_WAIT state for connections it never served.
		tc.SetLinger(0)
	}
	c.Close()
}

// note counts one refusal and logs, unless it logged less than LogEvery
// ago, how many there were since the last line.
func (l *Listener) note() {
	total := l.refused.Add(1)
	l.mu.Lock()
	l.sinceLog++
	now := l.now()
	if l.loggedOnce && now.Sub(l.lastLog) < LogEvery {
		l.mu.Unlock()
		return
	}
	n := l.sinceLog
	l.sinceLog, l.lastLog, l.loggedOnce = 0, now, true
	l.mu.Unlock()
	l.log.Warn("refusing connections: the server holds as many as it allows; raise the limit if these are real callers",
		"limit", l.max, "refused", n, "refused_total", total, "addr", l.Addr().String())
}

// conn frees its listener slot once, on its first Close.
type conn struct {
	net.Conn
	l    *Listener
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.open.Add(-1)
		<-c.l.sem
	})
	return err
}
