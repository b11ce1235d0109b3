package server

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"runtime/debug"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// Server implements doorstep.v1's services over a store.
type Server struct {
	store *store.Store
	log   *slog.Logger
	now   func() time.Time
	// operator is the SHA-256 of the operator's token; nil lets no one
	// create elections.
	operator []byte
	replays  callauth.Replays
	// overviews are shared among the watchers of an election.
	overviews *Overviews
	limits    Limits
	// receipts limits LookupReceipt per caller address.
	receipts *addrLimiter
	// refusals limits the log lines of refusals.
	refusals    *refusalLimiter
	callRefused func(codes.Code)
}

// Watchers is the number of live overviews open now: WatchTally calls and
// dashboard pages.
func (s *Server) Watchers() int64 { return s.overviews.Open() }

// Config is what the services need besides the store.
type Config struct {
	Logger *slog.Logger
	Now    func() time.Time
	// OperatorToken is the secret that lets the operator create
	// elections; empty lets no one.
	OperatorToken string
	// Limits bound what one connection may take; zero fields take the
	// defaults.
	Limits Limits
	// CallRefused, when set, is told of every call refused (a code the
	// refusal log lines name), logged or not: for metrics, which count
	// what the rate-limited log leaves out. It must not block.
	CallRefused func(codes.Code)
	// WatchInterval is the least time between two overviews of an
	// election to its watchers (DefaultWatchInterval when 0).
	WatchInterval time.Duration
}

// New returns the services for st.
func New(st *store.Store, cfg Config) *Server {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{store: st, log: cfg.Logger, now: cfg.Now, limits: cfg.Limits.withDefaults(),
		receipts: newAddrLimiter(receiptLookupsPerSecond, receiptLookupBurst, receiptAddresses, cfg.Now), overviews: NewOverviews(st),
		// The wall clock, not cfg.Now: it only spaces out log lines.
		refusals: newRefusalLimiter(cfg.Logger, time.Now, RefusalLogBurst, RefusalLogWindow), callRefused: cfg.CallRefused}
	if cfg.WatchInterval > 0 {
		s.overviews.Interval = cfg.WatchInterval
	}
	if cfg.OperatorToken != "" {
		h := sha256.Sum256([]byte(cfg.OperatorToken))
		s.operator = h[:]
	}
	return s
}

// NewGRPCServer builds the gRPC server with every service registered:
// Doorstep's three, health and reflection (so grpcurl and load balancers
// work), with limits and keepalive suited to phones on mobile links.
//
// The limits keep what a caller can hold bounded before it has proved
// anything: a new connection has HandshakeTimeout to finish TLS and
// HTTP/2's opening, an established one is closed after MaxConnectionIdle
// without a call (or sooner if it stops answering pings), and it may have
// MaxConcurrentStreams calls in flight with MaxHeaderListBytes of metadata
// each. The cap on connections themselves is the listener's
// (internal/connlimit).
func (s *Server) NewGRPCServer(hs *health.Server, opts ...grpc.ServerOption) *grpc.Server {
	gs := grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(signed.MaxMessageBytes),
		grpc.MaxSendMsgSize(signed.MaxMessageBytes),
		grpc.ConnectionTimeout(s.limits.HandshakeTimeout),
		grpc.MaxConcurrentStreams(s.limits.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(MaxHeaderListBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: MaxConnectionIdle,
			// Phones drop off without closing; find out and free the
			// connection: one that does not answer a ping within Timeout
			// is closed, idle or not.
			Time:    60 * time.Second,
			Timeout: 20 * time.Second,
		}),
		// Pings more often than MinTime are abuse (gRPC closes the
		// connection after a few); clients ping every 30 s at most.
		// Pings without a call are allowed, for other gRPC clients: they
		// do not keep a connection from MaxConnectionIdle.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             20 * time.Second,
			PermitWithoutStream: true,
		}),
		grpc.ForceServerCodecV2(wireCodec{}),
		// Most connections are idle most of the time (phones between
		// syncs, watchers between overviews): each takes a write buffer
		// from a shared pool for a flush instead of keeping its own.
		grpc.SharedWriteBuffer(true),
		// Refusals are logged outside the others, so they see the status
		// the caller gets.
		grpc.ChainUnaryInterceptor(s.logRefusalsUnary, s.recoverUnary, s.authUnary),
		grpc.ChainStreamInterceptor(s.logRefusalsStream, s.recoverStream, s.authStream),
	}, opts...)...)
	doorstepv1.RegisterSyncServiceServer(gs, &syncService{s: s})
	doorstepv1.RegisterElectionServiceServer(gs, &electionService{s: s})
	doorstepv1.RegisterAuditServiceServer(gs, &auditService{s: s})
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return gs
}

// recoverUnary keeps one bad request from taking the server down.
func (s *Server) recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "the server hit an internal error and logged it; try again, and tell the operator if it persists")
		}
	}()
	resp, err = handler(ctx, req)
	return resp, toStatus(ctx, s.log, info.FullMethod, err)
}

func (s *Server) recoverStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer func() {
		if r := recover(); r != nil {
			s.log.ErrorContext(ss.Context(), "panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
			err = status.Error(codes.Internal, "the server hit an internal error and logged it; try again, and tell the operator if it persists")
		}
	}()
	return toStatus(ss.Context(), s.log, info.FullMethod, handler(srv, ss))
}

// Page tokens are opaque to clients (AIP-158); inside they are a kind and
// a position.
func encodeToken(kind, pos string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(kind + ":" + pos))
}

func decodeToken(kind, tok string) (string, error) {
	if tok == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < len(kind)+1 || string(b[:len(kind)+1]) != kind+":" {
		return "", status.Error(codes.InvalidArgument, "page_token: not a token this server issued; start again with an empty token")
	}
	return string(b[len(kind)+1:]), nil
}

func pageSize(n int32, def, max int) int {
	switch {
	case n <= 0:
		return def
	case int(n) > max:
		return max
	}
	return int(n)
}

func parseUint(s string) (uint64, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, status.Error(codes.InvalidArgument, "page_token: not a token this server issued; start again with an empty token")
	}
	return v, nil
}
