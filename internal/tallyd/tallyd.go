// Package tallyd runs the tally server: it opens the data folder (identity
// key and bbolt file), serves gRPC and stops cleanly. cmd/tallyd wires it to
// flags and signals; end-to-end tests run the same code in-process.
package tallyd

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/doorstep-vote/doorstep/internal/atomicfile"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/connlimit"
	"github.com/doorstep-vote/doorstep/internal/server"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// Defaults for cmd/tallyd.
const (
	DefaultDataDir = "./doorstep-data"
	DefaultListen  = "127.0.0.1:7070"
	// DefaultWebListen is cmd/tallyd's address for the browser side.
	DefaultWebListen = "127.0.0.1:7443"
	// DefaultOrigin names this server's logs in checkpoints.
	DefaultOrigin = "doorstep.local"
)

// Files in the data folder.
const (
	KeyFile = "server.key"
	DBFile  = "tally.db"
	// OperatorTokenFile holds the operator's token (mode 0600): who holds
	// it may create elections on this server.
	OperatorTokenFile = "operator.token"
)

// Config is everything tallyd needs.
type Config struct {
	DataDir string
	Listen  string
	Origin  string
	Logger  *slog.Logger
	// Stderr gets what tallyd says once to whoever runs it (the operator
	// token on first start); io.Discard when nil.
	Stderr io.Writer
	Now    func() time.Time
	// NoSync skips fsync; benchmarks only.
	NoSync bool
	// TLSCert and TLSKey name a certificate (chain) and its key to serve,
	// such as one browsers trust for a real domain. Without them tallyd
	// serves the certificate it makes on first start in the data folder.
	TLSCert, TLSKey string
	// Plaintext serves without TLS: only on a loopback address, for tests
	// and for a TLS-terminating proxy on the same machine.
	Plaintext bool
	// GCPercent, when positive, sets the garbage collector's target for the
	// process while the server runs (see runtime/debug.SetGCPercent).
	// tallyd's live heap is small, so the default of 100 collects very
	// often under ingest load; DefaultGCPercent trades a few more MB for
	// about a tenth more throughput.
	GCPercent int
	// MaxConns caps the connections held open at once (DefaultMaxConns
	// when 0, and lower if the process may not open that many files);
	// past it a new connection is closed at once, counted and logged. It
	// keeps a flood of connections from using up the process's
	// descriptors and memory (see internal/connlimit).
	MaxConns int
	// HandshakeTimeout bounds a new connection's TLS handshake and HTTP/2
	// opening, so one that stalls frees its place under MaxConns
	// (server.DefaultHandshakeTimeout when 0).
	HandshakeTimeout time.Duration
	// MaxConcurrentStreams bounds the calls in flight on one connection
	// (server.DefaultMaxConcurrentStreams when 0).
	MaxConcurrentStreams uint32
	// WatchInterval is the least time between two overviews of an
	// election to its watchers (server.DefaultWatchInterval when 0).
	WatchInterval time.Duration
	// WebListen, when set, is where the browser side is served: the web
	// front ends, and Connect and gRPC-Web for them, with the same
	// certificate as Listen (plaintext, like Listen, only on loopback).
	WebListen string
	// MetricsListen, when set, is where Prometheus metrics are served
	// (GET /metrics, plain HTTP): on a loopback address unless
	// MetricsAllowRemote.
	MetricsListen      string
	MetricsAllowRemote bool
	// CommitFault is for tests only (store.Config.CommitFault): it fails
	// the store's commits as a failing disk would.
	CommitFault func() error
}

// DefaultMaxConns is cmd/tallyd's cap on open connections: far above an
// election's devices and auditors (each holds one), far below the
// descriptors and memory of a small machine.
const DefaultMaxConns = 2000

// DefaultGCPercent is cmd/tallyd's garbage collector setting.
const DefaultGCPercent = 400

