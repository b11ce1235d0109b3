package client_test

import (
	"context"
	"crypto/tls"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
)

// infoServer answers GetServerInfo with the errors in fail, one a call,
// then with an answer; with block it waits for the call's end instead.
type infoServer struct {
	doorstepv1.UnimplementedSyncServiceServer
	block   bool
	started chan struct{}

	mu    sync.Mutex
	fail  []error
	calls int
}

func (s *infoServer) GetServerInfo(ctx context.Context, _ *doorstepv1.GetServerInfoRequest) (*doorstepv1.GetServerInfoResponse, error) {
	s.mu.Lock()
	s.calls++
	var err error
	if len(s.fail) > 0 {
		err, s.fail = s.fail[0], s.fail[1:]
	}
	s.mu.Unlock()
	if s.block {
		select {
		case s.started <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	return &doorstepv1.GetServerInfoResponse{LogOrigin: "test"}, nil
}

func (s *infoServer) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// serve runs srv on a loopback port until the test ends and returns a
// client of it.
func serve(t *testing.T, srv *infoServer, cfg client.Config, opts ...grpc.DialOption) doorstepv1.SyncServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	doorstepv1.RegisterSyncServiceServer(gs, srv)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = gs.Serve(lis)
	}()
	conn, err := cfg.New(lis.Addr().String(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		gs.Stop()
		<-done
	})
	return doorstepv1.NewSyncServiceClient(conn)
}

// TestFastRetry checks the service config through a real connection: gRPC
// itself retries Unavailable, and leaves every other code, Transient ones
// too, to the caller.
func TestFastRetry(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "shutting down")
	tests := []struct {
		name      string
		fail      []error
		wantCode  codes.Code
		wantCalls int
	}{
		{"unavailable twice, then an answer", []error{unavailable, unavailable}, codes.OK, 3},
		{"unavailable on every attempt", []error{unavailable, unavailable, unavailable, unavailable, unavailable}, codes.Unavailable, 4},
		{"aborted is the caller's to retry", []error{status.Error(codes.Aborted, "conflict")}, codes.Aborted, 1},
		{"refused", []error{status.Error(codes.PermissionDenied, "revoked")}, codes.PermissionDenied, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &infoServer{fail: tt.fail}
			cl := serve(t, srv, client.Config{})
			_, err := cl.GetServerInfo(context.Background(), &doorstepv1.GetServerInfoRequest{})
			if status.Code(err) != tt.wantCode {
				t.Fatalf("err = %v; want code %v", err, tt.wantCode)
			}
			if got := srv.callCount(); got != tt.wantCalls {
				t.Errorf("the server saw %d calls; want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestCallerStopped: when the caller cancels, or its own deadline passes,
// the call is not retried; when only one attempt's deadline passes, it is.
func TestCallerStopped(t *testing.T) {
	srv := &infoServer{block: true, started: make(chan struct{}, 1)}
	cl := serve(t, srv, client.Config{})

	t.Run("caller cancels", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := cl.GetServerInfo(ctx, &doorstepv1.GetServerInfoRequest{})
			errc <- err
		}()
		<-srv.started
		cancel()
		err := <-errc
		if status.Code(err) != codes.Canceled {
			t.Fatalf("err = %v; want Canceled", err)
		}
		if got := client.Classify(ctx, err); got != client.Stopped {
			t.Errorf("Classify = %v; want stopped", got)
		}
		if client.Retryable(ctx, err) || client.Unreachable(err) {
			t.Errorf("Retryable = %v, Unreachable = %v; want both false", client.Retryable(ctx, err), client.Unreachable(err))
		}
	})

	t.Run("one attempt runs out of time", func(t *testing.T) {
		ctx := context.Background()
		attempt, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := cl.GetServerInfo(attempt, &doorstepv1.GetServerInfoRequest{})
		if status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("err = %v; want DeadlineExceeded", err)
		}
		if got := client.Classify(ctx, err); got != client.Transient {
			t.Errorf("Classify(caller's ctx) = %v; want transient", got)
		}
		if !client.Unreachable(err) {
			t.Errorf("Unreachable = false; want true: no answer came in time")
		}
		if got := client.Classify(attempt, err); got != client.Stopped {
			t.Errorf("Classify(the expired ctx) = %v; want stopped", got)
		}
	})
}

// TestConfigTransport: Config.Transport replaces plaintext. TLS to a
// plaintext server fails its handshake, where the zero Config works.
func TestConfigTransport(t *testing.T) {
	srv := &infoServer{}
	ctx := context.Background()
	if _, err := serve(t, srv, client.Config{}).GetServerInfo(ctx, &doorstepv1.GetServerInfoRequest{}); err != nil {
		t.Fatalf("plaintext: %v", err)
	}
	tlsCreds := credentials.NewTLS(&tls.Config{ServerName: "tallyd.example", MinVersion: tls.VersionTLS13})
	_, err := serve(t, srv, client.Config{Transport: tlsCreds}, grpc.WithDisableRetry()).GetServerInfo(ctx, &doorstepv1.GetServerInfoRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("TLS to a plaintext server: err = %v; want Unavailable", err)
	}
	if !client.Unreachable(err) {
		t.Errorf("Unreachable(%v) = false; want true", err)
	}
}

func TestNewDoesNotConnect(t *testing.T) {
	// Nothing listens on port 1; New only checks the target and options
	// (the service config among them).
	conn, err := client.New("127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
}
