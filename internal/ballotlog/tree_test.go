package ballotlog_test

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

// referenceRoot is RFC 6962's Merkle Tree Hash written straight from
// section 2.1, independent of tlog, to check the package against.
func referenceRoot(entries [][]byte) tlog.Hash {
	switch n := len(entries); n {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0x00}, entries[0]...))
	default:
		k := 1
		for k*2 < n {
			k *= 2
		}
		l, r := referenceRoot(entries[:k]), referenceRoot(entries[k:])
		return sha256.Sum256(append(append([]byte{0x01}, l[:]...), r[:]...))
	}
}

// testEntries returns n distinct entries of varying length.
func testEntries(n int) [][]byte {
	es := make([][]byte, n)
	for i := range es {
		es[i] = fmt.Appendf(nil, "entry %d %*s", i, i%7, "")
	}
	return es
}

// storeLike appends entries the way the server's store does: HashesToStore,
// then the hashes written at StoredHashIndex(0, size) onward.
func storeLike(t *testing.T, entries [][]byte) ballotlog.MemoryHashes {
	t.Helper()
	var m ballotlog.MemoryHashes
	for i, e := range entries {
		size := int64(i)
		hs, err := ballotlog.HashesToStore(size, e, m)
		if err != nil {
			t.Fatalf("HashesToStore(%d): %v", size, err)
		}
		if at := tlog.StoredHashIndex(0, size); at != int64(len(m)) {
			t.Fatalf("entry %d: hashes go at storage index %d, but %d are stored", i, at, len(m))
		}
		m = append(m, hs...)
	}
	return m
}

func TestTreeMatchesRFC6962(t *testing.T) {
	entries := testEntries(70)
	m := storeLike(t, entries)
	var b, byLeaf ballotlog.Builder
	for i, e := range entries {
		idx, err := b.Append(e)
		if err != nil || idx != int64(i) {
			t.Fatalf("Append entry %d = %d, %v", i, idx, err)
		}
		idx, err = byLeaf.AppendLeafHash(ballotlog.LeafHash(e))
		if err != nil || idx != int64(i) {
			t.Fatalf("AppendLeafHash entry %d = %d, %v", i, idx, err)
		}
	}
	if b.Size() != int64(len(entries)) {
		t.Fatalf("Size = %d; want %d", b.Size(), len(entries))
	}
	for n := 0; n <= len(entries); n++ {
		t.Run(fmt.Sprint("size", n), func(t *testing.T) {
			want := referenceRoot(entries[:n])
			got, err := b.TreeHash(int64(n))
			if err != nil || got != want {
				t.Errorf("Builder.TreeHash(%d) = %v, %v; want %v", n, got, err, want)
			}
			got, err = byLeaf.TreeHash(int64(n))
			if err != nil || got != want {
				t.Errorf("TreeHash(%d) after AppendLeafHash = %v, %v; want %v", n, got, err, want)
			}
			got, err = tlog.TreeHash(int64(n), m)
			if err != nil || got != want {
				t.Errorf("tlog.TreeHash over stored hashes (%d) = %v, %v; want %v", n, got, err, want)
			}
		})
	}
}

func TestFlippedByteChangesRoot(t *testing.T) {
	entries := testEntries(9)
	var clean ballotlog.Builder
	for _, e := range entries {
		if _, err := clean.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	want, err := clean.TreeHash(clean.Size())
	if err != nil {
		t.Fatal(err)
	}
	for i := range entries {
		for _, at := range []int{0, len(entries[i]) - 1} {
			t.Run(fmt.Sprintf("entry%d_byte%d", i, at), func(t *testing.T) {
				var b ballotlog.Builder
				for j, e := range entries {
					if j == i {
						e = append([]byte(nil), e...)
						e[at] ^= 0x01
					}
					if _, err := b.Append(e); err != nil {
						t.Fatal(err)
					}
				}
				got, err := b.TreeHash(b.Size())
				if err != nil {
					t.Fatal(err)
				}
				if got == want {
					t.Errorf("flipping entry %d byte %d left the root unchanged: %v", i, at, got)
				}
			})
		}
	}
}

func TestTreeErrors(t *testing.T) {
	var b ballotlog.Builder
	for _, e := range testEntries(4) {
		if _, err := b.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		run  func() error
	}{
		{"root beyond size", func() error { _, err := b.TreeHash(5); return err }},
		{"negative root size", func() error { _, err := b.TreeHash(-1); return err }},
		{"negative append size", func() error {
			_, err := ballotlog.HashesToStore(-1, []byte("x"), ballotlog.MemoryHashes(nil))
			return err
		}},
		{"append past stored hashes", func() error {
			// The store claims 5 entries but has no hashes: entry 5 completes
			// a subtree with entry 4, whose hash tlog must read.
			_, err := ballotlog.HashesToStore(5, []byte("x"), ballotlog.MemoryHashes(nil))
			return err
		}},
		{"read unstored hash", func() error {
			_, err := ballotlog.MemoryHashes(make([]tlog.Hash, 3)).ReadHashes([]int64{0, 3})
			return err
		}},
		{"read negative index", func() error {
			_, err := ballotlog.MemoryHashes(make([]tlog.Hash, 3)).ReadHashes([]int64{-1})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.run(); err == nil {
				t.Error("got no error")
			}
		})
	}
}

func TestBuilderGrow(t *testing.T) {
	entries := testEntries(33)
	var grown, plain ballotlog.Builder
	grown.Grow(int64(len(entries)))
	grown.Grow(0)
	for _, e := range entries {
		if _, err := grown.Append(e); err != nil {
			t.Fatal(err)
		}
		if _, err := plain.Append(e); err != nil {
			t.Fatal(err)
		}
		g, err1 := grown.TreeHash(grown.Size())
		p, err2 := plain.TreeHash(plain.Size())
		if err1 != nil || err2 != nil || g != p {
			t.Fatalf("after Grow, root %v (%v); without, %v (%v)", g, err1, p, err2)
		}
	}
}
