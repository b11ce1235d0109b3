package ballotlog

import (
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// ErrSplitView means the server could not prove that a checkpoint extends
// one it signed before: it may be showing different histories to different
// people. A device or auditor that sees it must keep both signed checkpoints
// as evidence and stop trusting the server's log.
var ErrSplitView = errors.New("ballot log split view: the server's checkpoints do not describe one history")

// ErrNotIncluded means an inclusion proof did not show the entry in the tree
// the checkpoint describes.
var ErrNotIncluded = errors.New("ballot log entry not proved included")

// ProveConsistency returns the proof that the log of oldSize entries is a
// prefix of the log of newSize entries, over the hashes in r. The server
// sends it with a new checkpoint to a client holding an older one.
func ProveConsistency(oldSize, newSize int64, r tlog.HashReader) (tlog.TreeProof, error) {
	if oldSize < 0 || oldSize > newSize {
		return nil, fmt.Errorf("ballot log consistency proof from size %d to %d: sizes out of order", oldSize, newSize)
	}
	if oldSize == 0 {
		// Every log extends the empty one; there is nothing to prove.
		return tlog.TreeProof{}, nil
	}
	p, err := tlog.ProveTree(newSize, oldSize, r)
	if err != nil {
		return nil, fmt.Errorf("ballot log consistency proof from size %d to %d: %w", oldSize, newSize, err)
	}
	return p, nil
}

// ProveInclusion returns the proof that entry number index is in the log of
// size entries, over the hashes in r.
func ProveInclusion(index, size int64, r tlog.HashReader) (tlog.RecordProof, error) {
	if index < 0 || index >= size {
		return nil, fmt.Errorf("ballot log inclusion proof of entry %d: the log has %d entries", index, size)
	}
	p, err := tlog.ProveRecord(size, index, r)
	if err != nil {
		return nil, fmt.Errorf("ballot log inclusion proof of entry %d in size %d: %w", index, size, err)
	}
	return p, nil
}

// CheckConsistency checks that the tree newer extends the tree older, both
// taken from verified checkpoints, using proof from [ProveConsistency].
// A failure wraps [ErrSplitView]: two signed checkpoints that no proof
// reconciles are the evidence of a server showing two histories, whatever
// the reason it gives.
func CheckConsistency(older, newer tlog.Tree, proof tlog.TreeProof) error {
	switch {
	case older.N < 0 || newer.N < 0:
		return fmt.Errorf("ballot log consistency: negative size (%d, %d)", older.N, newer.N)
	case older.N > newer.N:
		return fmt.Errorf("%w: the new checkpoint has %d entries, fewer than the %d of the one held before",
			ErrSplitView, newer.N, older.N)
	case older.N == 0:
		empty, err := tlog.TreeHash(0, MemoryHashes(nil))
		if err != nil {
			return fmt.Errorf("ballot log consistency: empty tree hash: %w", err)
		}
		if older.Hash != empty {
			return fmt.Errorf("%w: a checkpoint of 0 entries has root %v, not the empty tree's", ErrSplitView, older.Hash)
		}
		return nil
	}
	if err := tlog.CheckTree(proof, newer.N, newer.Hash, older.N, older.Hash); err != nil {
		return fmt.Errorf("%w: size %d root %v does not extend size %d root %v: %w",
			ErrSplitView, newer.N, newer.Hash, older.N, older.Hash, err)
	}
	return nil
}

// CheckInclusion checks that entry (its exact stored bytes) is entry number
// index of the tree, taken from a verified checkpoint, using proof from
// [ProveInclusion]. A failure wraps [ErrNotIncluded].
func CheckInclusion(entry []byte, index int64, tree tlog.Tree, proof tlog.RecordProof) error {
	if index < 0 || index >= tree.N {
		return fmt.Errorf("%w: entry %d is beyond a log of %d entries", ErrNotIncluded, index, tree.N)
	}
	if err := tlog.CheckRecord(proof, tree.N, tree.Hash, index, LeafHash(entry)); err != nil {
		return fmt.Errorf("%w: entry %d in size %d root %v: %w", ErrNotIncluded, index, tree.N, tree.Hash, err)
	}
	return nil
}
