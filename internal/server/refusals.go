package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
)

// RequestIDKey is the response header (the trailer, for a streaming call)
// that carries the request id of a call the server refused, or whose
// records it refused: the operator's log line for the refusal names the
// same id, so a canvasser's screenshot leads to it.
const RequestIDKey = "doorstep-request-id"

// Refusal log limits: each kind of refusal (a status code, or a record's
// reason) is logged one by one RefusalLogBurst times per
// RefusalLogWindow, then summed up in one line, so that a flood of junk
// cannot fill the disk with log lines. The kinds are bounded by the codes
// and reasons there are.
const (
	RefusalLogBurst  = 20
	RefusalLogWindow = time.Minute
)

// refusalCodes are the answers that refuse what the caller sent or who the
// caller is; the others are the server's trouble or the transport's, and
// logged where they happen (Internal) or not at all (Canceled).
var refusalCodes = map[codes.Code]bool{
	codes.InvalidArgument:    true,
	codes.NotFound:           true,
	codes.AlreadyExists:      true,
	codes.PermissionDenied:   true,
	codes.Unauthenticated:    true,
	codes.ResourceExhausted:  true,
	codes.FailedPrecondition: true,
	codes.OutOfRange:         true,
	codes.Unimplemented:      true,
}

// refusalLimiter decides which refusals are logged one by one: per kind,
// the first burst in each window, then one line saying how many more
// there were, written when the kind next comes after the window.
type refusalLimiter struct {
	log    *slog.Logger
	now    func() time.Time
	burst  int
	window time.Duration

	mu    sync.Mutex
	kinds map[string]*refusalWindow // guarded by mu
}

type refusalWindow struct {
	start  time.Time
	logged int
	more   int64
}

func newRefusalLimiter(log *slog.Logger, now func() time.Time, burst int, window time.Duration) *refusalLimiter {
	return &refusalLimiter{log: log, now: now, burst: burst, window: window, kinds: make(map[string]*refusalWindow)}
}

// allow reports whether this refusal of kind is logged one by one. When a
// window with refusals left unlogged has ended, it first logs how many.
func (l *refusalLimiter) allow(kind string) bool {
	now := l.now()
	l.mu.Lock()
	w := l.kinds[kind]
	var more int64
	if w == nil || now.Sub(w.start) >= l.window || now.Before(w.start) {
		if w != nil {
			more = w.more
		}
		w = &refusalWindow{start: now}
		l.kinds[kind] = w
	}
	ok := w.logged < l.burst
	if ok {
		w.logged++
	} else {
		w.more++
	}
	l.mu.Unlock()
	if more > 0 {
		l.log.Warn("refused, and more not logged one by one", "kind", kind, "more", more, "window", l.window.String())
	}
	return ok
}

// refusalNoter logs the refusals of one call under one request id, made
// when the first is found and sent to the caller with set.
type refusalNoter struct {
	s      *Server
	ctx    context.Context
	method string
	set    func(metadata.MD) error
	id     string
}

func (n *refusalNoter) requestID() string {
	if n.id == "" {
		b := make([]byte, 8)
		rand.Read(b)
		n.id = hex.EncodeToString(b)
		if err := n.set(metadata.Pairs(RequestIDKey, n.id)); err != nil {
			n.s.log.DebugContext(n.ctx, "could not send the request id", "request_id", n.id, "err", err)
		}
	}
	return n.id
}

func (n *refusalNoter) attrs() []any {
	a := []any{"request_id", n.requestID(), "method", shortMethod(n.method)}
	if p, ok := peer.FromContext(n.ctx); ok && p.Addr != nil {
		a = append(a, "peer", p.Addr.String())
	}
	return a
}

// call logs a refused call.
func (n *refusalNoter) call(err error) {
	st, ok := status.FromError(err)
	if !ok || !refusalCodes[st.Code()] {
		return
	}
	n.requestID() // sent even when the line is not logged
	if n.s.callRefused != nil {
		n.s.callRefused(st.Code())
	}
	if !n.s.refusals.allow("call " + strings.ToLower(st.Code().String())) {
		return
	}
	n.s.log.WarnContext(n.ctx, "refused a call", append(n.attrs(), "code", st.Code().String(), "message", st.Message())...)
}

// results logs the records of an answered call that were refused at the
// door or rejected.
func (n *refusalNoter) results(resp any) {
	r, ok := resp.(interface {
		GetResults() []*doorstepv1.RecordResult
	})
	if !ok {
		return
	}
	for _, res := range r.GetResults() {
		if !res.GetRefused() && res.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			continue
		}
		n.requestID()
		kind := "record " + strings.ToLower(strings.TrimPrefix(res.GetReason().String(), "REASON_CODE_"))
		if !n.s.refusals.allow(kind) {
			continue
		}
		what := "rejected a record"
		if res.GetRefused() {
			what = "refused a record at the door"
		}
		n.s.log.WarnContext(n.ctx, what, append(n.attrs(), "record_id", res.GetRecordId(), "reason", res.GetReason().String(),
			"replayed", res.GetReplayed(), "message", res.GetMessage())...)
	}
}

// logRefusalsUnary logs every refusal of a unary call, rate-limited, with
// a request id sent back in a header.
func (s *Server) logRefusalsUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	n := &refusalNoter{s: s, ctx: ctx, method: info.FullMethod, set: func(md metadata.MD) error { return grpc.SetHeader(ctx, md) }}
	if err != nil {
		n.call(err)
	} else {
		n.results(resp)
	}
	return resp, err
}

// logRefusalsStream is logRefusalsUnary for streaming calls; the request
// id goes in the trailer, as the header may have gone.
func (s *Server) logRefusalsStream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	err := handler(srv, ss)
	if err != nil {
		n := &refusalNoter{s: s, ctx: ss.Context(), method: info.FullMethod, set: func(md metadata.MD) error { ss.SetTrailer(md); return nil }}
		n.call(err)
	}
	return err
}
