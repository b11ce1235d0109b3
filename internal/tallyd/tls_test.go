package tallyd_test

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// TestTLS: tallyd serves TLS by default with a certificate it makes once,
// clients reach it by its pin and by nothing else, plaintext is served
// only on loopback when asked for, and an operator's certificate replaces
// the self-made one.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	start := func(cfg tallyd.Config) (*tallyd.Server, error) {
		cfg.Listen = "127.0.0.1:0"
		return tallyd.Start(context.Background(), cfg)
	}
	info := func(cfg client.Config, addr string) error {
		conn, err := cfg.New(addr)
		if err != nil {
			return err
		}
		defer conn.Close()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = doorstepv1.NewSyncServiceClient(conn).GetServerInfo(c, &doorstepv1.GetServerInfoRequest{})
		return err
	}
	srv, err := start(tallyd.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	pin := srv.Pin()
	if servercert.CheckPin(pin) != nil {
		t.Fatalf("the default server's pin is %q; want a TLS pin", pin)
	}
	if err := info(srv.Client(), srv.Addr()); err != nil {
		t.Errorf("pinned client: %v", err)
	}
	for name, cfg := range map[string]client.Config{
		"plaintext":            {Plaintext: true},
		"system authorities":   {},
		"another server's pin": {Pin: "sha256/47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU"},
	} {
		if err := info(cfg, srv.Addr()); !client.Unreachable(err) {
			t.Errorf("%s client: %v; want the server unreachable to it", name, err)
		}
	}
	srv.Close()
	again, err := start(tallyd.Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if again.Pin() != pin {
		t.Errorf("pin after a restart %s; want %s (devices pinned it)", again.Pin(), pin)
	}
	again.Close()

	t.Run("plaintext only on loopback", func(t *testing.T) {
		_, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: t.TempDir(), Listen: "0.0.0.0:0", Plaintext: true})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("plaintext on all addresses: %v; want a refusal", err)
		}
		p, err := start(tallyd.Config{DataDir: t.TempDir(), Plaintext: true})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if p.Pin() != servercert.Plaintext || info(p.Client(), p.Addr()) != nil {
			t.Errorf("plaintext on loopback: pin %q", p.Pin())
		}
	})
	t.Run("the operator's certificate", func(t *testing.T) {
		certDir := t.TempDir()
		cert, _, err := servercert.LoadOrCreate(certDir, []string{"vote.example.org"}, time.Now(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := servercert.LeafPin(cert)
		data := t.TempDir()
		s, err := start(tallyd.Config{DataDir: data, TLSCert: filepath.Join(certDir, servercert.CertFile), TLSKey: filepath.Join(certDir, servercert.KeyFile)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if s.Pin() != want {
			t.Errorf("pin %s; want the given certificate's %s", s.Pin(), want)
		}
		if _, err := os.Stat(filepath.Join(data, servercert.CertFile)); err == nil {
			t.Error("tallyd made a certificate of its own although it was given one")
		}
		if _, err := start(tallyd.Config{DataDir: t.TempDir(), TLSCert: filepath.Join(certDir, servercert.CertFile)}); err == nil {
			t.Error("a certificate without its key was taken")
		}
	})
}
