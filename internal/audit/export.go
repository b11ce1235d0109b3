package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

// Source is where Export reads an election from: the CLI implements it
// with AuditService calls, the store directly (store.RecordSource).
type Source interface {
	// Tally returns the tally to publish, as its canonical JSON, and the
	// signed checkpoint of the log it was computed at.
	Tally(ctx context.Context) (canonicalJSON []byte, cp *doorstepv1.Checkpoint, err error)
	// VerifierKey returns the note verifier key that checks the log's
	// checkpoints.
	VerifierKey(ctx context.Context) (string, error)
	// LogEntries calls fn with the entries numbered start to end-1 in
	// order, each exactly as stored.
	LogEntries(ctx context.Context, start, end int64, fn func(idx int64, entry []byte) error) error
}

// Export writes the election record of src into dir, which must not exist
// or be empty. It takes the published tally and its checkpoint, checks the
// checkpoint with the server's key, copies the log up to that checkpoint
// and refuses it if its Merkle root is not the signed one, then derives the
// manifest and the CSVs from the copied log exactly as Verify will, and
// returns what Verify would report on the folder.
//
// An error means the export is unusable (the folder may hold a partial
// copy); discrepancies in the election itself are in the Report, and the
// folder is complete evidence of them.
func Export(ctx context.Context, src Source, dir string) (*Report, error) {
	published, cp, err := src.Tally(ctx)
	if err != nil {
		return nil, fmt.Errorf("export: published tally: %w", err)
	}
	vkey, err := src.VerifierKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("export: server verifier key: %w", err)
	}
	_, pub, err := ParseVerifierKey(vkey)
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	tree, err := ballotlog.VerifyCheckpoint(cp, vkey)
	if err != nil {
		return nil, fmt.Errorf("export: the tally's checkpoint does not verify with the server's key: %w", err)
	}
	if err := emptyDir(dir); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, filepath.FromSlash(LogFile))
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := copyLog(ctx, src, logPath, tree.N, tree.Hash); err != nil {
		return nil, err
	}
	if err := writeFile(dir, CheckpointFile, []byte(cp.GetSignedNote())); err != nil {
		return nil, err
	}
	if err := writeFile(dir, TallyFile, published); err != nil {
		return nil, err
	}
	c, err := checkLog(ctx, logPath, "", tree.N, nil)
	if err != nil {
		return nil, err
	}
	m := buildManifest(c, vkey, ballotlog.Fingerprint(pub), cp.GetOrigin(), tree.N)
	if err := writeFile(dir, ManifestFile, m.encode()); err != nil {
		return nil, err
	}
	for name, b := range csvFiles(c, published) {
		if err := writeFile(dir, name, b); err != nil {
			return nil, err
		}
	}
	return assemble(m, cp.GetSignedNote(), published, c), nil
}

// copyLog writes entries [0, size) of src to path and checks their root.
func copyLog(ctx context.Context, src Source, path string, size int64, root tlog.Hash) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("export: %w", cerr)
		}
	}()
	lw := NewLogWriter(f)
	var b ballotlog.Builder
	b.Grow(min(size, 1<<24)) // the rest, if any, grows as it comes
	err = src.LogEntries(ctx, 0, size, func(idx int64, entry []byte) error {
		if idx != b.Size() {
			return fmt.Errorf("the server sent entry %d where entry %d belongs", idx, b.Size())
		}
		if _, err := b.Append(entry); err != nil {
			return err
		}
		return lw.Write(entry)
	})
	if err != nil {
		return fmt.Errorf("export: log entries: %w", err)
	}
	if b.Size() != size {
		return fmt.Errorf("export: the server sent %d log entries; its checkpoint has %d", b.Size(), size)
	}
	got, err := b.TreeHash(size)
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if got != root {
		return fmt.Errorf("export: the %d entries the server sent have Merkle root %v, not the %v it signed: the server is not serving the log it vouches for", size, got, root)
	}
	if err := lw.Flush(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}

// emptyDir makes dir, or accepts it if it exists and is empty, so an
// export never mixes with older files.
func emptyDir(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("export: %w", err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("export: %w", err)
	case len(ents) > 0:
		return fmt.Errorf("export: %s is not empty: export into a new folder", dir)
	}
	return nil
}

func writeFile(dir, name string, b []byte) error {
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(name)), b, 0o644); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
