package ballotlog

import (
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// HashesToStore returns the tree hashes that appending entry as the log's
// entry number size (counting from 0) adds to the tree, reading the earlier
// hashes it needs from r.
//
// The store must write the returned hashes at storage indexes
// tlog.StoredHashIndex(0, size), tlog.StoredHashIndex(0, size)+1, … in the
// same transaction as the entry itself: an entry without its hashes, or
// hashes without their entry, is a corrupt log. After the commit, the tree
// of size+1 entries has root tlog.TreeHash(size+1, r).
func HashesToStore(size int64, entry []byte, r tlog.HashReader) ([]tlog.Hash, error) {
	if size < 0 {
		return nil, fmt.Errorf("append to ballot log: negative log size %d", size)
	}
	hs, err := tlog.StoredHashes(size, entry, r)
	if err != nil {
		return nil, fmt.Errorf("append ballot log entry %d: %w", size, err)
	}
	return hs, nil
}

// MemoryHashes is a [tlog.HashReader] over tree hashes held in memory, laid
// out by storage index: MemoryHashes[i] is the hash at storage index i. It
// grows exactly as a store would, by appending what [HashesToStore] returns.
//
// It is not safe for concurrent use while it grows.
type MemoryHashes []tlog.Hash

// ReadHashes returns the hashes at the given storage indexes. It fails for
// an index the log has not reached.
func (m MemoryHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m)) {
			return nil, fmt.Errorf("ballot log hash %d not stored (have %d)", x, len(m))
		}
		out[i] = m[x]
	}
	return out, nil
}

// Builder grows a ballot log in memory one entry at a time and answers the
// root of any prefix of it. The auditor's verifier rebuilds the published
// log with it and compares roots with the signed checkpoints.
//
// The zero Builder is an empty log. A Builder is not safe for concurrent use.
type Builder struct {
	hashes MemoryHashes
	size   int64
}

// Grow reserves room for n more entries, so that building a log of known
// length does not copy the hashes as it grows.
func (b *Builder) Grow(n int64) {
	if n <= 0 {
		return
	}
	need := tlog.StoredHashCount(b.size+n) - int64(len(b.hashes))
	if need > 0 && int64(cap(b.hashes)-len(b.hashes)) < need {
		grown := make(MemoryHashes, len(b.hashes), int64(len(b.hashes))+need)
		copy(grown, b.hashes)
		b.hashes = grown
	}
}

// Append adds entry (its exact stored bytes) as the next entry and returns
// its index.
func (b *Builder) Append(entry []byte) (int64, error) {
	hs, err := HashesToStore(b.size, entry, b.hashes)
	if err != nil {
		return 0, err
	}
	b.hashes = append(b.hashes, hs...)
	b.size++
	return b.size - 1, nil
}

// AppendLeafHash adds the entry whose [LeafHash] is leaf as the next entry
// and returns its index. A verifier that already hashes entries on several
// cores (the leaf hash is most of the cost of Append) appends the hashes
// here in log order.
func (b *Builder) AppendLeafHash(leaf tlog.Hash) (int64, error) {
	hs, err := tlog.StoredHashesForRecordHash(b.size, leaf, b.hashes)
	if err != nil {
		return 0, fmt.Errorf("append ballot log entry %d: %w", b.size, err)
	}
	b.hashes = append(b.hashes, hs...)
	b.size++
	return b.size - 1, nil
}

// Size is the number of entries appended so far.
func (b *Builder) Size() int64 { return b.size }

// TreeHash returns the root of the log's first size entries, for any size
// from 0 (the empty tree) to [Builder.Size].
func (b *Builder) TreeHash(size int64) (tlog.Hash, error) {
	if size < 0 || size > b.size {
		return tlog.Hash{}, fmt.Errorf("ballot log root at size %d: the log has %d entries", size, b.size)
	}
	h, err := tlog.TreeHash(size, b.hashes)
	if err != nil {
		return tlog.Hash{}, fmt.Errorf("ballot log root at size %d: %w", size, err)
	}
	return h, nil
}
