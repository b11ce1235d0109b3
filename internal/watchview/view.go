// Package watchview turns an election overview (what WatchTally sends)
// into what the committee's live views show: the terminal's
// 'doorstep tally watch' and the browser dashboard render the same View,
// so a figure reads the same on both. Shares are election.Percent's, words
// are internal/i18n's; every decision in a View (quorum met, an outcome)
// is the server's, made in exact arithmetic, and is only carried here.
package watchview

import (
	"encoding/base64"
	"slices"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/tallyview"
)

// View is one overview as people read it.
type View struct {
	ElectionID, Title string
	// State is the election's state in words; Since when it began (zero
	// when it has not).
	State string
	Since time.Time
	// CheckpointSize and CheckpointRoot name the ballot log state the
	// figures were computed at.
	CheckpointSize uint64
	CheckpointRoot string
	// UnitsCounted of RosterUnits have a ballot that counts; Area is the
	// counted units' floor area against the roster's.
	RosterUnits, UnitsCounted uint64
	Area                      Bar
	Items                     []Item
	Buildings                 []Building
	// Contested units and split owners wait for the committee.
	Contested, SplitOwners uint64
	Devices                []Device
}

// Bar is a share against a mark: Part of Whole, with the legal mark at
// MarkNum/MarkDen of the whole.
type Bar struct {
	PartN, WholeN    int64
	MarkNum, MarkDen int64
	// Part and Whole as shown (areas in m² with two decimals); Pct is
	// election.Percent of them ("" when the whole is zero), Mark the mark
	// as a percentage, both without the sign.
	Part, Whole, Pct, Mark string
	// Met: the share has reached the mark (AtLeast: reaching it is enough;
	// otherwise it must be passed). For quorum and outcomes this is the
	// server's decision, not this package's.
	Met     bool
	AtLeast bool
}

// Item is one item on the ballot sheet.
type Item struct {
	ID, Title string
	// Rule is the item's threshold in words; Outcome its result.
	Rule, Outcome string
	Candidates    bool
	// QuorumArea and QuorumHead are its participation against the roster
	// and the 2/3 mark.
	QuorumArea, QuorumHead Bar
	// YesArea and YesHead (motions) are its yes votes against the
	// participation and its threshold.
	YesArea, YesHead Bar
	Ranked           []Candidate // candidate elections, ranked first
	// Held is how many split owners' headcount votes wait.
	Held uint64
}

// Candidate is one candidate's support against the 1/2 mark.
type Candidate struct {
	ID, Name   string
	Rank       uint32
	Status     string
	Area, Head Bar
}

// Building is one building's turnout.
type Building struct {
	Name                  string
	Units, Counted, Held  uint64
	UnitsBar, AreaCounted Bar
}

// Device is one canvasser's device.
type Device struct {
	ID, Label   string
	LastSync    time.Time
	RecordsHeld uint64
	// Unsent is what it said it still holds (UnsentKnown: it said).
	Unsent      uint64
	UnsentKnown bool
	Gaps        uint64
	Revoked     bool
}

