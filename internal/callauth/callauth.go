// Package callauth signs calls to tallyd and checks them. A signed call
// carries, in gRPC metadata, the caller's key id and election, its clock,
// a fresh nonce and an Ed25519 signature over those, the method, and the
// SHA-256 of the request message (api/SPEC.md section 5): a signature
// captured from one call is good for that request only, once, for a short
// window either side of the server's clock.
//
// A client dialed through package client has the interceptors that sign;
// a call is signed when it carries a Signer's CallOption (per call, or as
// the connection's default call option).
package callauth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/doorstep-vote/doorstep/internal/zip215"
)

// Metadata keys carried on every signed call.
const (
	KeyID     = "doorstep-key-id"
	KeyTime   = "doorstep-time"
	KeyNonce  = "doorstep-nonce"
	KeySig    = "doorstep-signature"
	KeyElecID = "doorstep-election-id"
)

// OperatorTokenKey is the metadata key of the operator's token, which
// creating an election needs (the server's operator made it on first
// start; it is a bearer secret, sent only over TLS or on loopback).
const OperatorTokenKey = "doorstep-operator-token"

// Operator returns a call option that carries the operator's token.
func Operator(token string) grpc.CallOption {
	return grpc.PerRPCCredentials(operatorToken(token))
}

type operatorToken string

func (t operatorToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{OperatorTokenKey: string(t)}, nil
}

// RequireTransportSecurity is false so that the loopback plaintext of
// tests works; tallyd serves plaintext nowhere else.
func (operatorToken) RequireTransportSecurity() bool { return false }

// Window is how far a call's time may differ from the server's clock.
// Clients correct their clock by the offset they measured at their last
// sync, so it only has to cover drift since then and the call's own trip.
const Window = 2 * time.Minute

// NonceBytes is the size of a call's random nonce.
const NonceBytes = 16

const prefix = "doorstep-call-v2\n"

// Errors returned by Check.
var (
	ErrMissing = errors.New("the call is not signed: enroll this device or use the committee key")
	ErrExpired = errors.New("the call's signature is too old or too far in the future: check this machine's clock")
	ErrBadSig  = errors.New("the call's signature does not match the caller's key and the request")
	ErrReplay  = errors.New("the call's signature was already used: a signature is good for one call only")
)

// Message is the text a call signature covers.
func Message(electionID, keyID, method string, ms int64, nonce string, reqHash [32]byte) []byte {
	return []byte(prefix + electionID + "\n" + keyID + "\n" + method + "\n" + strconv.FormatInt(ms, 10) + "\n" + nonce + "\n" + hex.EncodeToString(reqHash[:]))
}

// RequestHash is the SHA-256 of a request message in its deterministic
// binary encoding: fields in number order, no defaults, as every proto3
// library encodes a message it built itself.
func RequestHash(req any) ([32]byte, error) {
	m, ok := req.(proto.Message)
	if !ok {
		return [32]byte{}, fmt.Errorf("callauth: request %T is not a protobuf message", req)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return [32]byte{}, fmt.Errorf("callauth: encode request: %w", err)
	}
	return sha256.Sum256(b), nil
}

// Signer signs calls with one key.
type Signer struct {
	ElectionID string
	KeyID      string // device id, "committee", or auditor id
	Key        ed25519.PrivateKey
	// Now is the caller's clock, corrected by its measured offset from the
	// server's where it has one; time.Now when nil.
	Now func() time.Time
	// Rand makes nonces; crypto/rand when nil.
	Rand io.Reader
}

// Metadata returns the signed metadata of a call of method whose request
// has hash reqHash (RequestHash), for a caller that sends requests already
// encoded.
func (s *Signer) Metadata(method string, reqHash [32]byte) (metadata.MD, error) {
	h := reqHash
	now, r := s.Now, s.Rand
	if now == nil {
		now = time.Now
	}
	if r == nil {
		r = rand.Reader
	}
	var nb [NonceBytes]byte
	if _, err := io.ReadFull(r, nb[:]); err != nil {
		return nil, fmt.Errorf("callauth: make nonce: %w", err)
	}
	nonce := base64.RawURLEncoding.EncodeToString(nb[:])
	ms := now().UnixMilli()
	sig := ed25519.Sign(s.Key, Message(s.ElectionID, s.KeyID, method, ms, nonce, h))
	return metadata.Pairs(
		KeyElecID, s.ElectionID,
		KeyID, s.KeyID,
		KeyTime, strconv.FormatInt(ms, 10),
		KeyNonce, nonce,
		KeySig, base64.RawStdEncoding.EncodeToString(sig),
	), nil
}

// CallOption makes a call signed by s; as a connection's default call
// option it signs every call.
func (s *Signer) CallOption() grpc.CallOption { return signOption{s: s} }

type signOption struct {
	grpc.EmptyCallOption
	s *Signer
}

func signerOf(opts []grpc.CallOption) *Signer {
	var s *Signer
	for _, o := range opts {
		if so, ok := o.(signOption); ok {
			s = so.s // the last one given wins, as for other call options
		}
	}
	return s
}

// UnaryClientInterceptor signs unary calls that carry a Signer's
// CallOption.
func UnaryClientInterceptor(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if s := signerOf(opts); s != nil {
		h, err := RequestHash(req)
		if err != nil {
			return err
		}
		opts = append(opts, signEachAttempt(s, method, h, opts))
	}
	return invoker(ctx, method, req, reply, cc, opts...)
}

