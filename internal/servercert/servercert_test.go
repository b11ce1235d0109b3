package servercert_test

import (
	"crypto/rand"
	"crypto/tls"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/servercert"
)

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	c1, created, err := servercert.LoadOrCreate(dir, []string{"vote.example.org"}, now, rand.Reader)
	if err != nil || !created {
		t.Fatalf("first start: created %v, %v", created, err)
	}
	c2, created, err := servercert.LoadOrCreate(dir, nil, now, rand.Reader)
	if err != nil || created {
		t.Fatalf("second start: created %v, %v", created, err)
	}
	p1, _ := servercert.LeafPin(c1)
	p2, _ := servercert.LeafPin(c2)
	if p1 != p2 || servercert.CheckPin(p1) != nil {
		t.Fatalf("pins %q and %q: the certificate must survive a restart", p1, p2)
	}
	if st, err := os.Stat(filepath.Join(dir, servercert.KeyFile)); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v mode %v; want 0600", err, st.Mode())
	}

	t.Run("key open to others", func(t *testing.T) {
		os.Chmod(filepath.Join(dir, servercert.KeyFile), 0o644)
		defer os.Chmod(filepath.Join(dir, servercert.KeyFile), 0o600)
		if _, _, err := servercert.LoadOrCreate(dir, nil, now, rand.Reader); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("got %v; want a refusal saying how to fix it", err)
		}
	})
	t.Run("certificate without its key", func(t *testing.T) {
		d := t.TempDir()
		b, _ := os.ReadFile(filepath.Join(dir, servercert.CertFile))
		os.WriteFile(filepath.Join(d, servercert.CertFile), b, 0o644)
		if _, _, err := servercert.LoadOrCreate(d, nil, now, rand.Reader); err == nil || !strings.Contains(err.Error(), "restore the key") {
			t.Fatalf("got %v; want a refusal (a new key would strand enrolled devices)", err)
		}
	})
}

func TestPinnedHandshake(t *testing.T) {
	cert, _, err := servercert.LoadOrCreate(t.TempDir(), nil, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pin, _ := servercert.LeafPin(cert)
	other, _, err := servercert.LoadOrCreate(t.TempDir(), nil, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPin, _ := servercert.LeafPin(other)
	lis, err := tls.Listen("tcp", "127.0.0.1:0", servercert.ServerConfig(cert))
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	go func() {
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	tests := []struct {
		name    string
		pin     string
		host    string
		wantErr string
	}{
		{"the pinned key", pin, "anything.example", ""},
		{"another server's key", otherPin, "localhost", "not the one this machine was given"},
		{"no pin: system authorities", "", "localhost", "certificate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := servercert.ClientConfig(tt.pin, tt.host)
			if err != nil {
				t.Fatal(err)
			}
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", lis.Addr().String(), cfg)
			if err == nil {
				c.Close()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("handshake: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("handshake: %v; want an error with %q", err, tt.wantErr)
			}
			if tt.pin == otherPin && !errors.Is(err, servercert.ErrPinMismatch) {
				t.Errorf("a pin mismatch is not ErrPinMismatch: %v", err)
			}
		})
	}
	if _, err := servercert.ClientConfig("sha1/abc", ""); err == nil {
		t.Error("a malformed pin was taken")
	}
}
