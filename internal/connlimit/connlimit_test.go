package connlimit_test

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/connlimit"
)

// syncBuffer is a log sink the listener's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time // guarded by mu
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// accepted runs Accept in a loop and hands over what it accepts.
func accepted(t *testing.T, l net.Listener) <-chan net.Conn {
	t.Helper()
	out := make(chan net.Conn, 16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			out <- c
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	return out
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// refused dials addr and reports whether the server closed the
// connection at once: the dial or the first read ends with a reset or
// EOF instead of waiting.
func refused(t *testing.T, addr string) bool {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNRESET) {
			return true // reset before connect returned
		}
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// TestListenerCap: past the cap a connection is closed at once and
// counted; closing a held one frees its slot, once however often it is
// closed; refusals are logged at most once per LogEvery.
func TestListenerCap(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	clk := &clock{t: time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)}
	l := connlimit.NewListener(inner, 2, slog.New(slog.NewTextHandler(logs, nil)), clk.now)
	conns := accepted(t, l)
	addr := l.Addr().String()

	dial(t, addr)
	dial(t, addr)
	held := []net.Conn{<-conns, <-conns}
	if l.Open() != 2 {
		t.Fatalf("open %d; want 2", l.Open())
	}
	for i := range 3 {
		if !refused(t, addr) {
			t.Fatalf("connection %d over the cap was not closed", i+1)
		}
	}
	if l.Refused() != 3 {
		t.Errorf("refused %d; want 3", l.Refused())
	}
	if n := strings.Count(logs.String(), "refusing connections"); n != 1 {
		t.Errorf("%d log lines for 3 refusals within LogEvery; want 1:\n%s", n, logs)
	}

	// Closed twice, freed once: one slot comes back, not two.
	held[0].Close()
	held[0].Close()
	dial(t, addr)
	select {
	case c := <-conns:
		held[0] = c
	case <-time.After(5 * time.Second):
		t.Fatal("a freed slot was not given to the next connection")
	}
	if !refused(t, addr) {
		t.Fatal("a double close freed two slots")
	}

	clk.advance(connlimit.LogEvery)
	if !refused(t, addr) {
		t.Fatal("connection over the cap was not closed")
	}
	out := logs.String()
	if n := strings.Count(out, "refusing connections"); n != 2 {
		t.Errorf("%d log lines after LogEvery; want 2:\n%s", n, out)
	}
	// Refused since the first line: the other two of the three, the one
	// after the double close, and this one.
	if !strings.Contains(out, "refused=4 refused_total=5") {
		t.Errorf("the second line does not count the refusals since the first:\n%s", out)
	}
	for _, c := range held {
		c.Close()
	}
	if l.Open() != 0 {
		t.Errorf("open %d after closing all; want 0", l.Open())
	}
}

// TestListenerPassesErrors: Accept's errors are the inner listener's, so
// grpc.Server.Serve ends when the listener closes.
func TestListenerPassesErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := connlimit.NewListener(inner, 1, nil, nil)
	l.Close()
	if _, err := l.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed listener: %v; want net.ErrClosed", err)
	}
}

func TestFit(t *testing.T) {
	tests := []struct {
		want  int
		limit uint64
		got   int
	}{
		{2000, 1 << 20, 2000},
		{2000, 1024, 1024 - connlimit.Reserve},
		{2000, 2000 + connlimit.Reserve, 2000},
		{10, connlimit.Reserve, 1},
		{10, 0, 1},
	}
	for _, tt := range tests {
		if got := connlimit.Fit(tt.want, tt.limit); got != tt.got {
			t.Errorf("fit(%d, %d) = %d; want %d", tt.want, tt.limit, got, tt.got)
		}
	}
	if got := connlimit.FitDescriptors(1); got != 1 {
		t.Errorf("FitDescriptors(1) = %d", got)
	}
}
