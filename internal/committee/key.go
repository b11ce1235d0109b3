package committee

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/doorstep-vote/doorstep/internal/keyfile"
)

// KeyFile is the name of the committee key file in the folder.
const KeyFile = "committee.key"

// Errors about the key.
var (
	ErrNoKey     = errors.New("no committee key in this folder: run 'doorstep committee init' first, or point --committee-dir at the folder that has it")
	ErrKeyExists = errors.New("a committee key already exists in this folder; 'doorstep committee show' prints it")
)

// Init makes a new committee key in dir (creating dir with mode 0700) from
// rand (crypto/rand.Reader outside tests) and returns its public half. It
// never replaces an existing key: it returns ErrKeyExists instead. A crash
// while it writes the key leaves either no key or a whole one (see package
// keyfile).
func Init(dir string, rand io.Reader) (ed25519.PublicKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("committee folder: %w", err)
	}
	key, err := keyfile.Create(filepath.Join(dir, KeyFile), rand)
	if errors.Is(err, fs.ErrExist) {
		return nil, ErrKeyExists
	}
	if err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	return key.Public().(ed25519.PublicKey), nil
}

// LoadKey reads the committee key from dir. It refuses a key file that
// others may read or write, or that is not a whole ed25519 key, and says
// how to fix it; with no key file in dir its error wraps ErrNoKey.
func LoadKey(dir string) (ed25519.PrivateKey, error) {
	key, err := keyfile.Load(filepath.Join(dir, KeyFile))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%s: %w", dir, ErrNoKey)
	case errors.Is(err, keyfile.ErrLoosePermissions):
		return nil, fmt.Errorf("committee key: %w, and consider whether it has leaked", err)
	case err != nil:
		return nil, fmt.Errorf("committee key: %w", err)
	}
	return key, nil
}
