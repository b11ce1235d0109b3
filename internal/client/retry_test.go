package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
)

// lastCode is the highest code gRPC defines.
const lastCode = codes.Unauthenticated

func TestEveryCodeHasARow(t *testing.T) {
	for c := codes.OK; c <= lastCode; c++ {
		if _, ok := classes[c]; !ok {
			t.Errorf("code %v has no row in the retry table", c)
		}
	}
	if len(classes) != int(lastCode)+1 {
		t.Errorf("the retry table has %d rows; want %d, one per code", len(classes), lastCode+1)
	}
}

func TestClassifyCodes(t *testing.T) {
	// The decision, written out again: a change to the table has to change
	// this too.
	want := map[codes.Code]Class{
		codes.OK:                 Permanent,
		codes.Canceled:           Transient, // not the caller's own: see TestClassifyCallerStopped
		codes.Unknown:            Transient,
		codes.InvalidArgument:    Permanent,
		codes.DeadlineExceeded:   Transient,
		codes.NotFound:           Permanent,
		codes.AlreadyExists:      Permanent,
		codes.PermissionDenied:   Permanent,
		codes.ResourceExhausted:  Transient,
		codes.FailedPrecondition: Permanent,
		codes.Aborted:            Transient,
		codes.OutOfRange:         Permanent,
		codes.Unimplemented:      Permanent,
		codes.Internal:           Transient,
		codes.Unavailable:        Transient,
		codes.DataLoss:           Permanent,
		codes.Unauthenticated:    Permanent,
	}
	ctx := context.Background()
	for c := codes.OK; c <= lastCode; c++ {
		t.Run(c.String(), func(t *testing.T) {
			w, ok := want[c]
			if !ok {
				t.Fatalf("the test has no row for %v", c)
			}
			var err error = okStatusError{} // status.Error(OK) is nil
			if c != codes.OK {
				err = status.Error(c, "the server says so")
			}
			if got := Classify(ctx, err); got != w {
				t.Errorf("Classify(%v) = %v; want %v", c, got, w)
			}
			if got := Retryable(ctx, err); got != (w == Transient) {
				t.Errorf("Retryable(%v) = %v; want %v", c, got, w == Transient)
			}
			wrapped := fmt.Errorf("push: %w", fmt.Errorf("batch 3: %w", err))
			if got := Classify(ctx, wrapped); got != w {
				t.Errorf("Classify(wrapped %v) = %v; want %v", c, got, w)
			}
		})
	}
}

// okStatusError is an error that carries status OK: odd, but not to be
// retried.
type okStatusError struct{}

func (okStatusError) Error() string              { return "ok" }
func (okStatusError) GRPCStatus() *status.Status { return status.New(codes.OK, "") }

// timerLate is a context whose deadline has passed but whose timer has not
// fired yet: the server's DeadlineExceeded can arrive in that moment.
type timerLate struct{ context.Context }

func (timerLate) Deadline() (time.Time, bool) { return time.Now().Add(-time.Millisecond), true }

func TestClassifyErrors(t *testing.T) {
	live := context.Background()
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Unix(0, 0))
	defer cancel2()
	unavailable := status.Error(codes.Unavailable, "connection refused")
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want Class
	}{
		{"nil", live, nil, Permanent},
		{"plain error", live, errors.New("disk full"), Permanent},
		{"plain error wrapped", live, fmt.Errorf("read the outbox: %w", errors.New("disk full")), Permanent},
		{"status through two %w", live, fmt.Errorf("a: %w", fmt.Errorf("b: %w", unavailable)), Transient},
		{"status in errors.Join", live, errors.Join(errors.New("other"), unavailable), Transient},
		{"permanent status wrapped", live, fmt.Errorf("push: %w", status.Error(codes.PermissionDenied, "revoked")), Permanent},
		{"UnreachableError", live, &UnreachableError{Server: "a:1", Err: unavailable}, Transient},
		{"UnreachableError wrapped", live, fmt.Errorf("sync: %w", &UnreachableError{Server: "a:1", Err: unavailable}), Transient},
		{"code newer than the table", live, status.Error(codes.Code(99), "?"), Permanent},
		{"nil ctx", nil, unavailable, Transient},
		{"context.Canceled, no status", live, fmt.Errorf("wait: %w", context.Canceled), Stopped},
		{"context.DeadlineExceeded, no status", live, context.DeadlineExceeded, Stopped},
		{"caller cancelled, Canceled", cancelled, status.Error(codes.Canceled, "context canceled"), Stopped},
		{"caller cancelled, Unavailable", cancelled, unavailable, Stopped},
		{"caller cancelled, a refusal", cancelled, status.Error(codes.InvalidArgument, "bad"), Stopped},
		{"caller's deadline passed", expired, status.Error(codes.DeadlineExceeded, "context deadline exceeded"), Stopped},
		{"caller's deadline passed, its timer not yet fired", timerLate{context.Background()}, status.Error(codes.DeadlineExceeded, "from the server"), Stopped},
		{"caller's deadline passed, wrapped", expired, fmt.Errorf("fetch: %w", status.Error(codes.DeadlineExceeded, "x")), Stopped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Classify(tt.ctx, tt.err); got != tt.want {
				t.Errorf("Classify(%v) = %v; want %v", tt.err, got, tt.want)
			}
			if got := Retryable(tt.ctx, tt.err); got != (tt.want == Transient) {
				t.Errorf("Retryable(%v) = %v; want %v", tt.err, got, tt.want == Transient)
			}
		})
	}
}

