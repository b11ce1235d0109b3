package keyfile

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/doorstep-vote/doorstep/internal/atomicfile"
)

var (
	// ErrLoosePermissions reports a key file whose mode lets other users
	// of the machine read or change it.
	ErrLoosePermissions = errors.New("others may read or change the key file")
	// ErrDamaged reports a key file that is not a whole ed25519 private
	// key: the wrong size, or a public half that does not match the seed.
	ErrDamaged = errors.New("the key file is damaged")
)

// Load reads the key in the file at path. Its error wraps fs.ErrNotExist
// when there is no file, ErrLoosePermissions when the file's mode allows
// others in (not checked on Windows, which has no such bits) and
// ErrDamaged when the file is not a whole key.
func Load(path string) (ed25519.PrivateKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file; name the key file itself", path)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: %w; run `chmod 600 %s` if the key is still secret",
			path, st.Mode().Perm(), ErrLoosePermissions, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, ed25519.PrivateKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: %s is %d bytes, not the %d of an ed25519 private key; restore it from a backup",
			ErrDamaged, path, len(b), ed25519.PrivateKeySize)
	}
	key := ed25519.NewKeyFromSeed(b[:ed25519.SeedSize])
	if !bytes.Equal(key, b) {
		return nil, fmt.Errorf("%w: the public half of %s does not match its seed; restore it from a backup", ErrDamaged, path)
	}
	return key, nil
}

// Create makes a new key from rand (ed25519's source of the 32-byte seed:
// crypto/rand.Reader outside tests) and writes it to a new file at path.
// It never replaces a file: when path exists it reads nothing from rand
// and fails with an error wrapping fs.ErrExist. The key is written beside
// path, synced and linked into place, so a crash leaves no key or a whole
// one.
func Create(path string, rand io.Reader) (ed25519.PrivateKey, error) {
	if _, err := os.Lstat(path); err == nil {
		return nil, fmt.Errorf("%s: %w", path, fs.ErrExist)
	}
	_, key, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("%s: generate: %w", path, err)
	}
	if err := atomicfile.WriteNew(path, key); err != nil {
		return nil, err
	}
	return key, nil
}

// LoadOrCreate loads the key at path, or creates one from rand when there
// is no file (created is then true). Of processes racing to create the
// key, one creates it and the others load that one.
func LoadOrCreate(path string, rand io.Reader) (key ed25519.PrivateKey, created bool, err error) {
	key, err = Load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	key, err = Create(path, rand)
	if errors.Is(err, fs.ErrExist) {
		key, err = Load(path)
		return key, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return key, true, nil
}