// Build makes the View of ov in l; def (nil when not known) gives titles
// and names.
func Build(ov *doorstepv1.ElectionOverview, def *election.Definition, l i18n.Lang) *View {
	t := ov.GetTally()
	v := &View{ElectionID: t.GetElectionId(), RosterUnits: t.GetRosterUnits(), UnitsCounted: t.GetUnitsCounted(),
		Contested: t.GetUnitsContested(), SplitOwners: ov.GetSplitOwners()}
	if def != nil {
		v.Title = def.Title
	}
	v.State, v.Since = state(ov.GetStatus(), l)
	if cp := t.GetCheckpoint(); cp != nil {
		v.CheckpointSize = cp.GetSize()
		v.CheckpointRoot = base64.StdEncoding.EncodeToString(cp.GetRootHash())
	}
	var areaCounted int64
	for _, b := range ov.GetBuildings() {
		areaCounted += b.GetAreaCounted()
		v.Buildings = append(v.Buildings, Building{Name: b.GetBuilding(), Units: b.GetUnits(), Counted: b.GetUnitsCounted(), Held: b.GetUnitsHeld(),
			UnitsBar:    count(int64(b.GetUnitsCounted()), int64(b.GetUnits()), 2, 3, true),
			AreaCounted: area(b.GetAreaCounted(), b.GetArea(), 2, 3, true)})
	}
	v.Area = area(areaCounted, t.GetRosterArea(), 2, 3, true)
	defs := map[string]*election.Item{}
	if def != nil {
		for i := range def.Items {
			defs[def.Items[i].ID] = &def.Items[i]
		}
	}
	for _, it := range t.GetItems() {
		v.Items = append(v.Items, item(t, it, defs[it.GetItemId()], l))
	}
	for _, d := range ov.GetDevices() {
		dv := Device{ID: d.GetDeviceId(), Label: d.GetLabel(), RecordsHeld: d.GetRecordsHeld(), Unsent: d.GetUnsent(),
			UnsentKnown: d.GetUnsentKnown(), Gaps: d.GetGaps(), Revoked: d.GetRevoked()}
		dv.LastSync = when(d.GetLastSync())
		v.Devices = append(v.Devices, dv)
	}
	// Who must still sync first, then by label.
	slices.SortStableFunc(v.Devices, func(a, b Device) int {
		if (a.Unsent > 0) != (b.Unsent > 0) {
			if a.Unsent > 0 {
				return -1
			}
			return 1
		}
		if a.Label != b.Label {
			if a.Label < b.Label {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return v
}

func state(st *doorstepv1.ElectionStatus, l i18n.Lang) (string, time.Time) {
	switch st.GetState() {
	case doorstepv1.ElectionState_ELECTION_STATE_OPEN:
		return l.T("state.open"), when(st.GetOpenedAt())
	case doorstepv1.ElectionState_ELECTION_STATE_CLOSED:
		return l.T("state.closed"), when(st.GetClosedAt())
	case doorstepv1.ElectionState_ELECTION_STATE_CERTIFIED:
		return l.T("state.certified"), when(st.GetCertifiedAt())
	}
	return l.T("state.defined"), time.Time{}
}

// when is ts, or the zero time when there is none.
func when(ts *timestamppb.Timestamp) time.Time {
	if ts == nil {
		return time.Time{}
	}
	return ts.AsTime()
}

func item(t *doorstepv1.Tally, it *doorstepv1.ItemTally, d *election.Item, l i18n.Lang) Item {
	p := it.GetParticipating()
	out := Item{ID: it.GetItemId(), Held: it.GetHeldHeadcount(), Outcome: l.T("outcome." + tallyview.OutcomeKey(it.GetOutcome())),
		QuorumArea: area(p.GetArea(), t.GetRosterArea(), 2, 3, true),
		QuorumHead: count(int64(p.GetHeadcount()), int64(t.GetRosterHeadcount()), 2, 3, true)}
	// The server decided quorum exactly; the bars carry its word.
	out.QuorumArea.Met, out.QuorumHead.Met = it.GetQuorumMet(), it.GetQuorumMet()
	if d != nil {
		out.Title = d.Title
	}
	cands := d != nil && d.Kind == election.KindCandidates || len(it.GetCandidates()) > 0
	if cands {
		out.Candidates = true
		out.Rule = l.T("watch.rule.candidates")
		if d != nil {
			out.Rule = l.T("watch.rule.seats", d.Seats)
		}
		names := map[string]string{}
		if d != nil {
			for _, c := range d.Candidates {
				names[c.ID] = c.Name
			}
		}
		for _, c := range tallyview.Ranked(it.GetCandidates()) {
			s := c.GetSupport()
			cv := Candidate{ID: c.GetCandidateId(), Name: names[c.GetCandidateId()], Rank: c.GetRank(),
				Area: area(s.GetArea(), p.GetArea(), 1, 2, false), Head: count(int64(s.GetHeadcount()), int64(p.GetHeadcount()), 1, 2, false)}
			cv.Area.Met, cv.Head.Met = c.GetQualified(), c.GetQualified()
			switch {
			case c.GetTied():
				cv.Status = l.T("outcome.tied")
			case c.GetElected():
				cv.Status = l.T("outcome.elected")
			default:
				cv.Status = l.T("outcome.not_elected")
			}
			out.Ranked = append(out.Ranked, cv)
		}
		return out
	}
	num, den, atLeast := int64(1), int64(2), false
	out.Rule = l.T("watch.rule.ordinary")
	if d == nil {
		// The bar is drawn against half; the outcome is the server's.
		out.Rule = l.T("watch.rule.unknown")
	} else if d.Threshold == election.Special {
		num, den, atLeast = 3, 4, true
		out.Rule = l.T("watch.rule.special")
	}
	y := it.GetYes()
	out.YesArea = area(y.GetArea(), p.GetArea(), num, den, atLeast)
	out.YesHead = count(int64(y.GetHeadcount()), int64(p.GetHeadcount()), num, den, atLeast)
	return out
}

func area(part, whole, num, den int64, atLeast bool) Bar {
	b := bar(part, whole, num, den, atLeast)
	b.Part, b.Whole = election.FormatArea(part), election.FormatArea(whole)
	return b
}

func count(part, whole, num, den int64, atLeast bool) Bar {
	b := bar(part, whole, num, den, atLeast)
	b.Part, b.Whole = strconv.FormatInt(part, 10), strconv.FormatInt(whole, 10)
	return b
}

// bar is a share against num/den, compared in integers.
func bar(part, whole, num, den int64, atLeast bool) Bar {
	b := Bar{PartN: part, WholeN: whole, MarkNum: num, MarkDen: den, AtLeast: atLeast,
		Pct: election.Percent(part, whole), Mark: election.Percent(num, den)}
	if whole > 0 {
		if atLeast {
			b.Met = part*den >= num*whole
		} else {
			b.Met = part*den > num*whole
		}
	}
	return b
}

// Cells is how many of width cells of a bar the share fills, and the cell
// the mark falls on, by integer arithmetic (no cell is filled for a zero
// whole).
func (b Bar) Cells(width int) (filled, mark int) {
	mark = int(int64(width) * b.MarkNum / b.MarkDen)
	if b.WholeN <= 0 {
		return 0, mark
	}
	p := b.PartN
	if p > b.WholeN {
		p = b.WholeN
	}
	return int(int64(width) * p / b.WholeN), mark
}
