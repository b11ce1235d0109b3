// Package servercert gives tallyd its TLS certificate and lets clients
// trust it without a certificate authority. On first start tallyd makes a
// key of its own for TLS (ECDSA P-256, which every TLS stack and browser
// accepts; browsers do not accept Ed25519 certificates) and a self-signed
// certificate for it, kept in the data folder. Clients pin the
// certificate's public key: the enrollment code carries the pin, so a
// device trusts exactly the server the committee enrolled it with, and a
// certificate from a public authority given with --tls-cert works the
// same way (browsers then trust it too).
//
// The TLS key is not the server's identity key, which signs checkpoints:
// the identity must outlive any certificate, and a certificate for a real
// domain comes with a key of its own.
package servercert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/doorstep-vote/doorstep/internal/atomicfile"
)

// Files in the data folder.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
)

// validity of a self-made certificate: clients pin its key, so its dates
// only need to satisfy TLS stacks that check them.
const validity = 20 * 365 * 24 * time.Hour

// PinPrefix starts every pin.
const PinPrefix = "sha256/"

// LoadOrCreate returns the certificate kept in dir, making a key and a
// self-signed certificate for it on first start (created is then true).
// names are the DNS names and IP addresses the certificate names; clients
// that pin do not need them, but tools that only check names (grpcurl with
// -cacert) do.
func LoadOrCreate(dir string, names []string, now time.Time, random io.Reader) (cert tls.Certificate, created bool, err error) {
	certPath, keyPath := filepath.Join(dir, CertFile), filepath.Join(dir, KeyFile)
	cert, err = LoadFiles(certPath, keyPath)
	if err == nil {
		return cert, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return tls.Certificate{}, false, err
	}
	if _, serr := os.Stat(certPath); serr == nil {
		return tls.Certificate{}, false, fmt.Errorf("%s is there but %s is not: restore the key from a backup, or remove both to make a new certificate (devices enrolled with the old one must then be enrolled again)", certPath, keyPath)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), random)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("make TLS key: %w", err)
	}
	der, err := selfSigned(key, names, now, random)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return tls.Certificate{}, false, fmt.Errorf("encode TLS key: %w", err)
	}
	// The key first: a certificate without its key is the state above,
	// which asks the operator to decide.
	if err := atomicfile.WriteNew(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("save TLS key: %w", err)
	}
	if err := atomicfile.WriteNew(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})); err != nil {
		return tls.Certificate{}, false, fmt.Errorf("save TLS certificate: %w", err)
	}
	cert, err = LoadFiles(certPath, keyPath)
	return cert, err == nil, err
}

func selfSigned(key *ecdsa.PrivateKey, names []string, now time.Time, random io.Reader) ([]byte, error) {
	serial, err := randSerial(random)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "doorstep tallyd"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true, // so that grpcurl -cacert can take it as its own root
	}
	for _, n := range append([]string{"localhost", "127.0.0.1", "::1"}, names...) {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if n != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("make TLS certificate: %w", err)
	}
	return der, nil
}

func randSerial(random io.Reader) (*big.Int, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(random, b); err != nil {
		return nil, fmt.Errorf("make certificate serial: %w", err)
	}
	b[0] &= 0x7f
	return new(big.Int).SetBytes(b), nil
}

// LoadFiles reads a PEM certificate (chain) and its key, as tallyd's own or
// as given with --tls-cert and --tls-key. The key file must not be open to
// other users. Its error wraps fs.ErrNotExist when a file is missing.
func LoadFiles(certFile, keyFile string) (tls.Certificate, error) {
	if st, err := os.Stat(keyFile); err != nil {
		return tls.Certificate{}, err
	} else if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return tls.Certificate{}, fmt.Errorf("%s has mode %04o: others may read the TLS key; run `chmod 600 %s`", keyFile, st.Mode().Perm(), keyFile)
	}
	if _, err := os.Stat(certFile); err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("TLS certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// Pin is the pin of a certificate: "sha256/" and the unpadded URL-safe
// base64 of the SHA-256 of its SubjectPublicKeyInfo. It names the key, so
// it survives a certificate renewed with the same key.
func Pin(cert *x509.Certificate) string {
	h := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return PinPrefix + base64.RawURLEncoding.EncodeToString(h[:])
}

// LeafPin is the pin of a loaded certificate's leaf.
func LeafPin(c tls.Certificate) (string, error) {
	if len(c.Certificate) == 0 {
		return "", errors.New("the TLS certificate is empty")
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return "", fmt.Errorf("read TLS certificate: %w", err)
	}
	return Pin(leaf), nil
}

// CheckPin validates a pin's form.
func CheckPin(pin string) error {
	b64, ok := strings.CutPrefix(pin, PinPrefix)
	if !ok {
		return fmt.Errorf("%q is not a TLS pin: it starts with %s", pin, PinPrefix)
	}
	if b, err := base64.RawURLEncoding.DecodeString(b64); err != nil || len(b) != sha256.Size {
		return fmt.Errorf("%q is not a TLS pin: %s and the base64 of a SHA-256 hash", pin, PinPrefix)
	}
	return nil
}

// ErrPinMismatch reports a server whose certificate is not the pinned one.
var ErrPinMismatch = errors.New("the server's TLS certificate is not the one this machine was given: it may not be the committee's server; do not go on, and tell the election committee")

// ClientConfig is the TLS configuration of a client that trusts exactly the
// server whose certificate key has pin, whatever names the certificate
// carries and whoever signed it. With no pin, the usual checks against the
// system's certificate authorities apply.
func ClientConfig(pin, serverName string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if pin == "" {
		return cfg, nil
	}
	if err := CheckPin(pin); err != nil {
		return nil, err
	}
	// The pin replaces name and chain checks, so they are skipped, and the
	// leaf is checked here instead, on every handshake.
	cfg.InsecureSkipVerify = true
	cfg.VerifyConnection = func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return ErrPinMismatch
		}
		if got := Pin(cs.PeerCertificates[0]); got != pin {
			return fmt.Errorf("%w (it has %s, this machine expects %s)", ErrPinMismatch, got, pin)
		}
		return nil
	}
	return cfg, nil
}

// ServerConfig is tallyd's TLS configuration for cert.
func ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

