package keyfile_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/keyfile"
)

var (
	good    = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	damaged = func() []byte { b := bytes.Clone(good); b[40] ^= 1; return b }()
)

// countingReader counts the bytes read from it.
type countingReader struct{ r *bytes.Reader }

func (c *countingReader) Read(p []byte) (int, error) { return c.r.Read(p) }
func (c *countingReader) used() int                  { return int(c.r.Size()) - c.r.Len() }

func seed(b byte) *countingReader {
	return &countingReader{bytes.NewReader(bytes.Repeat([]byte{b}, ed25519.SeedSize))}
}

// writeKeyFile writes contents with exactly mode (past the umask).
func writeKeyFile(t *testing.T, path string, contents []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, contents, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// onlyFile fails unless dir holds exactly the file name: no temporary
// file is left behind.
func onlyFile(t *testing.T, dir, name string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != name {
		t.Errorf("folder holds %q; want only %q", names, name)
	}
}

func TestCreateThenLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.key")
	rand := seed(7)
	key, err := keyfile.Create(path, rand)
	if err != nil {
		t.Fatal(err)
	}
	if want := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)); !key.Equal(want) {
		t.Error("Create did not make the key from rand's seed")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o; want 0600", st.Mode().Perm())
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, key) {
		t.Errorf("key file holds %x (%v); want the 64 key bytes %x", got, err, []byte(key))
	}
	loaded, err := keyfile.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Equal(key) {
		t.Error("Load returned a different key than Create made")
	}
	onlyFile(t, dir, "x.key")
}

func TestCreateNeverReplaces(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte
	}{
		{"a key", good},
		{"an empty file", nil},
		{"a damaged key", damaged},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "x.key")
			writeKeyFile(t, path, tt.existing, 0o600)
			rand := seed(1)
			key, err := keyfile.Create(path, rand)
			if !errors.Is(err, fs.ErrExist) {
				t.Fatalf("Create = %x, %v; want an error wrapping fs.ErrExist", key, err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if n := rand.used(); n != 0 {
				t.Errorf("Create read %d bytes from rand for a key it could not write", n)
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, tt.existing) {
				t.Errorf("the existing file now holds %x (%v)", got, err)
			}
			onlyFile(t, dir, "x.key")
		})
	}
}

func TestCreateFails(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		rand    *bytes.Reader
		wantErr error // matched with errors.Is when set
	}{
		{"missing folder", filepath.Join(dir, "nope", "x.key"), bytes.NewReader(make([]byte, 32)), fs.ErrNotExist},
		{"rand runs dry", filepath.Join(dir, "dry.key"), bytes.NewReader(make([]byte, 5)), nil},
		{"folder in the way", dir, bytes.NewReader(make([]byte, 32)), fs.ErrExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyfile.Create(tt.path, tt.rand)
			if err == nil {
				t.Fatal("got no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
		})
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("failed creations left files: %v (%v)", ents, err)
	}
}

func TestLoadRefuses(t *testing.T) {
	tests := []struct {
		name     string
		contents []byte
		mode     os.FileMode
		wantErr  error  // matched with errors.Is
		wantMsg  string // part of the message that says what is wrong or what to do
		unixOnly bool
	}{
		{"group readable", good, 0o640, keyfile.ErrLoosePermissions, "chmod 600", true},
		{"world readable", good, 0o604, keyfile.ErrLoosePermissions, "chmod 600", true},
		{"group writable", good, 0o620, keyfile.ErrLoosePermissions, "mode 0620", true},
		{"seed only", good[:32], 0o600, keyfile.ErrDamaged, "32 bytes, not the 64", false},
		{"empty", nil, 0o600, keyfile.ErrDamaged, "restore it from a backup", false},
		{"one byte too long", append(bytes.Clone(good), '\n'), 0o600, keyfile.ErrDamaged, "65 bytes", false},
		{"twice as long", append(bytes.Clone(good), good...), 0o600, keyfile.ErrDamaged, "65 bytes", false},
		{"halves disagree", damaged, 0o600, keyfile.ErrDamaged, "does not match its seed", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.unixOnly && runtime.GOOS == "windows" {
				t.Skip("no Unix permissions")
			}
			path := filepath.Join(t.TempDir(), "x.key")
			writeKeyFile(t, path, tt.contents, tt.mode)
			key, err := keyfile.Load(path)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Load = %x, %v; want an error wrapping %v", key, err, tt.wantErr)
			}
			for _, want := range []string{tt.wantMsg, path} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, tt.contents) {
				t.Errorf("the refused key file was changed: %x (%v)", got, err)
			}
		})
	}
}