// Server is a running tallyd.
type Server struct {
	cfg   Config
	store *store.Store
	lis   net.Listener
	pin   string // the TLS certificate's pin; "" when plaintext
	// operator is the operator token (OperatorTokenFile).
	operator   string
	done       chan error
	stop       func()
	web        *webServer // nil when WebListen is empty
	admin      *admin     // nil when the admin socket could not be made
	metrics    *metrics
	metricsSrv *metricsServer // nil when MetricsListen is empty
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
	if cfg.Stderr == nil {
		cfg.Stderr = io.Discard
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = DefaultMaxConns
	}
	if cfg.MetricsListen != "" {
		// Before anything is opened: a wrong flag costs nothing.
		if err := checkMetricsAddr(cfg.MetricsListen, cfg.MetricsAllowRemote); err != nil {
			return nil, err
		}
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
	m := newMetrics()
	st, err := store.Open(ctx, store.Config{
		Path:        filepath.Join(cfg.DataDir, DBFile),
		Signer:      ballotlog.NewKeySigner(key),
		Origin:      cfg.Origin,
		Logger:      cfg.Logger,
		Now:         cfg.Now,
		NoSync:      cfg.NoSync,
		Hooks:       m.hooks(),
		CommitFault: cfg.CommitFault,
	})
	if err != nil {
		return nil, err
	}
	tlsCfg, pin, err := tlsFor(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	transport := insecure.NewCredentials()
	if tlsCfg != nil {
		transport = credentials.NewTLS(tlsCfg)
	}
	lis, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	hs := health.NewServer()
	op, created, err := loadOrCreateOperatorToken(filepath.Join(cfg.DataDir, OperatorTokenFile))
	if err != nil {
		st.Close()
		return nil, err
	}
	if created {
		// Printed once, on first start; the file keeps it for the operator.
		fmt.Fprintf(cfg.Stderr, "tallyd: made the operator token, which lets its holder create elections on this server; it is in %s (mode 0600):\n  %s\n", filepath.Join(cfg.DataDir, OperatorTokenFile), op)
	}
	maxConns := connlimit.FitDescriptors(cfg.MaxConns)
	if maxConns < cfg.MaxConns {
		cfg.Logger.Warn("holding fewer connections than configured: the process may open too few files; raise its limit (ulimit -n, or LimitNOFILE= for systemd)",
			"max_conns", cfg.MaxConns, "holding_at_most", maxConns)
	}
	// The wall clock, not cfg.Now: it only spaces out log lines.
	grpcLis := connlimit.NewListener(lis, maxConns, cfg.Logger, time.Now)
	lis = grpcLis
	conns := map[string]connCounter{"grpc": grpcLis}
	limits := server.Limits{MaxConcurrentStreams: cfg.MaxConcurrentStreams, HandshakeTimeout: cfg.HandshakeTimeout}
	svc := server.New(st, server.Config{Logger: cfg.Logger, Now: cfg.Now, OperatorToken: op, Limits: limits, CallRefused: m.callRefused, WatchInterval: cfg.WatchInterval})
	gs := svc.NewGRPCServer(hs, grpc.Creds(transport), grpc.StatsHandler(streamCounter{open: m.streams}))
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	s := &Server{cfg: cfg, store: st, lis: lis, pin: pin, operator: op, done: make(chan error, 1), prevGC: -2, metrics: m}
	if s.admin, err = startAdmin(cfg.DataDir, st, cfg.Logger); err != nil {
		cfg.Logger.Warn("serving no admin socket: tallyd backup works only while tallyd is stopped", "err", err)
	}
	if cfg.GCPercent > 0 {
		s.prevGC = debug.SetGCPercent(cfg.GCPercent)
	}
	if cfg.WebListen != "" {
		h, err := webHandler(gs, frontEnds(svc, st, cfg))
		if err == nil {
			// Its own cap: a flood of browsers does not lock out devices.
			limit := func(l net.Listener) net.Listener {
				wl := connlimit.NewListener(l, maxConns, cfg.Logger, time.Now)
				conns["web"] = wl
				return wl
			}
			s.web, err = startWeb(cfg.WebListen, h, tlsCfg, limit, cfg.Logger)
		}
		if err != nil {
			s.abandon(lis)
			return nil, err
		}
	}
	m.serving(st, filepath.Join(cfg.DataDir, DBFile), conns, svc.Watchers)
	if cfg.MetricsListen != "" {
		if s.metricsSrv, err = startMetrics(cfg.MetricsListen, cfg.MetricsAllowRemote, m, cfg.Logger); err != nil {
			s.abandon(lis)
			return nil, err
		}
	}
	go func() { s.done <- gs.Serve(lis) }()
	s.stop = func() {
		hs.Shutdown()
		if s.metricsSrv != nil {
			s.metricsSrv.stop()
		}
		if s.web != nil {
			if err := s.web.stop(); err != nil {
				cfg.Logger.Warn("stopping the web server", "err", err)
			}
		}
		stopped := make(chan struct{})
		go func() { gs.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			gs.Stop()
		}
	}
	cfg.Logger.Info("tallyd serving", "addr", lis.Addr().String(), "data", cfg.DataDir, "fingerprint", fp, "tls_pin", pin)
	if s.web != nil {
		cfg.Logger.Info("tallyd serving the web", "addr", s.WebAddr())
	}
	if s.metricsSrv != nil {
		cfg.Logger.Info("tallyd serving metrics", "addr", s.MetricsAddr())
	}
	return s, nil
}

// MetricsAddr is the address metrics are served on, "" when not served.
func (s *Server) MetricsAddr() string {
	if s.metricsSrv == nil {
		return ""
	}
	return s.metricsSrv.lis.Addr().String()
}

// Metrics is the server's Prometheus registry (what /metrics serves).
func (s *Server) Metrics() *prometheus.Registry { return s.metrics.reg }

// abandon undoes what Start did before it failed part way: the servers it
// started, the GC setting, the listener and the store.
func (s *Server) abandon(lis net.Listener) {
	if s.web != nil {
		s.web.stop()
	}
	if s.admin != nil {
		s.admin.close()
	}
	if s.prevGC != -2 {
		debug.SetGCPercent(s.prevGC)
	}
	lis.Close()
	s.store.Close()
}

// WebAddr is the address of the browser side, "" when not served.
func (s *Server) WebAddr() string {
	if s.web == nil {
		return ""
	}
	return s.web.lis.Addr().String()
}

// Addr is the address the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Fingerprint is the server identity key's fingerprint.
func (s *Server) Fingerprint() string { return ballotlog.Fingerprint(s.store.ServerKey()) }

// OperatorToken is the token that lets its holder create elections here.
func (s *Server) OperatorToken() string { return s.operator }

// Pin is the pin of the TLS certificate the server serves (servercert.Pin),
// or servercert.Plaintext. Clients and enrollment codes carry it.
func (s *Server) Pin() string {
	if s.pin == "" {
		return servercert.Plaintext
	}
	return s.pin
}

// Client is how a client on this machine reaches the server: pinned to
// its certificate, or plaintext when it serves plaintext.
func (s *Server) Client() client.Config { return client.ForPin(s.Pin()) }

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
	if s.admin != nil {
		s.admin.close()
	}
	err := s.store.Close()
	if s.prevGC != -2 {
		debug.SetGCPercent(s.prevGC)
	}
	// ErrServerStopped: Close came before Serve had begun, which is a
	// clean stop too.
	if serr := s.Wait(); serr != nil && !errors.Is(serr, net.ErrClosed) && !errors.Is(serr, grpc.ErrServerStopped) {
		return serr
	}
	return err
}

// tlsFor returns the TLS configuration both listeners serve (nil when
// plaintext) and its certificate's pin.
func tlsFor(cfg Config) (*tls.Config, string, error) {
	host, _, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, "", fmt.Errorf("listen address %q: %w", cfg.Listen, err)
	}
	if cfg.Plaintext {
		for _, addr := range []string{cfg.Listen, cfg.WebListen} {
			if addr == "" {
				continue
			}
			h, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, "", fmt.Errorf("listen address %q: %w", addr, err)
			}
			if !loopback(h) {
				return nil, "", fmt.Errorf("plaintext is only served on a loopback address (127.0.0.1, ::1, localhost), not %q: drop --plaintext to serve TLS", addr)
			}
		}
		if cfg.TLSCert != "" || cfg.TLSKey != "" {
			return nil, "", errors.New("--plaintext and --tls-cert/--tls-key do not go together")
		}
		return nil, "", nil
	}
	var cert tls.Certificate
	switch {
	case cfg.TLSCert != "" && cfg.TLSKey != "":
		cert, err = servercert.LoadFiles(cfg.TLSCert, cfg.TLSKey)
	case cfg.TLSCert != "" || cfg.TLSKey != "":
		return nil, "", errors.New("give both --tls-cert and --tls-key, or neither (tallyd then serves its own certificate)")
	default:
		var created bool
		cert, created, err = servercert.LoadOrCreate(cfg.DataDir, []string{host}, cfg.Now(), rand.Reader)
		if created {
			cfg.Logger.Info("made a TLS certificate", "file", filepath.Join(cfg.DataDir, servercert.CertFile))
		}
	}
	if err != nil {
		return nil, "", err
	}
	pin, err := servercert.LeafPin(cert)
	if err != nil {
		return nil, "", err
	}
	return servercert.ServerConfig(cert), pin, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loadOrCreateOperatorToken reads the operator token, making a random one
// on first start.
func loadOrCreateOperatorToken(path string) (token string, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		t := strings.TrimSpace(string(b))
		if len(t) < 32 {
			return "", false, fmt.Errorf("%s holds no operator token: restore it from a backup, or remove it to make a new one", path)
		}
		return t, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	raw := make([]byte, 24)
	if _, err := io.ReadFull(rand.Reader, raw); err != nil {
		return "", false, fmt.Errorf("make the operator token: %w", err)
	}
	token = "op-" + base64.RawURLEncoding.EncodeToString(raw)
	if err := atomicfile.WriteNew(path, []byte(token+"\n")); err != nil {
		return "", false, fmt.Errorf("save the operator token: %w", err)
	}
	return token, true, nil
}
