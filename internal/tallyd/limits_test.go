package tallyd_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/server"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// logSink collects a server's log lines for a test to read.
type logSink struct {
	mu sync.Mutex
	b  bytes.Buffer // guarded by mu
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// rawTLS completes a TLS handshake with srv as a gRPC client would (its
// pin, ALPN h2), on a connection the test then drives by hand.
func rawTLS(t *testing.T, srv *tallyd.Server, c net.Conn) (*tls.Conn, error) {
	t.Helper()
	host, _, _ := net.SplitHostPort(srv.Addr())
	cfg, err := servercert.ClientConfig(srv.Pin(), host)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NextProtos = []string{"h2"}
	tc := tls.Client(c, cfg)
	tc.SetDeadline(time.Now().Add(10 * time.Second))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// serverInfo makes the cheapest honest call, waiting for the connection
// to come up rather than failing on the first refusal, as a device's sync
// loop would retry.
func serverInfo(t *testing.T, srv *tallyd.Server, within time.Duration) error {
	t.Helper()
	conn, err := srv.Client().New(srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	_, err = doorstepv1.NewSyncServiceClient(conn).GetServerInfo(c, &doorstepv1.GetServerInfoRequest{}, grpc.WaitForReady(true))
	return err
}

// closedByServer reads c until it ends and reports whether the server
// ended it (EOF or a reset) before deadline.
func closedByServer(c net.Conn, deadline time.Time) bool {
	c.SetReadDeadline(deadline)
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestConnectionFlood: connections that never finish opening cannot keep
// honest callers out. The flood is more connections than the cap: first
// half that never start TLS, then half that finish it and send HTTP/2's
// preface and nothing more. Those past the cap are closed at once, the
// rest when the handshake deadline passes, and an honest call gets
// through meanwhile.
//
// Both halves of the defence are needed. Run once with the cap but gRPC's
// default handshake deadline of 120 s, the held connections kept the cap
// full and the honest call below failed with DeadlineExceeded after its
// 20 s. Run on the code before both, the honest call went through (60
// connections use up nothing) but the flood's stayed open; a bigger flood
// uses up the file descriptors, and that is what made honest calls time
// out before these limits (TestDescriptorFlood).
func TestConnectionFlood(t *testing.T) {
	const maxConns, flood = 50, 60
	logs := &logSink{}
	srv, err := tallyd.Start(context.Background(), tallyd.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		MaxConns: maxConns, HandshakeTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	var stalled []net.Conn
	for i := range flood {
		c, err := net.Dial("tcp", srv.Addr())
		if errors.Is(err, syscall.ECONNRESET) {
			continue // past the cap: reset before the dial returned
		}
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		defer c.Close()
		if i >= flood/2 {
			tc, err := rawTLS(t, srv, c)
			if err != nil {
				continue // past the cap: closed before the handshake
			}
			if _, err := io.WriteString(tc, http2.ClientPreface); err != nil {
				continue
			}
		}
		stalled = append(stalled, c)
	}

	if err := serverInfo(t, srv, 20*time.Second); err != nil {
		t.Fatalf("an honest call during the flood: %v", err)
	}
	// Every flood connection ends, at once or at the deadline; none is
	// still open a while after it.
	deadline := time.Now().Add(10 * time.Second)
	for i, c := range stalled {
		if !closedByServer(c, deadline) {
			t.Errorf("flood connection %d is still open well past the handshake deadline", i)
		}
	}
	if !strings.Contains(logs.String(), "refusing connections") {
		t.Errorf("the server did not log that it refused connections past its cap of %d:\n%s", maxConns, logs)
	}
	if err := serverInfo(t, srv, 10*time.Second); err != nil {
		t.Errorf("an honest call after the flood: %v", err)
	}
}

// h2Conn is a hand-driven HTTP/2 connection: a client that does what a
// gRPC client would not, such as ignore the server's settings.
type h2Conn struct {
	fr  *http2.Framer
	enc *hpack.Encoder
	buf bytes.Buffer
}

func openH2(t *testing.T, srv *tallyd.Server) (*h2Conn, []http2.Setting) {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	tc, err := rawTLS(t, srv, c)
	if err != nil {
		t.Fatal(err)
	}
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	h := &h2Conn{fr: http2.NewFramer(tc, tc)}
	h.enc = hpack.NewEncoder(&h.buf)
	if _, err := io.WriteString(tc, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	f, err := h.fr.ReadFrame()
	if err != nil {
		t.Fatal(err)
	}
	sf, ok := f.(*http2.SettingsFrame)
	if !ok || sf.IsAck() {
		t.Fatalf("the server opened with %v; want its SETTINGS", f)
	}
	var settings []http2.Setting
	sf.ForeachSetting(func(s http2.Setting) error { settings = append(settings, s); return nil })
	if err := h.fr.WriteSettingsAck(); err != nil {
		t.Fatal(err)
	}
	return h, settings
}

// call opens stream id for method and leaves it open: headers, no body.
// extra are more header fields, name and value.
func (h *h2Conn) call(t *testing.T, id uint32, method string, extra ...[2]string) {
	t.Helper()
	h.buf.Reset()
	for _, f := range append([][2]string{
		{":method", "POST"}, {":scheme", "https"}, {":path", method}, {":authority", "tallyd"},
		{"content-type", "application/grpc"}, {"te", "trailers"},
	}, extra...) {
		h.enc.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	if err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: h.buf.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
}

// reset reads frames until the server resets a stream, and returns it.
func (h *h2Conn) reset(t *testing.T) *http2.RSTStreamFrame {
	t.Helper()
	for {
		f, err := h.fr.ReadFrame()
		if err != nil {
			t.Fatalf("waiting for a stream reset: %v", err)
		}
		switch f := f.(type) {
		case *http2.RSTStreamFrame:
			return f
		case *http2.GoAwayFrame:
			t.Fatalf("the server closed the connection (%v) instead of refusing a stream", f.ErrCode)
		case *http2.PingFrame:
			if !f.IsAck() {
				h.fr.WritePing(true, f.Data)
			}
		}
	}
}

// TestStreamLimits: one connection has at most MaxConcurrentStreams calls
// in flight and MaxHeaderListBytes of metadata per call. The server says
// so in its SETTINGS; a gRPC client waits for a free stream, and a client
// that ignores the setting has its extra stream refused.
func TestStreamLimits(t *testing.T) {
	const streams = 3
	srv, err := tallyd.Start(context.Background(), tallyd.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", MaxConcurrentStreams: streams,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()

	t.Run("a client that ignores the limit", func(t *testing.T) {
		h, settings := openH2(t, srv)
		got := map[http2.SettingID]uint32{}
		for _, s := range settings {
			got[s.ID] = s.Val
		}
		if got[http2.SettingMaxConcurrentStreams] != streams {
			t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d; want %d", got[http2.SettingMaxConcurrentStreams], streams)
		}
		if got[http2.SettingMaxHeaderListSize] != server.MaxHeaderListBytes {
			t.Errorf("SETTINGS_MAX_HEADER_LIST_SIZE %d; want %d", got[http2.SettingMaxHeaderListSize], server.MaxHeaderListBytes)
		}
		// Calls left waiting for a request that never comes: each holds
		// its stream.
		for i := range streams + 1 {
			h.call(t, uint32(2*i+1), doorstepv1.SyncService_GetServerInfo_FullMethodName)
		}
		rst := h.reset(t)
		if rst.StreamID != 2*streams+1 || rst.ErrCode != http2.ErrCodeRefusedStream {
			t.Errorf("reset of stream %d with %v; want stream %d refused (REFUSED_STREAM)", rst.StreamID, rst.ErrCode, 2*streams+1)
		}

		// Metadata past the limit, in fields of 1 KiB (one field over it
		// costs the whole connection): the stream is reset.
		h, _ = openH2(t, srv)
		var pad [][2]string
		for i := range server.MaxHeaderListBytes/1024 + 2 {
			pad = append(pad, [2]string{fmt.Sprintf("padding-%d", i), strings.Repeat("x", 1024)})
		}
		h.call(t, 1, doorstepv1.SyncService_GetServerInfo_FullMethodName, pad...)
		if rst := h.reset(t); rst.StreamID != 1 {
			t.Errorf("reset of stream %d; want stream 1, whose metadata is over the limit", rst.StreamID)
		}
	})

	t.Run("a gRPC client waits", func(t *testing.T) {
		conn, err := srv.Client().New(srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// Reflection streams stay open until the client ends them.
		var open []reflectionpb.ServerReflection_ServerReflectionInfoClient
		for range streams {
			st, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(c)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
				t.Fatal(err)
			}
			if _, err := st.Recv(); err != nil {
				t.Fatal(err)
			}
			open = append(open, st)
		}
		sc := doorstepv1.NewSyncServiceClient(conn)
		short, cancelShort := context.WithTimeout(c, 300*time.Millisecond)
		_, err = sc.GetServerInfo(short, &doorstepv1.GetServerInfoRequest{})
		cancelShort()
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("a call past the limit: %v; want it to wait for a stream (DeadlineExceeded)", err)
		}
		open[0].CloseSend()
		if _, err := open[0].Recv(); err != io.EOF {
			t.Fatalf("ending a reflection stream: %v", err)
		}
		if _, err := sc.GetServerInfo(c, &doorstepv1.GetServerInfoRequest{}); err != nil {
			t.Fatalf("a call once a stream is free: %v", err)
		}
	})

	t.Run("metadata past the limit", func(t *testing.T) {
		conn, err := srv.Client().New(srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		sc := doorstepv1.NewSyncServiceClient(conn)
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := sc.GetServerInfo(c, &doorstepv1.GetServerInfoRequest{}); err != nil {
			t.Fatal(err) // the connection is up and the server's settings known
		}
		big := metadata.AppendToOutgoingContext(c, "padding", strings.Repeat("x", 2*server.MaxHeaderListBytes))
		_, err = sc.GetServerInfo(big, &doorstepv1.GetServerInfoRequest{})
		if err == nil {
			t.Fatalf("a call with %d bytes of metadata went through", 2*server.MaxHeaderListBytes)
		}
		t.Logf("a call with %d bytes of metadata: %v", 2*server.MaxHeaderListBytes, err)
		if _, err := sc.GetServerInfo(c, &doorstepv1.GetServerInfoRequest{}); err != nil {
			t.Fatalf("the next ordinary call on the connection: %v", err)
		}
	})
}
