package device

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// keyFile is the device's private key, beside the database in the device
// folder. It holds the 64-byte ed25519 private key (seed, then public key)
// with mode 0600 and never leaves the device: the server learns only the
// public half, at enrollment.
const keyFile = "device.key"

// loadKey reads the device key; the error wraps fs.ErrNotExist when the
// device has none yet.
func loadKey(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("device key %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("device key %s is not a regular file", path)
	}
	// Windows has no Unix permission bits to check.
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("device key %s has mode %04o, so others may read it: run `chmod 600 %s`, "+
			"or if it may have leaked ask the committee to revoke this device and join again with a new folder",
			path, st.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, ed25519.PrivateKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("device key %s: read: %w", path, err)
	}
	if len(b) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("device key %s is %d bytes, not the %d of an ed25519 private key: restore the device folder from a backup",
			path, len(b), ed25519.PrivateKeySize)
	}
	key := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	if !bytes.Equal(key, b) {
		return nil, fmt.Errorf("device key %s is damaged (its public half does not match its seed): restore the device folder from a backup", path)
	}
	return key, nil
}

// loadOrCreateKey returns the device key, making one from rand if the folder
// has none. A new key is written to a temporary file, synced and linked into
// place, so a crash leaves no key or a whole one, and an existing key is
// never replaced.
func loadOrCreateKey(path string, rand io.Reader) (ed25519.PrivateKey, error) {
	key, err := loadKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	_, key, err = ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("device key: generate: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".device-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("device key: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("device key: sync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return loadKey(path)
		}
		return nil, fmt.Errorf("device key: %w", err)
	}
	syncDir(dir)
	return key, nil
}

// syncDir makes new names in dir durable. A filesystem that cannot sync a
// directory still has the file, so failure is not an error.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
