package device

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/doorstep-vote/doorstep/internal/client"
)

func TestBackoffBounds(t *testing.T) {
	tests := []struct {
		base, max time.Duration
	}{
		{500 * time.Millisecond, time.Minute},
		{time.Minute, time.Hour}, // base<<n overflows int64 long before n reaches 100
		{time.Nanosecond, time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.base, tt.max), func(t *testing.T) {
			d := &Device{
				sopt:   SyncOptions{BackoffBase: tt.base, BackoffMax: tt.max}.withDefaults(),
				jitter: mathrand.New(mathrand.NewPCG(1, 2)),
			}
			ceiling := tt.base
			for n := range 100 {
				w := d.backoff(n)
				if w < ceiling/2 || w > ceiling {
					t.Fatalf("backoff(%d) = %v; want between %v and %v", n, w, ceiling/2, ceiling)
				}
				ceiling = min(ceiling*2, tt.max)
			}
		})
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&client.UnreachableError{Server: "a:1", Err: status.Error(codes.Unavailable, "down")}, true},
		{&callError{what: "push", err: status.Error(codes.Internal, "bug")}, true},
		{fmt.Errorf("sync: %w", &callError{what: "push", err: status.Error(codes.ResourceExhausted, "busy")}), true},
		{&callError{what: "push", err: status.Error(codes.PermissionDenied, "revoked")}, false},
		{&callError{what: "push", err: status.Error(codes.InvalidArgument, "bad")}, false},
		{fmt.Errorf("record 3: %w", ErrChainFork), false},
		{ErrEquivocation, false},
		{errors.New("disk full"), false},
	}
	for _, tt := range tests {
		if got := client.Retryable(context.Background(), tt.err); got != tt.want {
			t.Errorf("client.Retryable(%v) = %v; want %v", tt.err, got, tt.want)
		}
	}
}
