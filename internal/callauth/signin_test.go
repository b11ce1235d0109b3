package callauth_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

func TestSignInToken(t *testing.T) {
	key := signedtest.NewKey("committee")
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	s := &callauth.Signer{ElectionID: "e-1", KeyID: "committee", Key: key, Now: func() time.Time { return now }}
	tok, err := s.SignInToken()
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) > callauth.MaxTokenBytes || strings.ContainsAny(tok, "#?&/+= ") {
		t.Errorf("token %q: want a short URL-safe string", tok)
	}
	hash, err := callauth.RequestHash(callauth.SignInRequest("e-1"))
	if err != nil {
		t.Fatal(err)
	}
	pub := key.Public().(ed25519.PublicKey)
	md, err := callauth.ParseSignInToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if c, _, err := callauth.Check(md, callauth.SignInMethod, hash, pub, now.Add(time.Minute)); err != nil || c.ElectionID != "e-1" || c.KeyID != "committee" {
		t.Errorf("Check = %+v, %v", c, err)
	}
	for _, tc := range []struct {
		name string
		err  error
		now  time.Time
		hash [32]byte
	}{
		{"past the window", callauth.ErrExpired, now.Add(callauth.Window + time.Second), hash},
		{"for another election", callauth.ErrBadSig, now, func() [32]byte { h, _ := callauth.RequestHash(callauth.SignInRequest("e-2")); return h }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := callauth.Check(md, callauth.SignInMethod, tc.hash, pub, tc.now); !errors.Is(err, tc.err) {
				t.Errorf("Check: %v, want %v", err, tc.err)
			}
		})
	}
	// Any change to what the token says spoils it. (A change to the
	// signature's last base64 character that leaves its bytes as they were
	// says nothing new.)
	sig := func(md metadata.MD) []byte {
		b, _ := base64.RawStdEncoding.DecodeString(md.Get(callauth.KeySig)[0])
		return b
	}
	for i := range len(tok) {
		b := []byte(tok)
		b[i] ^= 1
		md2, err := callauth.ParseSignInToken(string(b))
		if err != nil {
			continue
		}
		if _, _, err := callauth.Check(md2, callauth.SignInMethod, hash, pub, now); err == nil {
			for _, k := range []string{callauth.KeyElecID, callauth.KeyID, callauth.KeyTime, callauth.KeyNonce} {
				if md2.Get(k)[0] != md.Get(k)[0] {
					t.Fatalf("token changed at byte %d (%s) still checks", i, k)
				}
			}
			if !bytes.Equal(sig(md2), sig(md)) {
				t.Fatalf("token changed at byte %d (its signature) still checks", i)
			}
		}
	}
}

func FuzzParseSignInToken(f *testing.F) {
	s := &callauth.Signer{ElectionID: "e-1", KeyID: "committee", Key: signedtest.NewKey("committee")}
	tok, err := s.SignInToken()
	if err != nil {
		f.Fatal(err)
	}
	for _, seed := range []string{tok, "", "e30", "WyIiLCIiLCIiLCIiLCIiXQ", strings.Repeat("A", callauth.MaxTokenBytes+1)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		md, err := callauth.ParseSignInToken(tok)
		if err != nil {
			if !errors.Is(err, callauth.ErrBadToken) {
				t.Fatalf("error %v is not ErrBadToken", err)
			}
			return
		}
		if _, ok := callauth.Claimed(md); !ok {
			t.Fatalf("a parsed token claims no caller: %v", md)
		}
	})
}
