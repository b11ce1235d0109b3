// Package client is how everything that calls tallyd dials it and decides
// what a failed call means: connections with settings suited to canvassers'
// phones on flaky mobile links (keepalive pings that notice a dead link,
// bounded message sizes, gRPC's own quick retry of a dropped connection),
// the one table of which gRPC codes are worth retrying (Classify), and the
// one test of whether the server could be reached (Unreachable).
//
// Every Doorstep call is safe to repeat: pushes are idempotent by record
// id, committee records by their place in the committee's chain, and the
// rest only read.
package client

import (
	"encoding/json"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// Config says how to reach tallyd. The zero value speaks TLS and trusts
// the system's certificate authorities, as for a server with a certificate
// for a real domain.
type Config struct {
	// Pin is the pin of the server's TLS certificate (servercert.Pin), as
	// an enrollment code carries it: the connection then trusts exactly
	// that key, and no authority.
	Pin string
	// Plaintext speaks to a server serving plaintext on loopback.
	Plaintext bool
	// Transport, when set, replaces both (tests).
	Transport credentials.TransportCredentials
}

// ForPin is the Config for a server known by its pin, as an enrollment
// code or a saved server carries it: a pin, servercert.Plaintext for a
// plaintext server on loopback, or "" for a certificate from a public
// authority.
func ForPin(pin string) Config {
	if pin == servercert.Plaintext {
		return Config{Plaintext: true}
	}
	return Config{Pin: pin}
}

// New returns a client connection to addr (host:port) with the zero
// Config. See Config.New.
func New(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	return Config{}.New(addr, opts...)
}

// Secure reports whether connections made with c are encrypted.
func (c Config) Secure() bool { return c.Transport != nil || !c.Plaintext }

// New returns a client connection to addr (host:port). It does not connect
// until the first call. opts (per-call credentials, say) are applied after
// the package's own; transport security belongs in c, not opts.
func (c Config) New(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	transport := c.Transport
	switch {
	case transport != nil:
	case c.Plaintext:
		transport = insecure.NewCredentials()
	default:
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			host = addr
		}
		cfg, err := servercert.ClientConfig(c.Pin, host)
		if err != nil {
			return nil, err
		}
		transport = credentials.NewTLS(cfg)
	}
	base := []grpc.DialOption{
		grpc.WithTransportCredentials(transport),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                30 * time.Second,
			Timeout:             10 * time.Second,
			PermitWithoutStream: false,
		}),
		grpc.WithDefaultServiceConfig(serviceConfig),
		// Calls carrying a callauth Signer's option are signed.
		grpc.WithChainUnaryInterceptor(callauth.UnaryClientInterceptor),
		grpc.WithChainStreamInterceptor(callauth.StreamClientInterceptor),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(signed.MaxMessageBytes),
			grpc.MaxCallSendMsgSize(signed.MaxMessageBytes),
		),
	}
	return grpc.NewClient(addr, append(base, opts...)...)
}

// services are the services the retry policy covers: all of Doorstep's.
var services = []string{
	doorstepv1.SyncService_ServiceDesc.ServiceName,
	doorstepv1.ElectionService_ServiceDesc.ServiceName,
	doorstepv1.AuditService_ServiceDesc.ServiceName,
}

// fastRetry are the codes gRPC itself retries within one call, a fraction
// of a second apart, before the caller sees a failure. They are a subset of
// the Transient rows of the table in retry.go, and only Unavailable: a
// dropped or refused connection, which a moment later often works. The
// other Transient codes say the server is busy or in trouble, which wants
// the longer, jittered backoff of the caller's own loop (device.Sync);
// DeadlineExceeded and Canceled end the call's context, so gRPC could not
// retry them anyway.
var fastRetry = []codes.Code{codes.Unavailable}

// serviceConfig is the gRPC service config every connection starts with:
// fastRetry's codes, retried up to three times with backoff.
var serviceConfig = mustServiceConfig(services, fastRetry)

func mustServiceConfig(services []string, retry []codes.Code) string {
	type name struct {
		Service string `json:"service"`
	}
	type retryPolicy struct {
		MaxAttempts       int     `json:"maxAttempts"`
		InitialBackoff    string  `json:"initialBackoff"`
		MaxBackoff        string  `json:"maxBackoff"`
		BackoffMultiplier float64 `json:"backoffMultiplier"`
		// Codes by number: proto3 JSON reads an enum from its number as
		// well as its name.
		RetryableStatusCodes []codes.Code `json:"retryableStatusCodes"`
	}
	type methodConfig struct {
		Name        []name      `json:"name"`
		RetryPolicy retryPolicy `json:"retryPolicy"`
	}
	mc := methodConfig{RetryPolicy: retryPolicy{
		MaxAttempts:          4,
		InitialBackoff:       "0.2s",
		MaxBackoff:           "2s",
		BackoffMultiplier:    2,
		RetryableStatusCodes: retry,
	}}
	for _, s := range services {
		mc.Name = append(mc.Name, name{Service: s})
	}
	b, err := json.Marshal(map[string][]methodConfig{"methodConfig": {mc}})
	if err != nil {
		panic(err)
	}
	return string(b)
}