func TestLoadOtherFailures(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		path    string
		wantErr error // matched with errors.Is when set
		wantMsg string
	}{
		{"no file", filepath.Join(dir, "none.key"), fs.ErrNotExist, "none.key"},
		{"no folder", filepath.Join(dir, "nope", "x.key"), fs.ErrNotExist, "x.key"},
		{"a folder", dir, nil, "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := keyfile.Load(tt.path)
			if err == nil {
				t.Fatal("got no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v does not wrap %v", err, tt.wantErr)
			}
			if errors.Is(err, keyfile.ErrDamaged) || errors.Is(err, keyfile.ErrLoosePermissions) {
				t.Errorf("error %v claims the key is damaged or exposed", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
		})
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.key")
	key, created, err := keyfile.LoadOrCreate(path, seed(3))
	if err != nil || !created {
		t.Fatalf("first LoadOrCreate = created %v, %v; want a new key", created, err)
	}
	rand := seed(4)
	again, created, err := keyfile.LoadOrCreate(path, rand)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate = created %v, %v; want the existing key", created, err)
	}
	if !again.Equal(key) {
		t.Error("second LoadOrCreate returned a different key")
	}
	if n := rand.used(); n != 0 {
		t.Errorf("loading an existing key read %d bytes from rand", n)
	}
	onlyFile(t, dir, "x.key")

	// A refused key is reported, never replaced by a new one.
	writeKeyFile(t, path, damaged, 0o600)
	if _, _, err := keyfile.LoadOrCreate(path, seed(5)); !errors.Is(err, keyfile.ErrDamaged) {
		t.Errorf("LoadOrCreate over a damaged key = %v; want ErrDamaged", err)
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, damaged) {
		t.Error("LoadOrCreate replaced a damaged key")
	}
}

func TestLoadOrCreateRace(t *testing.T) {
	// Processes starting at once must end up with one key between them.
	dir := t.TempDir()
	path := filepath.Join(dir, "x.key")
	const n = 4
	keys := make([]ed25519.PrivateKey, n)
	created := make([]bool, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			keys[i], created[i], errs[i] = keyfile.LoadOrCreate(path, seed(byte(i+1)))
		})
	}
	wg.Wait()
	makers := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreate %d: %v", i, errs[i])
		}
		if !keys[i].Equal(keys[0]) {
			t.Errorf("start %d got a different key than start 0", i)
		}
		if created[i] {
			makers++
		}
	}
	if makers != 1 {
		t.Errorf("%d starts claim to have created the key; want 1", makers)
	}
	onlyFile(t, dir, "x.key")
}

// FuzzLoad checks that Load accepts exactly the files that hold a whole
// key, and returns those bytes.
func FuzzLoad(f *testing.F) {
	for _, b := range [][]byte{good, damaged, good[:32], nil, append(bytes.Clone(good), 0)} {
		f.Add(b)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, contents []byte) {
		path := filepath.Join(dir, "fuzz.key")
		if err := os.WriteFile(path, contents, 0o600); err != nil {
			t.Fatal(err)
		}
		key, err := keyfile.Load(path)
		whole := len(contents) == ed25519.PrivateKeySize &&
			bytes.Equal(ed25519.NewKeyFromSeed(contents[:ed25519.SeedSize]), contents)
		switch {
		case whole && err != nil:
			t.Fatalf("Load refused a whole key: %v", err)
		case whole && !bytes.Equal(key, contents):
			t.Fatalf("Load returned %x; the file holds %x", []byte(key), contents)
		case !whole && !errors.Is(err, keyfile.ErrDamaged):
			t.Fatalf("Load of %d bytes that are not a key = %x, %v; want ErrDamaged", len(contents), []byte(key), err)
		}
	})
}
