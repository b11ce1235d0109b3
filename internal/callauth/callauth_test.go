package callauth

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
)

func testKey(seed string) ed25519.PrivateKey {
	h := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(h[:])
}

func TestCheck(t *testing.T) {
	now := time.Unix(2e9, 0)
	key := testKey("device")
	pub := key.Public().(ed25519.PublicKey)
	s := &Signer{ElectionID: "e1", KeyID: "dv-1", Key: key, Now: func() time.Time { return now }}
	const method = "/doorstep.v1.AuditService/StreamLogEntries"
	req := &doorstepv1.StreamLogEntriesRequest{ElectionId: "e1", Start: 0, End: 2}
	md, err := signedMD(s, method, req)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := RequestHash(req)
	if c, _, err := Check(md, method, h, pub, now); err != nil || c.KeyID != "dv-1" || c.ElectionID != "e1" {
		t.Fatalf("good call: %v %v", c, err)
	}
	other, _ := RequestHash(&doorstepv1.StreamLogEntriesRequest{ElectionId: "e1", Start: 0, End: 0})
	tests := []struct {
		name   string
		md     metadata.MD
		method string
		hash   [32]byte
		pub    ed25519.PublicKey
		now    time.Time
		want   error
	}{
		{"another request", md, method, other, pub, now, ErrBadSig},
		{"another method", md, "/doorstep.v1.ElectionService/GetTally", h, pub, now, ErrBadSig},
		{"another key", md, method, h, testKey("other").Public().(ed25519.PublicKey), now, ErrBadSig},
		{"too old", md, method, h, pub, now.Add(Window + time.Second), ErrExpired},
		{"from the future", md, method, h, pub, now.Add(-Window - time.Second), ErrExpired},
		{"unsigned", metadata.MD{}, method, h, pub, now, ErrMissing},
		{"no nonce", without(md, KeyNonce), method, h, pub, now, ErrMissing},
		{"another nonce", with(md, KeyNonce, "AAAAAAAAAAAAAAAAAAAAAA"), method, h, pub, now, ErrBadSig},
		{"another election", with(md, KeyElecID, "e2"), method, h, pub, now, ErrBadSig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := Check(tt.md, tt.method, tt.hash, tt.pub, tt.now); !errors.Is(err, tt.want) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("every call gets its own nonce", func(t *testing.T) {
		again, _ := signedMD(s, method, req)
		if again.Get(KeyNonce)[0] == md.Get(KeyNonce)[0] {
			t.Error("two calls share a nonce")
		}
	})
}

func with(md metadata.MD, k, v string) metadata.MD {
	c := md.Copy()
	c.Set(k, v)
	return c
}

func without(md metadata.MD, k string) metadata.MD {
	c := md.Copy()
	delete(c, k)
	return c
}

func TestReplays(t *testing.T) {
	now := time.Unix(2e9, 0)
	r := &Replays{Max: 2}
	if err := r.Use("dv-1", "n1", now); err != nil {
		t.Fatal(err)
	}
	if err := r.Use("dv-1", "n1", now.Add(time.Second)); !errors.Is(err, ErrReplay) {
		t.Errorf("the same nonce again: %v; want ErrReplay", err)
	}
	if err := r.Use("dv-2", "n1", now); err != nil {
		t.Errorf("another key's nonce: %v", err)
	}
	if err := r.Use("dv-1", "n2", now); !errors.Is(err, ErrBusy) {
		t.Errorf("a full cache of live nonces: %v; want ErrBusy, not forgetting one", err)
	}
	later := now.Add(2*Window + time.Second)
	if err := r.Use("dv-1", "n2", later); err != nil {
		t.Errorf("after the window the old nonces go: %v", err)
	}
	if err := r.Use("dv-1", "n1", later); err != nil {
		t.Errorf("a nonce past its window is forgotten (its signature has expired anyway): %v", err)
	}
}

// signedMD is the metadata s signs for a call of method with request req.
func signedMD(s *Signer, method string, req any) (metadata.MD, error) {
	h, err := RequestHash(req)
	if err != nil {
		return nil, err
	}
	return s.Metadata(method, h)
}
