package atomicfile_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/atomicfile"
)

// check fails unless dir holds exactly the file name with data and mode
// 0600: nothing else, no temporary file left behind.
func check(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != name {
		t.Fatalf("folder holds %v; want only %s", ents, name)
	}
	path := filepath.Join(dir, name)
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, data) {
		t.Errorf("%s holds %q (%v); want %q", name, got, err, data)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o; want 0600", name, st.Mode().Perm())
	}
}

func TestWriteNew(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte // nil: no file there before
		data     []byte
		wantErr  error
	}{
		{"new file", nil, []byte("secret"), nil},
		{"empty data", nil, []byte{}, nil},
		{"file in the way", []byte("old"), []byte("new"), fs.ErrExist},
		{"empty file in the way", []byte{}, []byte("new"), fs.ErrExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := atomicfile.WriteNew(path, tt.data)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("WriteNew = %v; want %v", err, tt.wantErr)
			}
			want := tt.data
			if tt.existing != nil {
				want = tt.existing // never replaced
			}
			check(t, dir, "f", want)
		})
	}
}

func TestWriteNewRace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = atomicfile.WriteNew(path, fmt.Appendf(nil, "writer %d", i)) })
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch {
		case err == nil && won >= 0:
			t.Errorf("writers %d and %d both wrote the file", won, i)
		case err == nil:
			won = i
		case !errors.Is(err, fs.ErrExist):
			t.Errorf("writer %d: %v; want fs.ErrExist", i, err)
		}
	}
	if won < 0 {
		t.Fatal("no writer wrote the file")
	}
	check(t, dir, "f", fmt.Appendf(nil, "writer %d", won))
}

func TestReplace(t *testing.T) {
	tests := []struct {
		name     string
		existing []byte // nil: no file there before
		data     []byte
	}{
		{"new file", nil, []byte("state 1")},
		{"replaces", []byte("state 1"), []byte("state 2")},
		{"replaces with less", []byte("a longer state"), []byte("s")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			if tt.existing != nil {
				if err := os.WriteFile(path, tt.existing, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := atomicfile.Replace(path, tt.data); err != nil {
				t.Fatal(err)
			}
			check(t, dir, "f", tt.data)
		})
	}
}

func TestFailures(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope", "f")
	tests := []struct {
		name string
		err  error
	}{
		{"WriteNew into a missing folder", atomicfile.WriteNew(missing, []byte("x"))},
		{"Replace into a missing folder", atomicfile.Replace(missing, []byte("x"))},
		{"SyncDir of a missing folder", atomicfile.SyncDir(filepath.Dir(missing))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !errors.Is(tt.err, fs.ErrNotExist) {
				t.Errorf("got %v; want an error wrapping fs.ErrNotExist", tt.err)
			}
		})
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		t.Errorf("SyncDir(%s) = %v", dir, err)
	}
	if ents, err := os.ReadDir(dir); err != nil || len(ents) != 0 {
		t.Errorf("failed writes left files: %v (%v)", ents, err)
	}
}
