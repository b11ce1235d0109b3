package tallyd

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupNeverLeavesAHalfCopy: when the server's copy breaks off or is
// refused, the backup fails, the file at --out is the one that was there,
// and no temporary file is left.
func TestBackupNeverLeavesAHalfCopy(t *testing.T) {
	cases := []struct {
		name    string
		handler http.HandlerFunc
		want    string
	}{
		{"the copy breaks off", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100000")
			w.Write(make([]byte, 4096))
		}, "the copy broke off after 4096 bytes"},
		{"the server refuses", func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "the server is shutting down", http.StatusServiceUnavailable)
		}, "the running tallyd made no copy: the server is shutting down"},
		{"the copy is no bbolt file", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(strings.Repeat("not a database ", 1000)))
		}, "the copy does not read back whole"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, outDir := t.TempDir(), t.TempDir()
			lis, err := net.Listen("unix", filepath.Join(data, AdminSocket))
			if err != nil {
				t.Fatal(err)
			}
			srv := &http.Server{Handler: c.handler}
			go srv.Serve(lis)
			defer srv.Close()
			out := filepath.Join(outDir, "backup.db")
			if err := os.WriteFile(out, []byte("yesterday's backup"), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = Backup(context.Background(), data, out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Backup: %v; want an error saying %q", err, c.want)
			}
			if b, _ := os.ReadFile(out); string(b) != "yesterday's backup" {
				t.Errorf("--out now holds %d bytes; want yesterday's backup untouched", len(b))
			}
			if ents, _ := os.ReadDir(outDir); len(ents) != 1 {
				t.Errorf("left in the backup folder: %v", ents)
			}
		})
	}
}
