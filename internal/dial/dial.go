// Package dial opens client connections to tallyd with settings suited to
// canvassers' phones on flaky mobile links: keepalive pings that notice a
// dead link, bounded message sizes, and retries of calls that are safe to
// repeat (every Doorstep call is: pushes are idempotent by record id).
package dial

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// MaxMessageBytes bounds any message either way; see api/SPEC.md.
const MaxMessageBytes = 8 << 20

// serviceConfig retries UNAVAILABLE a few times with backoff; the device's
// own sync loop retries further with jitter.
const serviceConfig = `{
  "methodConfig": [{
    "name": [{"service": "doorstep.v1.SyncService"}, {"service": "doorstep.v1.ElectionService"}, {"service": "doorstep.v1.AuditService"}],
    "retryPolicy": {
      "maxAttempts": 4,
      "initialBackoff": "0.2s",
      "maxBackoff": "2s",
      "backoffMultiplier": 2.0,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// New returns a client connection to addr (host:port). It does not connect
// until the first call. Extra options (per-call credentials) are appended.
// Connections are plaintext: tallyd listens on loopback or behind a
// TLS-terminating proxy until TLS pinning lands.
func New(addr string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                30 * time.Second,
			Timeout:             10 * time.Second,
			PermitWithoutStream: false,
		}),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		),
	}
	return grpc.NewClient(addr, append(opts, extra...)...)
}
