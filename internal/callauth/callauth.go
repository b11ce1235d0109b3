// Package callauth signs and checks the identity of read calls. Writes are
// signed records and need nothing more; reads (the tally for the committee,
// unit status for a device) carry a signature over the method name and the
// time in gRPC metadata, made with the caller's ed25519 key. A signature is
// good for a short window either side of the server's clock.
package callauth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strconv"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/doorstep-vote/doorstep/internal/zip215"
)

// Metadata keys carried on every authenticated call.
const (
	KeyID     = "doorstep-key-id"
	KeyTime   = "doorstep-time"
	KeySig    = "doorstep-signature"
	KeyElecID = "doorstep-election-id"
)

// Window is how far a call's time may differ from the server's clock.
const Window = 5 * time.Minute

const prefix = "doorstep-call-v1\n"

// Errors returned by Check.
var (
	ErrMissing = errors.New("the call is not signed: enroll this device or use the committee key")
	ErrExpired = errors.New("the call's signature is too old or too far in the future: check this machine's clock")
	ErrBadSig  = errors.New("the call's signature does not match the caller's key")
)

func message(electionID, keyID, method string, ms int64) []byte {
	return []byte(prefix + electionID + "\n" + keyID + "\n" + method + "\n" + strconv.FormatInt(ms, 10))
}

// Credentials signs calls with one key; it implements
// grpc.PerRPCCredentials, so a client passes it with grpc.WithPerRPCCredentials.
type Credentials struct {
	ElectionID string
	KeyID      string // device id, or "committee"
	Key        ed25519.PrivateKey
	Now        func() time.Time
	// Insecure allows plaintext connections (loopback, tests).
	Insecure bool
}

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (c *Credentials) GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error) {
	method, ok := methodFromContext(ctx)
	if !ok {
		return nil, errors.New("callauth: no method in context")
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	ms := now().UnixMilli()
	sig := ed25519.Sign(c.Key, message(c.ElectionID, c.KeyID, method, ms))
	return map[string]string{
		KeyElecID: c.ElectionID,
		KeyID:     c.KeyID,
		KeyTime:   strconv.FormatInt(ms, 10),
		KeySig:    base64.RawStdEncoding.EncodeToString(sig),
	}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (c *Credentials) RequireTransportSecurity() bool { return !c.Insecure }

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

// Check verifies the call's signature with pub for the given method.
func Check(md metadata.MD, method string, pub ed25519.PublicKey, now time.Time) (Caller, error) {
	c, ok := Claimed(md)
	if !ok {
		return Caller{}, ErrMissing
	}
	ms, err := strconv.ParseInt(first(md, KeyTime), 10, 64)
	if err != nil {
		return Caller{}, ErrMissing
	}
	t := time.UnixMilli(ms)
	if t.Before(now.Add(-Window)) || t.After(now.Add(Window)) {
		return Caller{}, ErrExpired
	}
	sig, err := base64.RawStdEncoding.DecodeString(first(md, KeySig))
	// The same rule as record signatures (ZIP-215, api/SPEC.md section 1).
	if err != nil || !zip215.Verify(pub, message(c.ElectionID, c.KeyID, method, ms), sig) {
		return Caller{}, ErrBadSig
	}
	return c, nil
}

func first(md metadata.MD, k string) string {
	if v := md.Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}
