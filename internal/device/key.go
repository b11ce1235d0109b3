package device

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"

	"github.com/doorstep-vote/doorstep/internal/keyfile"
)

// keyFile is the device's private key, beside the database in the device
// folder. It holds the 64-byte ed25519 private key (seed, then public key)
// with mode 0600 (see package keyfile) and never leaves the device: the
// server learns only the public half, at enrollment.
const keyFile = "device.key"

// loadKey reads the device key; the error wraps fs.ErrNotExist when the
// device has none yet.
func loadKey(path string) (ed25519.PrivateKey, error) {
	key, err := keyfile.Load(path)
	if err != nil {
		return nil, keyErr(err)
	}
	return key, nil
}

// loadOrCreateKey returns the device key, making one from rand if the folder
// has none. A crash while it makes one leaves no key or a whole one, and an
// existing key is never replaced.
func loadOrCreateKey(path string, rand io.Reader) (ed25519.PrivateKey, error) {
	key, _, err := keyfile.LoadOrCreate(path, rand)
	if err != nil {
		return nil, keyErr(err)
	}
	return key, nil
}

// keyErr adds what a canvasser can do about a key problem.
func keyErr(err error) error {
	switch {
	case errors.Is(err, keyfile.ErrLoosePermissions):
		return fmt.Errorf("device key: %w, or if it may have leaked ask the committee to revoke this device and join again with a new folder", err)
	case errors.Is(err, keyfile.ErrDamaged):
		return fmt.Errorf("device key: %w, with the rest of the device folder", err)
	}
	return fmt.Errorf("device key: %w", err)
}
