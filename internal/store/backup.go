package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/mod/sumdb/tlog"
)

// Snapshot is the store as one read transaction sees it: a consistent
// state, whatever commits while it is held. It is valid only inside the
// function it is given to.
//
// Holding a snapshot keeps the pages it reads from being reused, and a
// commit that must grow the file's memory map waits for it to end: take
// one for the time a copy or a check needs, no longer.
type Snapshot struct {
	tx *bolt.Tx
}

// Snapshot calls fn with a snapshot of the live store, for an online
// backup while the server serves.
func (s *Store) Snapshot(ctx context.Context, fn func(*Snapshot) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error { return fn(&Snapshot{tx: tx}) })
}

// ErrInUse is returned by ViewFile when a process (a running tallyd) has
// the file open.
var ErrInUse = errors.New("the data file is in use by a running tallyd")

// viewFileTimeout is how long ViewFile waits for the file's lock: a
// running tallyd holds it for as long as it serves, so waiting longer
// helps nothing.
const viewFileTimeout = time.Second

// ViewFile opens the bbolt file at path read-only, without changing it,
// and calls fn with a snapshot of it. It fails with ErrInUse when a
// running tallyd holds the file, and with an error wrapping
// fs.ErrNotExist when there is no file.
func ViewFile(path string, fn func(*Snapshot) error) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: viewFileTimeout})
	if err != nil {
		if errors.Is(err, bolt.ErrTimeout) {
			return ErrInUse
		}
		return fmt.Errorf("open %s: %w", path, err)
	}
	err = db.View(func(tx *bolt.Tx) error { return fn(&Snapshot{tx: tx}) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return err
}

// Size is the size in bytes of the copy WriteTo writes.
func (sn *Snapshot) Size() int64 { return sn.tx.Size() }

// WriteTo writes the whole file as of the snapshot to w: a bbolt file
// that tallyd opens as it is. On success it wrote exactly Size bytes.
func (sn *Snapshot) WriteTo(w io.Writer) (int64, error) { return sn.tx.WriteTo(w) }

// Head is where an election's log stands: its size and root, the two
// numbers every checkpoint of it signs.
type Head struct {
	ElectionID string
	Size       int64
	Root       tlog.Hash
}

// Heads returns where each election's log stands in the snapshot, in
// election id order.
func (sn *Snapshot) Heads() ([]Head, error) {
	eb := sn.tx.Bucket(bucketElections)
	if eb == nil {
		return nil, errors.New("store: the file has no elections bucket: it is not a tallyd data file")
	}
	var out []Head
	err := eb.ForEachBucket(func(id []byte) error {
		info := eb.Bucket(id).Bucket(bucketInfo)
		if info == nil {
			return fmt.Errorf("store: election %q has no info bucket", id)
		}
		h := Head{ElectionID: string(id), Size: getI64(info.Get(keyLogSize))}
		copy(h.Root[:], info.Get(keyLogRoot))
		out = append(out, h)
		return nil
	})
	return out, err
}

// CheckPages runs bbolt's own consistency check (every page reachable
// once, the freelist and the pages in use disjoint, keys in order) and
// returns everything it found, joined; nil when the file is sound.
func (sn *Snapshot) CheckPages() error {
	var errs []error
	// Drained to the end: the checker's goroutine stops only when every
	// error is read.
	for err := range sn.tx.Check() {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
