package tallyd

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/doorstep-vote/doorstep/internal/store"
)

// AdminSocket is the unix socket in the data folder on which a running
// tallyd makes the copies `tallyd backup` asks for: bbolt locks the data
// file, so only the process that has it open can read it while it serves.
// The socket is mode 0600 in the data folder, so it lets nobody read more
// than the data file's own permissions already do, and it is reachable
// only from this machine. It speaks plain HTTP: GET /backup answers the
// whole file, its length first.
const AdminSocket = "admin.sock"

// admin serves AdminSocket.
type admin struct {
	path  string
	store *store.Store
	log   *slog.Logger
	srv   *http.Server
	done  chan struct{}
	// copies counts backups being sent, so close waits for their read
	// transactions to end before the store closes.
	copies sync.WaitGroup
	once   sync.Once
}

// startAdmin listens on the data folder's admin socket.
func startAdmin(dataDir string, st *store.Store, log *slog.Logger) (*admin, error) {
	path := filepath.Join(dataDir, AdminSocket)
	// A socket left by a tallyd that was killed goes: this process holds
	// the data file's lock, so no other tallyd serves this folder.
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&fs.ModeSocket == 0 {
			return nil, fmt.Errorf("%s is not tallyd's admin socket: move it out of the data folder", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove the old admin socket: %w", err)
		}
	}
	lis, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		lis.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	a := &admin{path: path, store: st, log: log, done: make(chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /backup", a.backup)
	a.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin socket stopped", "err", err)
		}
	}()
	return a, nil
}

// backup answers the whole data file as one read transaction sees it.
func (a *admin) backup(w http.ResponseWriter, r *http.Request) {
	a.copies.Add(1)
	defer a.copies.Done()
	start := time.Now()
	var n int64
	sent := false
	err := a.store.Snapshot(r.Context(), func(sn *store.Snapshot) error {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(sn.Size(), 10))
		sent = true
		var err error
		n, err = sn.WriteTo(w)
		return err
	})
	if err != nil {
		// Once the length is sent, a short body is how the client learns
		// the copy failed.
		if !sent {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
		a.log.Warn("backup not sent", "bytes", n, "err", err)
		return
	}
	a.log.Info("backup sent", "bytes", n, "took", time.Since(start).Round(time.Millisecond))
}

// close stops serving, lets a copy under way finish for a while, and
// removes the socket.
func (a *admin) close() {
	a.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.srv.Shutdown(ctx); err != nil {
			a.srv.Close() // a copy still running ends with its connection
		}
		<-a.done
		a.copies.Wait()
	})
}