// attemptSigner signs each attempt of a call afresh. gRPC retries a call
// whose connection dropped (client.fastRetry) below the interceptors; had
// the retry carried the first attempt's signature, a server that saw the
// first attempt would refuse it as a replay, and a flaky link, the very
// case the retry is for, would end the sync with "already used". gRPC asks
// per-call credentials for metadata on every attempt.
type attemptSigner struct {
	s      *Signer
	method string
	hash   [32]byte
	// also are the call's own per-call credentials (the operator's token),
	// which a call may carry only one of: the signer sends theirs too.
	also credentials.PerRPCCredentials
}

// signEachAttempt is the call option that signs each attempt of a call.
func signEachAttempt(s *Signer, method string, hash [32]byte, opts []grpc.CallOption) grpc.CallOption {
	a := attemptSigner{s: s, method: method, hash: hash}
	for _, o := range opts {
		if c, ok := o.(grpc.PerRPCCredsCallOption); ok {
			a.also = c.Creds // the last one given wins, as in gRPC
		}
	}
	return grpc.PerRPCCredentials(a)
}

func (a attemptSigner) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	md, err := a.s.Metadata(a.method, a.hash)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(md)+1)
	if a.also != nil {
		more, err := a.also.GetRequestMetadata(ctx, uri...)
		if err != nil {
			return nil, err
		}
		for k, v := range more {
			out[k] = v
		}
	}
	for k, v := range md {
		out[k] = v[0]
	}
	return out, nil
}

// RequireTransportSecurity is false so that the loopback plaintext of
// tests works; tallyd serves plaintext nowhere else.
func (a attemptSigner) RequireTransportSecurity() bool {
	return a.also != nil && a.also.RequireTransportSecurity()
}

// StreamClientInterceptor signs server-streaming calls that carry a
// Signer's CallOption: the stream opens when its one request is sent, as
// the signature covers it.
func StreamClientInterceptor(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	s := signerOf(opts)
	if s == nil {
		return streamer(ctx, desc, cc, method, opts...)
	}
	if desc.ClientStreams {
		return nil, fmt.Errorf("callauth: %s streams requests; a signed call covers one request", method)
	}
	return &lazyStream{ctx: ctx, open: func(ctx context.Context, hash [32]byte) (grpc.ClientStream, error) {
		return streamer(ctx, desc, cc, method, append(opts, signEachAttempt(s, method, hash, opts))...)
	}, signer: s, method: method}, nil
}

// lazyStream opens the real stream when the request is sent.
type lazyStream struct {
	ctx    context.Context
	open   func(ctx context.Context, reqHash [32]byte) (grpc.ClientStream, error)
	signer *Signer
	method string
	cs     grpc.ClientStream
	err    error
}

func (l *lazyStream) SendMsg(m any) error {
	if l.cs != nil {
		return l.cs.SendMsg(m)
	}
	h, err := RequestHash(m)
	if err == nil {
		l.cs, err = l.open(l.ctx, h)
	}
	if err != nil {
		l.err = err
		return err
	}
	return l.cs.SendMsg(m)
}

func (l *lazyStream) RecvMsg(m any) error {
	if l.cs == nil {
		return l.notOpen()
	}
	return l.cs.RecvMsg(m)
}

func (l *lazyStream) notOpen() error {
	if l.err != nil {
		return l.err
	}
	return errors.New("callauth: the stream's request was not sent")
}

func (l *lazyStream) Header() (metadata.MD, error) {
	if l.cs == nil {
		return nil, l.notOpen()
	}
	return l.cs.Header()
}

func (l *lazyStream) Trailer() metadata.MD {
	if l.cs == nil {
		return nil
	}
	return l.cs.Trailer()
}

func (l *lazyStream) CloseSend() error {
	if l.cs == nil {
		return l.notOpen()
	}
	return l.cs.CloseSend()
}

func (l *lazyStream) Context() context.Context {
	if l.cs == nil {
		return l.ctx
	}
	return l.cs.Context()
}

// Caller is a checked identity.
type Caller struct {
	ElectionID string
	KeyID      string
}

// Claimed reads the identity a call claims, before checking it.
func Claimed(md metadata.MD) (Caller, bool) {
	e, k := first(md, KeyElecID), first(md, KeyID)
	if e == "" || k == "" {
		return Caller{}, false
	}
	return Caller{ElectionID: e, KeyID: k}, true
}

// Check verifies a call's signature with pub for method and the request
// whose hash is reqHash, at the server's time now, and returns the caller
// and the nonce (for the caller to refuse again within the window; see
// Replays).
func Check(md metadata.MD, method string, reqHash [32]byte, pub ed25519.PublicKey, now time.Time) (Caller, string, error) {
	c, ok := Claimed(md)
	if !ok {
		return Caller{}, "", ErrMissing
	}
	ms, err := strconv.ParseInt(first(md, KeyTime), 10, 64)
	if err != nil {
		return Caller{}, "", ErrMissing
	}
	nonce := first(md, KeyNonce)
	if nb, err := base64.RawURLEncoding.DecodeString(nonce); err != nil || len(nb) != NonceBytes {
		return Caller{}, "", ErrMissing
	}
	t := time.UnixMilli(ms)
	if t.Before(now.Add(-Window)) || t.After(now.Add(Window)) {
		return Caller{}, "", ErrExpired
	}
	sig, err := base64.RawStdEncoding.DecodeString(first(md, KeySig))
	if err != nil || !zip215.Verify(pub, Message(c.ElectionID, c.KeyID, method, ms, nonce, reqHash), sig) {
		return Caller{}, "", ErrBadSig
	}
	return c, nonce, nil
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}
