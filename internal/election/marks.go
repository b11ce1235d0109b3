package election

import (
	"slices"
	"strconv"
)

// MarkKind is what a ballot says on one item once validated.
type MarkKind uint8

const (
	// MarkAbstain: a blank item, an explicit abstention, or no picks.
	MarkAbstain MarkKind = iota
	MarkYes
	MarkNo
	// MarkInvalid: the selection broke the item's rule (more picks than
	// seats). The unit takes part but votes for nothing on this item.
	MarkInvalid
	// MarkPicks: one to Seats candidates, as sorted candidate indexes.
	MarkPicks
)

// Mark is a validated answer to one item.
type Mark struct {
	Kind  MarkKind
	Picks []uint16 // candidate indexes, ascending; MarkPicks only
}

// Equal reports whether two marks say the same thing.
func (m Mark) Equal(o Mark) bool {
	return m.Kind == o.Kind && slices.Equal(m.Picks, o.Picks)
}

// Marks are a ballot's answers, one per item of the definition, in item
// order.
type Marks []Mark

// Equal reports whether two ballots say the same thing on every item.
func (m Marks) Equal(o Marks) bool {
	return slices.EqualFunc(m, o, Mark.Equal)
}

// Choice is a raw answer to a motion as it arrives on a ballot.
type Choice uint8

const (
	ChoiceNone Choice = iota
	ChoiceYes
	ChoiceNo
	ChoiceAbstain
)

// Selection is a raw answer to one item as it arrives on a ballot.
type Selection struct {
	ItemID     string
	Choice     Choice
	Candidates []string
}

// Marks validates a ballot's selections against the definition and returns
// one mark per item. Unknown items or candidates, duplicate entries and
// answers of the wrong kind are errors naming the field: the ballot is
// malformed. More picks than seats is not an error: that item is
// MarkInvalid and invalid reports true.
func (d *Definition) Marks(sels []Selection) (marks Marks, invalid bool, err error) {
	marks = make(Marks, len(d.Items))
	seen := make([]bool, len(d.Items))
	for i, s := range sels {
		field := "selections[" + strconv.Itoa(i) + "]"
		idx := d.ItemIndex(s.ItemID)
		if idx < 0 {
			return nil, false, Errorf(CodeInvalid, field+".item_id", "unknown item id %q: the ballot does not match this election", s.ItemID)
		}
		if seen[idx] {
			return nil, false, Errorf(CodeInvalid, field+".item_id", "item %q answered twice", s.ItemID)
		}
		seen[idx] = true
		it := &d.Items[idx]
		switch it.Kind {
		case KindMotion:
			if len(s.Candidates) != 0 {
				return nil, false, Errorf(CodeInvalid, field+".candidate_ids", "item %q is a motion: answer yes, no or abstain", s.ItemID)
			}
			switch s.Choice {
			case ChoiceYes:
				marks[idx] = Mark{Kind: MarkYes}
			case ChoiceNo:
				marks[idx] = Mark{Kind: MarkNo}
			case ChoiceNone, ChoiceAbstain:
				marks[idx] = Mark{Kind: MarkAbstain}
			default:
				return nil, false, Errorf(CodeInvalid, field+".choice", "unknown choice %d", s.Choice)
			}
		case KindCandidates:
			if s.Choice != ChoiceNone && s.Choice != ChoiceAbstain {
				return nil, false, Errorf(CodeInvalid, field+".choice", "item %q is a candidate election: pick candidates, not yes or no", s.ItemID)
			}
			if len(s.Candidates) > len(it.Candidates) {
				return nil, false, Errorf(CodeInvalid, field+".candidate_ids", "item %q: %d picks but only %d candidates", s.ItemID, len(s.Candidates), len(it.Candidates))
			}
			picks := make([]uint16, 0, len(s.Candidates))
			for j, cid := range s.Candidates {
				ci := slices.IndexFunc(it.Candidates, func(c Candidate) bool { return c.ID == cid })
				if ci < 0 {
					return nil, false, Errorf(CodeInvalid, field+".candidate_ids["+strconv.Itoa(j)+"]", "unknown candidate %q in item %q", cid, s.ItemID)
				}
				if slices.Contains(picks, uint16(ci)) {
					return nil, false, Errorf(CodeInvalid, field+".candidate_ids["+strconv.Itoa(j)+"]", "candidate %q picked twice in item %q", cid, s.ItemID)
				}
				picks = append(picks, uint16(ci))
			}
			switch {
			case len(picks) == 0:
				marks[idx] = Mark{Kind: MarkAbstain}
			case len(picks) > it.Seats:
				marks[idx] = Mark{Kind: MarkInvalid}
				invalid = true
			default:
				slices.Sort(picks)
				marks[idx] = Mark{Kind: MarkPicks, Picks: picks}
			}
		}
	}
	return marks, invalid, nil
}
