package ballotlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// LoadOrCreateKey returns the server's ed25519 signing key kept in the file
// at path, creating the file with a new key from rand when there is none
// (created is then true). rand is ed25519's source of the 32-byte seed;
// pass crypto/rand.Reader outside tests.
//
// The file holds the 64-byte ed25519 private key (seed then public key), no
// more, with mode 0600. LoadOrCreateKey refuses a file that others could
// read or write, that is not 64 bytes, or whose two halves disagree, and
// says how to fix it; it never overwrites an existing file. A new file is
// written beside path, synced, and linked into place, so a crash leaves
// either no key or a whole one.
func LoadOrCreateKey(path string, rand io.Reader) (key ed25519.PrivateKey, created bool, err error) {
	key, err = loadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	_, key, err = ed25519.GenerateKey(rand)
	if err != nil {
		return nil, false, fmt.Errorf("server key %s: generate: %w", path, err)
	}
	switch err := writeNewKey(path, key); {
	case errors.Is(err, fs.ErrExist):
		// Another process created the key first; use theirs.
		key, err = loadKey(path)
		return key, false, err
	case err != nil:
		return nil, false, err
	}
	return key, true, nil
}

func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("server key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("server key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("server key %s is not a regular file; point the server at its key file", path)
	}
	// Windows has no Unix permission bits to check.
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("server key %s has mode %04o, so others may read or change it; "+
			"run `chmod 600 %s` if it is still secret, or replace the key if it may have leaked",
			path, st.Mode().Perm(), path)
	}
	if st.Size() != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("server key %s is %d bytes, not the %d of an ed25519 private key; "+
			"restore it from a backup, or move it aside to make a new key (devices and auditors then need the new verifier key)",
			path, st.Size(), ed25519.PrivateKeySize)
	}
	b := make([]byte, ed25519.PrivateKeySize)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("server key %s: read: %w", path, err)
	}
	key := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	if !bytes.Equal(key, b) {
		return nil, fmt.Errorf("server key %s is damaged: its public half does not match its seed; restore it from a backup", path)
	}
	return key, nil
}

// writeNewKey writes key to path without ever replacing a file there. It
// fails with an error wrapping fs.ErrExist when path already exists.
func writeNewKey(path string, key ed25519.PrivateKey) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".server-key-*") // mode 0600
	if err != nil {
		return fmt.Errorf("server key %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return fmt.Errorf("server key %s: write: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("server key %s: sync: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("server key %s: %w", path, err)
	}
	// Link, unlike rename, fails rather than replace an existing key.
	if err := os.Link(tmp.Name(), path); err != nil {
		return fmt.Errorf("server key %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil {
		// Make the new name durable; a filesystem that cannot sync a
		// directory still has the key, so the error is not fatal.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Fingerprint is a short form of a server's public key for people to compare
// by eye or read over the phone: "SHA256:" followed by the unpadded standard
// base64 of SHA-256 over the 32 raw public key bytes. (It looks like an
// OpenSSH fingerprint but is not one: OpenSSH hashes its own key encoding.)
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return "SHA256:" + base64.RawStdEncoding.EncodeToString(sum[:])
}
