package ballotlog_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "server.key")
	seed := bytes.Repeat([]byte{7}, ed25519.SeedSize)

	key, created, err := ballotlog.LoadOrCreateKey(path, bytes.NewReader(seed))
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKey = created %v, %v; want a new key", created, err)
	}
	if want := ed25519.NewKeyFromSeed(seed); !key.Equal(want) {
		t.Errorf("new key was not made from rand's seed")
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o; want 0600", st.Mode().Perm())
	}
	if st.Size() != ed25519.PrivateKeySize {
		t.Errorf("key file is %d bytes; want %d", st.Size(), ed25519.PrivateKeySize)
	}

	// A second start loads the same key and reads nothing from rand.
	again, created, err := ballotlog.LoadOrCreateKey(path, strings.NewReader(""))
	if err != nil || created {
		t.Fatalf("second LoadOrCreateKey = created %v, %v; want the existing key", created, err)
	}
	if !again.Equal(key) {
		t.Error("second LoadOrCreateKey returned a different key")
	}
	// Nothing but the key is left in its folder: no temporary file.
	if ents, err := os.ReadDir(filepath.Dir(path)); err != nil || len(ents) != 1 || ents[0].Name() != filepath.Base(path) {
		t.Errorf("the key's folder holds %v (%v); want only the key", ents, err)
	}
}

func TestLoadOrCreateKeyRefuses(t *testing.T) {
	good := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, ed25519.SeedSize))
	damaged := bytes.Clone(good)
	damaged[40] ^= 0x01

	tests := []struct {
		name     string
		contents []byte
		mode     os.FileMode
		wantMsg  string // part of the message that says what to do
		unixOnly bool
	}{
		{"group readable", good, 0o640, "chmod 600", true},
		{"world readable", good, 0o604, "chmod 600", true},
		{"seed only", good[:32], 0o600, "not the 64", false},
		{"empty", nil, 0o600, "restore it from a backup", false},
		{"too long", append(bytes.Clone(good), '\n'), 0o600, "not the 64", false},
		{"halves disagree", damaged, 0o600, "damaged", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.unixOnly && runtime.GOOS == "windows" {
				t.Skip("no Unix permissions")
			}
			path := filepath.Join(t.TempDir(), "server.key")
			if err := os.WriteFile(path, tt.contents, tt.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, tt.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			key, created, err := ballotlog.LoadOrCreateKey(path, rand.Reader)
			if err == nil {
				t.Fatalf("LoadOrCreateKey = %x, created %v; want an error", key, created)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not say %q", err, tt.wantMsg)
			}
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, tt.contents) {
				t.Errorf("the refused key file was changed: %x (%v)", got, err)
			}
		})
	}
}

func TestLoadOrCreateKeyErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		path string
		rand *bytes.Reader
	}{
		{"missing directory", filepath.Join(dir, "nope", "server.key"), bytes.NewReader(make([]byte, 32))},
		{"directory as key", dir, bytes.NewReader(make([]byte, 32))},
		{"rand runs dry", filepath.Join(dir, "dry.key"), bytes.NewReader(make([]byte, 5))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := ballotlog.LoadOrCreateKey(tt.path, tt.rand); err == nil {
				t.Error("got no error")
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "dry.key")); !os.IsNotExist(err) {
		t.Errorf("a failed key creation left a file: %v", err)
	}
}

func TestFingerprint(t *testing.T) {
	a := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	b := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32)).Public().(ed25519.PublicKey)
	fa, fb := ballotlog.Fingerprint(a), ballotlog.Fingerprint(b)
	if !strings.HasPrefix(fa, "SHA256:") || len(fa) != len("SHA256:")+43 {
		t.Errorf("Fingerprint = %q; want SHA256: and 43 base64 characters", fa)
	}
	if fa == fb {
		t.Errorf("two keys share fingerprint %q", fa)
	}
	if fa != ballotlog.Fingerprint(a) {
		t.Error("Fingerprint is not stable")
	}
}

func TestLoadOrCreateKeyRace(t *testing.T) {
	// Two processes starting at once must end up with one key between them.
	path := filepath.Join(t.TempDir(), "server.key")
	type result struct {
		key     ed25519.PrivateKey
		created bool
		err     error
	}
	results := make(chan result, 2)
	for i := range 2 {
		go func() {
			seed := bytes.Repeat([]byte{byte(i + 1)}, ed25519.SeedSize)
			k, c, err := ballotlog.LoadOrCreateKey(path, bytes.NewReader(seed))
			results <- result{k, c, err}
		}()
	}
	r1, r2 := <-results, <-results
	if r1.err != nil || r2.err != nil {
		t.Fatalf("LoadOrCreateKey errors: %v, %v", r1.err, r2.err)
	}
	if !r1.key.Equal(r2.key) {
		t.Error("the two starts got different keys")
	}
	if r1.created && r2.created {
		t.Error("both starts claim to have created the key")
	}
}
