package device

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestKeyErrorsAdvise checks that the device's key errors keep what
// package keyfile says and add what a canvasser can do.
func TestKeyErrorsAdvise(t *testing.T) {
	good := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize))
	tests := []struct {
		name     string
		contents []byte // nil: no file
		mode     os.FileMode
		wantErr  error
		want     []string
		unixOnly bool
	}{
		{"no key", nil, 0, fs.ErrNotExist, []string{"device key: "}, false},
		{"readable by others", good, 0o644, nil, []string{"chmod 600", "revoke this device"}, true},
		{"short", good[:10], 0o600, nil, []string{"10 bytes", "restore it from a backup, with the rest of the device folder"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.unixOnly && runtime.GOOS == "windows" {
				t.Skip("no Unix permissions")
			}
			path := filepath.Join(t.TempDir(), keyFile)
			if tt.contents != nil {
				if err := os.WriteFile(path, tt.contents, tt.mode); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			_, err := loadKey(path)
			if err == nil {
				t.Fatal("loadKey: got no error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("loadKey error %v does not wrap %v", err, tt.wantErr)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("loadKey error %q does not say %q", err, w)
				}
			}
			if tt.contents == nil {
				return // loadOrCreateKey makes a key here; see below
			}
			if _, err := loadOrCreateKey(path, bytes.NewReader(make([]byte, 32))); err == nil || !strings.Contains(err.Error(), tt.want[len(tt.want)-1]) {
				t.Errorf("loadOrCreateKey = %v; want the loadKey advice", err)
			}
		})
	}

	path := filepath.Join(t.TempDir(), keyFile)
	made, err := loadOrCreateKey(path, bytes.NewReader(bytes.Repeat([]byte{6}, 32)))
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := loadKey(path)
	if err != nil || !loaded.Equal(made) {
		t.Errorf("loadKey after loadOrCreateKey = %v; want the key made", err)
	}
}
