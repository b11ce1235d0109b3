package ballotlog

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"

	"github.com/doorstep-vote/doorstep/internal/keyfile"
)

// LoadOrCreateKey returns the server's ed25519 signing key kept in the file
// at path, creating the file with a new key from rand when there is none
// (created is then true). rand is ed25519's source of the 32-byte seed;
// pass crypto/rand.Reader outside tests.
//
// The file holds the 64-byte ed25519 private key (seed then public key), no
// more, with mode 0600 (see package keyfile). LoadOrCreateKey refuses a file
// that others could read or write, that is not 64 bytes, or whose two
// halves disagree, and says how to fix it; it never overwrites an existing
// file, and a crash while it creates one leaves either no key or a whole
// one.
func LoadOrCreateKey(path string, rand io.Reader) (key ed25519.PrivateKey, created bool, err error) {
	key, created, err = keyfile.LoadOrCreate(path, rand)
	switch {
	case errors.Is(err, keyfile.ErrLoosePermissions):
		return nil, false, fmt.Errorf("server key: %w, or replace the key if it may have leaked", err)
	case errors.Is(err, keyfile.ErrDamaged):
		return nil, false, fmt.Errorf("server key: %w, or move it aside to make a new key (devices and auditors then need the new verifier key)", err)
	case err != nil:
		return nil, false, fmt.Errorf("server key: %w", err)
	}
	return key, created, nil
}

// Fingerprint is a short form of a server's public key for people to compare
// by eye or read over the phone: "SHA256:" followed by the unpadded standard
// base64 of SHA-256 over the 32 raw public key bytes. (It looks like an
// OpenSSH fingerprint but is not one: OpenSSH hashes its own key encoding.)
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
