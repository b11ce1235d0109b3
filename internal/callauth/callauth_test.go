package callauth_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
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
		{"short key", md, "/doorstep.v1.SyncService/GetDeviceState", pub[:31], now, callauth.ErrBadSig},
		{"short signature", withSig(md, decode64(t, md.Get(callauth.KeySig)[0])[:63]), "/doorstep.v1.SyncService/GetDeviceState", pub, now, callauth.ErrBadSig},
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

func decode64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func withSig(md metadata.MD, sig []byte) metadata.MD {
	md = md.Copy()
	md.Set(callauth.KeySig, base64.RawStdEncoding.EncodeToString(sig))
	return md
}

// TestCheckUsesTheRecordRule: call signatures are checked under ZIP-215,
// as records are, not crypto/ed25519's cofactorless rule. The signature
// (R = identity, S = 0) under a key of order 8 satisfies the cofactored
// equation for any message; crypto/ed25519 rejects it for this one.
func TestCheckUsesTheRecordRule(t *testing.T) {
	pub, _ := hex.DecodeString("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
	sig := make([]byte, ed25519.SignatureSize)
	sig[0] = 1 // R: the identity point
	now := time.UnixMilli(2e12)
	md := metadata.New(map[string]string{
		callauth.KeyElecID: "e1",
		callauth.KeyID:     "dv-1",
		callauth.KeyTime:   "2000000000000",
	})
	md = withSig(md, sig)
	const method = "/doorstep.v1.SyncService/GetDeviceState"
	if ed25519.Verify(pub, []byte("doorstep-call-v1\ne1\ndv-1\n"+method+"\n2000000000000"), sig) {
		t.Fatal("crypto/ed25519 accepts this case: it does not tell the rules apart")
	}
	if _, err := callauth.Check(md, method, pub, now); err != nil {
		t.Errorf("Check: %v; want the ZIP-215 answer, accepted", err)
	}
}
