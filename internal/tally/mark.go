package tally

import (
	"strconv"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// bucket is where a mark's area and headcount go on one item.
type bucket uint8

const (
	bucketAbstain bucket = iota
	bucketYes
	bucketNo
	bucketInvalid
	bucketPicks
)

// fits reports whether m is a well-formed answer to it. Ballot marks come
// from election.Definition.Marks and always fit; the check guards decisions
// and anything read back from storage.
func fits(it *election.Item, m election.Mark) bool {
	switch m.Kind {
	case election.MarkAbstain, election.MarkInvalid:
		return len(m.Picks) == 0
	case election.MarkYes, election.MarkNo:
		return it.Kind == election.KindMotion && len(m.Picks) == 0
	case election.MarkPicks:
		if it.Kind != election.KindCandidates || len(m.Picks) == 0 || len(m.Picks) > it.Seats {
			return false
		}
		for i, p := range m.Picks {
			if int(p) >= len(it.Candidates) || i > 0 && p <= m.Picks[i-1] {
				return false
			}
		}
		return true
	}
	return false
}

// wellFormed reports whether m makes sense for some item: a known kind,
// and picks only on MarkPicks, 1 to MaxCandidates of them, ascending,
// distinct and below MaxCandidates. Only well-formed marks have a binary
// form; decisions with other marks are ignored.
func wellFormed(m election.Mark) bool {
	switch {
	case m.Kind > election.MarkPicks:
		return false
	case m.Kind != election.MarkPicks:
		return len(m.Picks) == 0
	case len(m.Picks) == 0 || len(m.Picks) > election.MaxCandidates:
		return false
	}
	for i, p := range m.Picks {
		if p >= election.MaxCandidates || i > 0 && p <= m.Picks[i-1] {
			return false
		}
	}
	return true
}

// classify says where m counts on it. A mark that does not fit the item
// takes part but votes for nothing, like an invalid selection.
func classify(it *election.Item, m election.Mark) bucket {
	if !fits(it, m) {
		return bucketInvalid
	}
	switch m.Kind {
	case election.MarkYes:
		return bucketYes
	case election.MarkNo:
		return bucketNo
	case election.MarkInvalid:
		return bucketInvalid
	case election.MarkPicks:
		return bucketPicks
	}
	return bucketAbstain
}

// CheckMark reports whether m is a well-formed answer to item i of def, as
// a committee's OwnerDecision must be. The store should reject a decision
// that fails it; a decision that does not fit is otherwise ignored and the
// owner's headcount stays held.
func CheckMark(def *election.Definition, i int, m election.Mark) error {
	if i < 0 || i >= len(def.Items) {
		return election.Errorf(election.CodeInvalid, "item", "item index %d is out of range: the election has %d items", i, len(def.Items))
	}
	if !fits(&def.Items[i], m) {
		return election.Errorf(election.CodeInvalid, "items["+strconv.Itoa(i)+"]", "the decided mark does not answer item %q: use yes, no or abstain for a motion, or up to %d of its candidates", def.Items[i].ID, def.Items[i].Seats)
	}
	return nil
}

// markKey is a mark's canonical byte form: the kind, then each pick as two
// big-endian bytes. Two marks have the same key exactly when Mark.Equal
// holds, and keys order marks for the binary encodings.
func markKey(m election.Mark) string {
	b := make([]byte, 1, 1+2*len(m.Picks))
	b[0] = byte(m.Kind)
	for _, p := range m.Picks {
		b = append(b, byte(p>>8), byte(p))
	}
	return string(b)
}
