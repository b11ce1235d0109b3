package callauth_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

func sign(t *testing.T, c *callauth.Credentials, method string) metadata.MD {
	t.Helper()
	ctx := credentials.NewContextWithRequestInfo(context.Background(), credentials.RequestInfo{Method: method})
	m, err := c.GetRequestMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return metadata.New(m)
}

func TestCheck(t *testing.T) {
	now := time.Unix(2e9, 0)
	key := signedtest.NewKey("device")
	pub := key.Public().(ed25519.PublicKey)
	creds := &callauth.Credentials{ElectionID: "e1", KeyID: "dv-1", Key: key, Now: func() time.Time { return now }, Insecure: true}
	md := sign(t, creds, "/doorstep.v1.SyncService/GetDeviceState")
	if c, err := callauth.Check(md, "/doorstep.v1.SyncService/GetDeviceState", pub, now); err != nil || c.KeyID != "dv-1" || c.ElectionID != "e1" {
		t.Fatalf("good call: %v %v", c, err)
	}
	other := signedtest.NewKey("other").Public().(ed25519.PublicKey)
	tests := []struct {
		name   string
		md     metadata.MD
		method string
		pub    []byte
		now    time.Time
		want   error
	}{
		{"other method", md, "/doorstep.v1.ElectionService/GetTally", pub, now, callauth.ErrBadSig},
		{"other key", md, "/doorstep.v1.SyncService/GetDeviceState", other, now, callauth.ErrBadSig},
		{"too old", md, "/doorstep.v1.SyncService/GetDeviceState", pub, now.Add(callauth.Window + time.Second), callauth.ErrExpired},
		{"from the future", md, "/doorstep.v1.SyncService/GetDeviceState", pub, now.Add(-callauth.Window - time.Second), callauth.ErrExpired},
		{"unsigned", metadata.MD{}, "/x", pub, now, callauth.ErrMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := callauth.Check(tt.md, tt.method, tt.pub, tt.now); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	// Claiming another election fails the signature.
	forged := md.Copy()
	forged.Set(callauth.KeyElecID, "e2")
	if _, err := callauth.Check(forged, "/doorstep.v1.SyncService/GetDeviceState", pub, now); !errors.Is(err, callauth.ErrBadSig) {
		t.Errorf("forged election: %v", err)
	}
}
