package tallyd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"github.com/doorstep-vote/doorstep/internal/atomicfile"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// BackupResult is what a backup wrote.
type BackupResult struct {
	// Online is set when the running tallyd made the copy; otherwise no
	// tallyd was running and the file was copied directly.
	Online bool
	Bytes  int64
	// Heads is where each election's log stands in the copy: the copy
	// holds every record acknowledged up to these checkpoints.
	Heads []store.Head
}

// Backup writes a consistent copy of the data folder's bbolt file to out.
// When a tallyd serves the folder, it makes the copy (one read
// transaction, over AdminSocket) while it goes on serving; otherwise the
// file is copied directly. The copy goes to a temporary file beside out,
// is synced, opened and checked by bbolt, and only then renamed to out, so
// out is always a whole copy or untouched.
func Backup(ctx context.Context, dataDir, out string) (BackupResult, error) {
	var res BackupResult
	dbPath := filepath.Join(dataDir, DBFile)
	if err := notTheDataFile(out, dbPath); err != nil {
		return res, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), filepath.Base(out)+".tmp-*")
	if err != nil {
		return res, fmt.Errorf("make the backup file: %w", err)
	}
	tmpName := tmp.Name()
	keep := false
	defer func() {
		if !keep {
			tmp.Close()
			os.Remove(tmpName)
		}
	}()
	if runtime.GOOS != "windows" {
		if err := tmp.Chmod(0o600); err != nil { // the copy holds every ballot
			return res, err
		}
	}
	res.Bytes, res.Online, err = copyData(ctx, dataDir, tmp)
	if err != nil {
		return res, err
	}
	if err := tmp.Sync(); err != nil {
		return res, fmt.Errorf("write %s: %w", tmpName, err)
	}
	if err := tmp.Close(); err != nil {
		return res, fmt.Errorf("write %s: %w", tmpName, err)
	}
	// The copy is read back before it takes out's name: a backup that
	// bbolt cannot open is no backup.
	err = store.ViewFile(tmpName, func(sn *store.Snapshot) error {
		if err := sn.CheckPages(); err != nil {
			return err
		}
		var err error
		res.Heads, err = sn.Heads()
		return err
	})
	if err != nil {
		return res, fmt.Errorf("the copy does not read back whole, so %s was left as it was: %w", out, err)
	}
	if err := os.Rename(tmpName, out); err != nil {
		return res, err
	}
	keep = true
	return res, atomicfile.SyncDir(filepath.Dir(out))
}

// notTheDataFile refuses an out that is the live data file: renaming over
// it would leave tallyd writing to a file no longer in the folder.
func notTheDataFile(out, dbPath string) error {
	absOut, err1 := filepath.Abs(out)
	absDB, err2 := filepath.Abs(dbPath)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	same := absOut == absDB
	if a, err := os.Stat(out); err == nil {
		if a.IsDir() {
			return fmt.Errorf("--out %s is a folder: give the backup's file name", out)
		}
		if b, err := os.Stat(dbPath); err == nil && os.SameFile(a, b) {
			same = true
		}
	}
	if same {
		return fmt.Errorf("--out %s is the data file itself: write the backup somewhere else", out)
	}
	return nil
}

// copyData writes the data file to w: through the running tallyd when
// one answers on the admin socket, directly when none is running.
func copyData(ctx context.Context, dataDir string, w io.Writer) (n int64, online bool, err error) {
	sock := filepath.Join(dataDir, AdminSocket)
	n, err = copyOnline(ctx, sock, w)
	if err == nil {
		return n, true, nil
	}
	if !errors.Is(err, errNoServer) {
		return 0, true, err
	}
	dbPath := filepath.Join(dataDir, DBFile)
	err = store.ViewFile(dbPath, func(sn *store.Snapshot) error {
		var err error
		n, err = sn.WriteTo(w)
		return err
	})
	switch {
	case errors.Is(err, store.ErrInUse):
		return 0, false, fmt.Errorf("a tallyd is running on %s but does not answer on %s (its log says why): stop it and run the backup again", dataDir, sock)
	case errors.Is(err, fs.ErrNotExist):
		return 0, false, fmt.Errorf("there is no data file %s: check --data", dbPath)
	case err != nil:
		return 0, false, fmt.Errorf("copy %s: %w", dbPath, err)
	}
	return n, false, nil
}

// errNoServer means no tallyd listens on the admin socket.
var errNoServer = errors.New("no tallyd is listening")

// copyOnline asks the tallyd on the admin socket for the data file.
func copyOnline(ctx context.Context, sock string, w io.Writer) (int64, error) {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://tallyd/backup", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return 0, errNoServer
		}
		return 0, fmt.Errorf("ask the running tallyd for a copy on %s: %w", sock, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return 0, fmt.Errorf("the running tallyd made no copy: %s", strings.TrimSpace(string(msg)))
	}
	n, err := io.Copy(w, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return n, fmt.Errorf("the copy broke off after %d bytes: %w", n, err)
	}
	return n, nil
}
