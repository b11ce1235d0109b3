package server

import "time"

// Defaults of Limits, and the limits that are not settable.
const (
	// DefaultMaxConcurrentStreams is how many calls one connection may
	// have in flight. A device syncs with a handful; the cap bounds the
	// handler goroutines one connection can start (it is also gRPC's
	// defence against HTTP/2 rapid reset).
	DefaultMaxConcurrentStreams = 64
	// DefaultHandshakeTimeout bounds a new connection's TLS handshake and
	// HTTP/2 opening: a phone on a slow link needs a few seconds, and a
	// connection that sends nothing is dropped after it.
	DefaultHandshakeTimeout = 10 * time.Second
	// MaxConnectionIdle closes (by GOAWAY) a connection with no call for
	// this long; the client reconnects on its next call.
	MaxConnectionIdle = 5 * time.Minute
	// MaxHeaderListBytes bounds one call's metadata. Doorstep's own (a
	// call signature, the operator token) is well under 1 KiB; gRPC's
	// default of 16 MiB would let one call hold 16 MiB.
	MaxHeaderListBytes = 8 << 10
)

// Limits bound what one connection may take of the server. Zero fields
// take the defaults.
type Limits struct {
	// MaxConcurrentStreams is the most calls in flight on one connection
	// (DefaultMaxConcurrentStreams). A gRPC client waits for a free one;
	// a client that does not gets its extra streams refused.
	MaxConcurrentStreams uint32
	// HandshakeTimeout bounds a new connection's TLS handshake and HTTP/2
	// opening (DefaultHandshakeTimeout).
	HandshakeTimeout time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxConcurrentStreams == 0 {
		l.MaxConcurrentStreams = DefaultMaxConcurrentStreams
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = DefaultHandshakeTimeout
	}
	return l
}
