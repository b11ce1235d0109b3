package ballotlog_test

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

// treeAt returns the tree of the first n entries stored in m.
func treeAt(t *testing.T, m ballotlog.MemoryHashes, n int64) tlog.Tree {
	t.Helper()
	h, err := tlog.TreeHash(n, m)
	if err != nil {
		t.Fatalf("TreeHash(%d): %v", n, err)
	}
	return tlog.Tree{N: n, Hash: h}
}

func TestInclusionAllIndexes(t *testing.T) {
	entries := testEntries(20)
	m := storeLike(t, entries)
	for size := int64(1); size <= int64(len(entries)); size++ {
		tree := treeAt(t, m, size)
		for i := int64(0); i < size; i++ {
			p, err := ballotlog.ProveInclusion(i, size, m)
			if err != nil {
				t.Fatalf("ProveInclusion(%d, %d): %v", i, size, err)
			}
			if err := ballotlog.CheckInclusion(entries[i], i, tree, p); err != nil {
				t.Errorf("CheckInclusion(entry %d, size %d): %v", i, size, err)
			}
		}
	}
}

func TestInclusionTampered(t *testing.T) {
	entries := testEntries(11)
	m := storeLike(t, entries)
	tree := treeAt(t, m, 11)
	const index = 6
	proof, err := ballotlog.ProveInclusion(index, 11, m)
	if err != nil {
		t.Fatal(err)
	}
	flipped := append([]byte(nil), entries[index]...)
	flipped[0] ^= 0x80
	badProof := append(tlog.RecordProof(nil), proof...)
	badProof[0][0] ^= 0x01
	otherRoot := tree
	otherRoot.Hash[31] ^= 0x01

	tests := []struct {
		name  string
		entry []byte
		index int64
		tree  tlog.Tree
		proof tlog.RecordProof
	}{
		{"flipped entry byte", flipped, index, tree, proof},
		{"other entry", entries[index+1], index, tree, proof},
		{"wrong index", entries[index], index + 1, tree, proof},
		{"index beyond tree", entries[index], 11, tree, proof},
		{"negative index", entries[index], -1, tree, proof},
		{"tampered proof", entries[index], index, tree, badProof},
		{"short proof", entries[index], index, tree, proof[1:]},
		{"other root", entries[index], index, otherRoot, proof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ballotlog.CheckInclusion(tt.entry, tt.index, tt.tree, tt.proof)
			if !errors.Is(err, ballotlog.ErrNotIncluded) {
				t.Errorf("CheckInclusion = %v; want ErrNotIncluded", err)
			}
		})
	}
}

func TestConsistencyAllPairs(t *testing.T) {
	entries := testEntries(20)
	m := storeLike(t, entries)
	for n := int64(0); n <= int64(len(entries)); n++ {
		for old := int64(0); old <= n; old++ {
			p, err := ballotlog.ProveConsistency(old, n, m)
			if err != nil {
				t.Fatalf("ProveConsistency(%d, %d): %v", old, n, err)
			}
			if err := ballotlog.CheckConsistency(treeAt(t, m, old), treeAt(t, m, n), p); err != nil {
				t.Errorf("CheckConsistency(%d → %d): %v", old, n, err)
			}
		}
	}
}

func TestSplitView(t *testing.T) {
	// Two histories that agree on entries 0 and 1 and then differ: what a
	// server shows one device (A) and another device or auditor (B).
	a := testEntries(8)
	b := testEntries(8)
	b[2] = []byte("a different ballot in the same place")
	ma, mb := storeLike(t, a), storeLike(t, b)

	a5, a8 := treeAt(t, ma, 5), treeAt(t, ma, 8)
	b5, b8 := treeAt(t, mb, 5), treeAt(t, mb, 8)
	proofA, err := ballotlog.ProveConsistency(5, 8, ma)
	if err != nil {
		t.Fatal(err)
	}
	proofB, err := ballotlog.ProveConsistency(5, 8, mb)
	if err != nil {
		t.Fatal(err)
	}
	if err := ballotlog.CheckConsistency(a5, a8, proofA); err != nil {
		t.Fatalf("history A is not consistent with itself: %v", err)
	}
	if err := ballotlog.CheckConsistency(b5, b8, proofB); err != nil {
		t.Fatalf("history B is not consistent with itself: %v", err)
	}

	bumped := a5
	bumped.Hash[0] ^= 0xff
	tests := []struct {
		name         string
		older, newer tlog.Tree
		proof        tlog.TreeProof
	}{
		{"held B5, shown A8 with A's proof", b5, a8, proofA},
		{"held B5, shown A8 with B's proof", b5, a8, proofB},
		{"held A5, shown B8 with B's proof", a5, b8, proofB},
		{"held A5, shown B8 with A's proof", a5, b8, proofA},
		{"same size, other root", a8, b8, nil},
		{"same size, other root, with a proof", a5, b5, proofA},
		{"new checkpoint smaller", a8, a5, proofA},
		{"empty proof", b5, a8, nil},
		{"tampered root", bumped, a8, proofA},
		{"empty tree with a non-empty root", tlog.Tree{N: 0, Hash: a5.Hash}, a8, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ballotlog.CheckConsistency(tt.older, tt.newer, tt.proof)
			if !errors.Is(err, ballotlog.ErrSplitView) {
				t.Errorf("CheckConsistency = %v; want ErrSplitView", err)
			}
		})
	}
}

func TestProveErrors(t *testing.T) {
	m := storeLike(t, testEntries(5))
	tests := []struct {
		name string
		run  func() error
	}{
		{"consistency sizes reversed", func() error { _, err := ballotlog.ProveConsistency(5, 3, m); return err }},
		{"consistency negative", func() error { _, err := ballotlog.ProveConsistency(-1, 3, m); return err }},
		{"consistency beyond stored", func() error { _, err := ballotlog.ProveConsistency(3, 9, m); return err }},
		{"inclusion index at size", func() error { _, err := ballotlog.ProveInclusion(5, 5, m); return err }},
		{"inclusion negative", func() error { _, err := ballotlog.ProveInclusion(-1, 5, m); return err }},
		{"inclusion beyond stored", func() error { _, err := ballotlog.ProveInclusion(7, 9, m); return err }},
		{"check negative size", func() error {
			return ballotlog.CheckConsistency(tlog.Tree{N: -1}, tlog.Tree{N: 1}, nil)
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

func ExampleCheckConsistency() {
	// A log grown as a store grows it: each entry's hashes appended.
	var hs ballotlog.MemoryHashes
	for i := range 8 {
		h, err := ballotlog.HashesToStore(int64(i), fmt.Appendf(nil, "entry %d", i), hs)
		if err != nil {
			panic(err)
		}
		hs = append(hs, h...)
	}
	root5, _ := tlog.TreeHash(5, hs)
	root8, _ := tlog.TreeHash(8, hs)
	proof, _ := ballotlog.ProveConsistency(5, 8, hs)
	err := ballotlog.CheckConsistency(tlog.Tree{N: 5, Hash: root5}, tlog.Tree{N: 8, Hash: root8}, proof)
	fmt.Println(err)
	// Output: <nil>
}
