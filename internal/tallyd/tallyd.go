// Package tallyd runs the tally server: it opens the data folder (identity
// key and bbolt file), serves gRPC and stops cleanly. cmd/tallyd wires it to
// flags and signals; end-to-end tests run the same code in-process.
package tallyd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/server"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// Defaults for cmd/tallyd.
const (
	DefaultDataDir = "./doorstep-data"
	DefaultListen  = "127.0.0.1:7070"
	// DefaultOrigin names this server's logs in checkpoints.
	DefaultOrigin = "doorstep.local"
)

// Files in the data folder.
const (
	KeyFile = "server.key"
	DBFile  = "tally.db"
)

// Config is everything tallyd needs.
type Config struct {
	DataDir string
	Listen  string
	Origin  string
	Logger  *slog.Logger
	Now     func() time.Time
	// NoSync skips fsync; benchmarks only.
	NoSync bool
	// GCPercent, when positive, sets the garbage collector's target for the
	// process while the server runs (see runtime/debug.SetGCPercent).
	// tallyd's live heap is small, so the default of 100 collects very
	// often under ingest load; DefaultGCPercent trades a few more MB for
	// about a tenth more throughput.
	GCPercent int
}

// DefaultGCPercent is cmd/tallyd's garbage collector setting.
const DefaultGCPercent = 400

// Server is a running tallyd.
type Server struct {
	cfg   Config
	store *store.Store
	lis   net.Listener
	done  chan error
	stop  func()
	// prevGC is the GC setting to restore at Close; -2 when unchanged.
	prevGC int
}

// Start opens the data folder, makes the identity key on first start, and
// begins serving. It returns once the listener is bound.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.Origin == "" {
		cfg.Origin = DefaultOrigin
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("make data folder: %w", err)
	}
	key, created, err := ballotlog.LoadOrCreateKey(filepath.Join(cfg.DataDir, KeyFile), rand.Reader)
	if err != nil {
		return nil, err
	}
	fp := ballotlog.Fingerprint(key.Public().(ed25519.PublicKey))
	if created {
		cfg.Logger.Info("made a new server identity key", "file", filepath.Join(cfg.DataDir, KeyFile), "fingerprint", fp)
	}
	st, err := store.Open(ctx, store.Config{
		Path:   filepath.Join(cfg.DataDir, DBFile),
		Signer: ballotlog.NewKeySigner(key),
		Origin: cfg.Origin,
		Logger: cfg.Logger,
		Now:    cfg.Now,
		NoSync: cfg.NoSync,
	})
	if err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	hs := health.NewServer()
	gs := server.New(st, cfg.Logger, cfg.Now).NewGRPCServer(hs)
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s := &Server{cfg: cfg, store: st, lis: lis, done: make(chan error, 1), prevGC: -2}
	if cfg.GCPercent > 0 {
		s.prevGC = debug.SetGCPercent(cfg.GCPercent)
	}
	go func() { s.done <- gs.Serve(lis) }()
	s.stop = func() {
		hs.Shutdown()
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			gs.Stop()
		}
	}
	cfg.Logger.Info("tallyd serving", "addr", lis.Addr().String(), "data", cfg.DataDir, "fingerprint", fp)
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Fingerprint is the server identity key's fingerprint.
func (s *Server) Fingerprint() string { return ballotlog.Fingerprint(s.store.ServerKey()) }

// Store gives tests and benchmarks access to the store.
func (s *Server) Store() *store.Store { return s.store }

// Wait blocks until the server stops serving.
func (s *Server) Wait() error {
	err := <-s.done
	s.done <- err
	return err
}

// Close stops accepting calls, lets calls in flight finish, and closes the
// store.
func (s *Server) Close() error {
	s.stop()
	err := s.store.Close()
	if s.prevGC != -2 {
		debug.SetGCPercent(s.prevGC)
	}
	if serr := s.Wait(); serr != nil && !errors.Is(serr, net.ErrClosed) {
		return serr
	}
	return err
}
