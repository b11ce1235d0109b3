package committee

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
	"syscall"
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
// never replaces an existing key: it returns ErrKeyExists instead. The key
// is written beside its final name, synced, and linked into place, so a
// crash leaves either no key or a whole one.
func Init(dir string, rand io.Reader) (ed25519.PublicKey, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("committee folder: %w", err)
	}
	path := filepath.Join(dir, KeyFile)
	if _, err := os.Lstat(path); err == nil {
		return nil, ErrKeyExists
	}
	pub, key, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate committee key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, KeyFile+".new-*")
	if err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return nil, fmt.Errorf("committee key: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("committee key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("committee key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	// Link fails if the name exists: two inits racing keep the first key.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, ErrKeyExists
		}
		return nil, fmt.Errorf("committee key: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	return pub, nil
}

// LoadKey reads the committee key from dir. It refuses a key file that
// others may read or write, or that is not a whole ed25519 key, and says
// how to fix it.
func LoadKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNoKey)
	}
	if err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("committee key %s has mode %v, so others on this machine may read it; run 'chmod 600 %s' (and consider whether it has leaked)", path, fi.Mode().Perm(), path)
	}
	b, err := io.ReadAll(io.LimitReader(f, ed25519.PrivateKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	if len(b) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("committee key %s is %d bytes, not a %d-byte ed25519 key: restore it from your backup", path, len(b), ed25519.PrivateKeySize)
	}
	key := ed25519.PrivateKey(b)
	// The file holds the seed and the public key; they must agree.
	if !bytes.Equal(ed25519.NewKeyFromSeed(key.Seed()).Public().(ed25519.PublicKey), key[32:]) {
		return nil, fmt.Errorf("committee key %s is damaged (its two halves disagree): restore it from your backup", path)
	}
	return key, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	// Some filesystems cannot sync a directory; the rename still happened.
	if err := d.Sync(); err != nil && runtime.GOOS != "windows" && !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}
