package enrollcode

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/servercert"
)

// Prefix starts every enrollment code.
const Prefix = "doorstep:enroll?"

// TokenBytes is the size of a token's random value.
const TokenBytes = 16

// maxCodeLen bounds what Parse reads; a real code is about 150 bytes.
const maxCodeLen = 1024

// maxFingerprintLen bounds the opaque fingerprint string.
const maxFingerprintLen = 128

var tokenEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// Code is what a device needs to enroll.
type Code struct {
	// Server is the tallyd address as the device reaches it, HOST:PORT.
	Server string
	// ElectionID names the election.
	ElectionID string
	// Token is the one-time enrollment token, base32.
	Token string
	// Fingerprint is the server key's fingerprint as the server reports it;
	// compared as an opaque string.
	Fingerprint string
	// TLS is the pin of the server's TLS certificate (servercert.Pin), or
	// servercert.Plaintext for a plaintext server on loopback; empty for a
	// server whose certificate a public authority signed.
	TLS string
}

// Encode renders c as an enrollment code. It does not validate c; Parse does.
func Encode(c Code) string {
	var b strings.Builder
	b.WriteString(Prefix)
	b.WriteString("server=")
	b.WriteString(url.QueryEscape(c.Server))
	b.WriteString("&election=")
	b.WriteString(url.QueryEscape(c.ElectionID))
	b.WriteString("&token=")
	b.WriteString(url.QueryEscape(c.Token))
	b.WriteString("&fp=")
	b.WriteString(url.QueryEscape(c.Fingerprint))
	if c.TLS != "" {
		b.WriteString("&tls=")
		b.WriteString(url.QueryEscape(c.TLS))
	}
	return b.String()
}

// ErrNotACode reports text that is not an enrollment code at all.
var ErrNotACode = errors.New("this is not a doorstep enrollment code: it should start with " + Prefix + "; ask the election committee for the code again")

// Parse reads an enrollment code. Surrounding white space is ignored (a
// pasted code often carries a newline). The token is returned in its
// canonical upper-case spelling.
func Parse(s string) (Code, error) {
	s = strings.TrimSpace(s)
	if len(s) > maxCodeLen {
		return Code{}, fmt.Errorf("enrollment code is %d bytes, longer than any real code (%d): %w", len(s), maxCodeLen, ErrNotACode)
	}
	query, ok := strings.CutPrefix(s, Prefix)
	if !ok {
		return Code{}, ErrNotACode
	}
	var c Code
	seen := map[string]bool{}
	for part := range strings.SplitSeq(query, "&") {
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return Code{}, fmt.Errorf("enrollment code: bad escape in parameter name %q: %w", k, err)
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return Code{}, fmt.Errorf("enrollment code: bad escape in %s: %w", key, err)
		}
		if seen[key] {
			return Code{}, fmt.Errorf("enrollment code: %s appears twice; ask the committee for the code again", key)
		}
		seen[key] = true
		switch key {
		case "server":
			c.Server = val
		case "election":
			c.ElectionID = val
		case "token":
			c.Token = strings.ToUpper(val)
		case "fp":
			c.Fingerprint = val
		case "tls":
			c.TLS = val
		default:
			return Code{}, fmt.Errorf("enrollment code: unknown parameter %q; is this doorstep older than the committee's?", key)
		}
	}
	if err := c.Validate(); err != nil {
		return Code{}, err
	}
	// Base32 leaves two spare bits in the last letter; re-encoding gives
	// every token exactly one spelling, the one the grant hashed.
	b, _ := decodeToken(c.Token)
	c.Token = tokenEncoding.EncodeToString(b)
	return c, nil
}

// Validate checks every field of c.
func (c Code) Validate() error {
	if err := checkServer(c.Server); err != nil {
		return err
	}
	if err := election.CheckID("election", c.ElectionID); err != nil {
		return fmt.Errorf("enrollment code: %w", err)
	}
	if _, err := decodeToken(c.Token); err != nil {
		return fmt.Errorf("enrollment code: %w", err)
	}
	if c.Fingerprint == "" {
		return errors.New("enrollment code: fp (the server key fingerprint) is missing; without it the device cannot check the server")
	}
	if len(c.Fingerprint) > maxFingerprintLen {
		return fmt.Errorf("enrollment code: fp is %d bytes; at most %d", len(c.Fingerprint), maxFingerprintLen)
	}
	if err := election.CheckID("fp", c.Fingerprint); err != nil {
		return fmt.Errorf("enrollment code: %w", err)
	}
	if c.TLS != "" && c.TLS != servercert.Plaintext {
		if err := servercert.CheckPin(c.TLS); err != nil {
			return fmt.Errorf("enrollment code: tls: %w", err)
		}
	}
	return nil
}

func checkServer(s string) error {
	if s == "" {
		return errors.New("enrollment code: server is missing")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("enrollment code: server %q is not HOST:PORT: %w", s, err)
	}
	if host == "" || strings.ContainsAny(host, " \t\r\n/?#@") {
		return fmt.Errorf("enrollment code: server %q has no usable host", s)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != port {
		return fmt.Errorf("enrollment code: server %q: port must be a number from 1 to 65535", s)
	}
	return nil
}

// NewToken returns a new token of TokenBytes random bytes read from rand
// (crypto/rand.Reader outside tests).
func NewToken(rand io.Reader) (string, error) {
	b := make([]byte, TokenBytes)
	if _, err := io.ReadFull(rand, b); err != nil {
		return "", fmt.Errorf("make enrollment token: %w", err)
	}
	return tokenEncoding.EncodeToString(b), nil
}

// TokenHash is what an enrollment grant records of a token: the SHA-256 of
// the token's canonical text (upper-case base32, as NewToken makes it and
// Parse returns it), which is also what tallyd hashes when a device sends
// the token. A token in another letter case is canonicalised first.
func TokenHash(token string) ([]byte, error) {
	b, err := decodeToken(token)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(tokenEncoding.EncodeToString(b)))
	return sum[:], nil
}

func decodeToken(token string) ([]byte, error) {
	if token == "" {
		return nil, errors.New("token is missing")
	}
	b, err := tokenEncoding.DecodeString(strings.ToUpper(token))
	if err != nil || len(b) != TokenBytes {
		return nil, fmt.Errorf("token %q is not %d bytes of base32; copy the whole code again", token, TokenBytes)
	}
	return b, nil
}