func TestUnreachable(t *testing.T) {
	for c := codes.OK; c <= lastCode; c++ {
		want := c == codes.Unavailable || c == codes.DeadlineExceeded
		err := status.Error(c, "x")
		if got := Unreachable(err); got != want {
			t.Errorf("Unreachable(%v) = %v; want %v", c, got, want)
		}
		if got := Unreachable(fmt.Errorf("call: %w", err)); got != want {
			t.Errorf("Unreachable(wrapped %v) = %v; want %v", c, got, want)
		}
		// Whatever is unreachable is worth another try.
		if want && classes[c] != Transient {
			t.Errorf("%v is Unreachable but %v in the retry table", c, classes[c])
		}
	}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("disk full"), false},
		{"the caller's deadline, no status", fmt.Errorf("x: %w", context.DeadlineExceeded), false},
		{"UnreachableError", &UnreachableError{Server: "a:1", Err: status.Error(codes.Unavailable, "down")}, true},
		{"UnreachableError wrapped", fmt.Errorf("sync: %w", &UnreachableError{Server: "a:1", Err: errors.New("down")}), true},
	}
	for _, tt := range tests {
		if got := Unreachable(tt.err); got != tt.want {
			t.Errorf("%s: Unreachable(%v) = %v; want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestUnreachableErrorMessage(t *testing.T) {
	err := &UnreachableError{Server: "10.0.0.1:7070", Err: status.Error(codes.Unavailable, "connection refused")}
	if got, want := err.Error(), "cannot reach the server at 10.0.0.1:7070: connection refused"; got != want {
		t.Errorf("Error() = %q; want %q", got, want)
	}
	if status.Code(err) != codes.Unavailable {
		t.Errorf("status.Code = %v; want the wrapped Unavailable", status.Code(err))
	}
}

// TestServiceConfigAgreesWithTable checks the relation stated at
// fastRetry: the codes gRPC retries by itself are exactly fastRetry, every
// one of them is Transient in the table, none ends the caller's context,
// and the policy covers every Doorstep service.
func TestServiceConfigAgreesWithTable(t *testing.T) {
	var cfg struct {
		MethodConfig []struct {
			Name []struct {
				Service string `json:"service"`
			} `json:"name"`
			RetryPolicy struct {
				MaxAttempts          int               `json:"maxAttempts"`
				RetryableStatusCodes []json.RawMessage `json:"retryableStatusCodes"`
			} `json:"retryPolicy"`
		} `json:"methodConfig"`
	}
	if err := json.Unmarshal([]byte(serviceConfig), &cfg); err != nil {
		t.Fatalf("service config: %v\n%s", err, serviceConfig)
	}
	if len(cfg.MethodConfig) != 1 {
		t.Fatalf("service config has %d method configs; want 1:\n%s", len(cfg.MethodConfig), serviceConfig)
	}
	mc := cfg.MethodConfig[0]
	var got []codes.Code
	for _, raw := range mc.RetryPolicy.RetryableStatusCodes {
		var c codes.Code
		// The way gRPC reads it.
		if err := c.UnmarshalJSON(raw); err != nil {
			t.Fatalf("retryableStatusCodes entry %s: %v", raw, err)
		}
		got = append(got, c)
	}
	if !slices.Equal(got, fastRetry) {
		t.Errorf("retryableStatusCodes = %v; want fastRetry %v", got, fastRetry)
	}
	if len(got) == 0 || mc.RetryPolicy.MaxAttempts < 2 {
		t.Errorf("the service config retries nothing: %s", serviceConfig)
	}
	for _, c := range got {
		if classes[c] != Transient {
			t.Errorf("gRPC retries %v, which the table calls %v", c, classes[c])
		}
		if c == codes.Canceled || c == codes.DeadlineExceeded {
			t.Errorf("gRPC cannot retry %v: it ends the call's context", c)
		}
	}

	var named []string
	for _, n := range mc.Name {
		named = append(named, n.Service)
	}
	var all []string
	protoregistry.GlobalFiles.RangeFilesByPackage("doorstep.v1", func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			all = append(all, string(fd.Services().Get(i).FullName()))
		}
		return true
	})
	_ = doorstepv1.File_doorstep_v1_sync_service_proto // registers the package's files
	slices.Sort(named)
	slices.Sort(all)
	if len(all) == 0 || !slices.Equal(named, all) {
		t.Errorf("the retry policy names services %v; doorstep.v1 has %v", named, all)
	}
}
