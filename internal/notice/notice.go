package notice

import (
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"strings"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/tallyview"
)

// Settled is one decision of the committee found in the ballot log, with
// the server's time of it.
type Settled struct {
	Adjudication *doorstepv1.Adjudication
	At           time.Time
}

// Input is what a notice shows.
type Input struct {
	Lang       i18n.Lang
	Definition *doorstepv1.ElectionDefinition
	Tally      *doorstepv1.Tally
	Status     *doorstepv1.ElectionStatus
	// TallySHA256 is the SHA-256 of the tally's canonical JSON (what a
	// certification signs).
	TallySHA256 []byte
	// Held and SplitOwners are what still waits for the committee.
	Held        []*doorstepv1.ContestedUnit
	SplitOwners []*doorstepv1.SplitOwner
	// Settled are the committee's decisions, the latest per subject.
	Settled []Settled
	// Final asks for the final notice; the status must be certified.
	Final bool
	// Location is the time zone dates are shown in; Generated is now.
	Location  *time.Location
	Generated time.Time
}

// Errors of Render.
var (
	ErrNotCertified = errors.New("the result is not certified yet: a final notice comes only after 'doorstep election certify'; print the preliminary notice (without --final) for the objection period")
	ErrCertified    = errors.New("the result is certified: print the final notice with --final")
	ErrNotClosed    = errors.New("the election is not closed yet: the notice is posted after 'doorstep election close'")
	ErrIncomplete   = errors.New("a notice needs the election's definition, tally and status")
)

//go:embed notice.html.tmpl
var files embed.FS

var tmpl = template.Must(template.New("notice.html.tmpl").ParseFS(files, "notice.html.tmpl"))

// Render writes the notice as one HTML page.
func Render(w io.Writer, in Input) error {
	p, err := build(in)
	if err != nil {
		return err
	}
	return tmpl.Execute(w, p)
}

// Fig is one figure on the page. Key names it (the test finds every
// figure by its key and checks it against the tally).
type Fig struct {
	Key  string
	Text string
}

type row struct {
	Label     string
	Area      Fig
	AreaPct   Fig
	Heads     Fig
	HeadsPct  Fig
	Status    string
	Elected   bool
	Rank      Fig
	Candidate string
	// Wide: a row without a candidate in a candidates' table.
	Wide bool
}

type item struct {
	No         int
	ID, Title  string
	Rule       string
	Candidates bool
	PartArea   Fig
	PartAreaP  Fig
	PartHeads  Fig
	PartHeadsP Fig
	Quorum     string
	Rows       []row
	Outcome    string
	Elected    []string
	Held       Fig
	HasHeld    bool
}

type settledRow struct {
	Subject, Decision, Reason, At string
}

type page struct {
	Lang                            string
	Title, Heading                  string
	ElectionTitle, ElectionID       string
	Final                           bool
	StatusLine                      string
	RosterUnits, RosterArea, Owners Fig
	Counted, Contested, Double      Fig
	Items                           []item
	Elected                         []string
	Held                            []string
	Split                           []string
	Settled                         []settledRow
	CheckSize                       Fig
	CheckRoot                       string
	TallyHash                       string
	ReceiptCmd                      string
	Generated                       string
}

// T is the page's words, for the template.
func (p *page) T(key string) string { return i18n.Lang(p.Lang).T(key) }

// Check says whether a notice of this kind may be printed at status st:
// a preliminary one after the close and before certification, the final
// one after certification. It returns the state for convenience.
func Check(st *doorstepv1.ElectionStatus, final bool) (doorstepv1.ElectionState, error) {
	state := st.GetState()
	switch {
	case state == doorstepv1.ElectionState_ELECTION_STATE_CERTIFIED && !final:
		return state, ErrCertified
	case state == doorstepv1.ElectionState_ELECTION_STATE_CERTIFIED:
		return state, nil
	case final:
		return state, ErrNotCertified
	case state != doorstepv1.ElectionState_ELECTION_STATE_CLOSED:
		return state, ErrNotClosed
	}
	return state, nil
}

func build(in Input) (*page, error) {
	t, st, def := in.Tally, in.Status, in.Definition
	if t == nil || st == nil || def == nil {
		return nil, ErrIncomplete
	}
	if _, err := Check(st, in.Final); err != nil {
		return nil, err
	}
	l := in.Lang
	loc := in.Location
	if loc == nil {
		loc = time.Local
	}
	when := func(ts interface{ AsTime() time.Time }) string {
		return ts.AsTime().In(loc).Format("2006-01-02 15:04 MST")
	}
	p := &page{
		Lang: string(l), Final: in.Final,
		ElectionTitle: def.GetTitle(), ElectionID: t.GetElectionId(),
		RosterUnits: Fig{"roster.units", fmt.Sprint(t.GetRosterUnits())},
		RosterArea:  Fig{"roster.area", election.FormatArea(t.GetRosterArea())},
		Owners:      Fig{"roster.owners", fmt.Sprint(t.GetRosterHeadcount())},
		Counted:     Fig{"units.counted", fmt.Sprint(t.GetUnitsCounted())},
		Contested:   Fig{"units.contested", fmt.Sprint(t.GetUnitsContested())},
		Double:      Fig{"units.double", fmt.Sprint(t.GetUnitsDoubleVisited())},
		ReceiptCmd:  "doorstep audit receipt --election " + t.GetElectionId() + " CODE",
		Generated:   in.Generated.In(loc).Format("2006-01-02 15:04 MST"),
		TallyHash:   hex.EncodeToString(in.TallySHA256),
	}
	if in.Final {
		p.Title = l.T("notice.title.final")
		p.StatusLine = l.T("notice.status.final", when(st.GetCertifiedAt()))
	} else {
		p.Title = l.T("notice.title.preliminary")
		p.StatusLine = l.T("notice.status.preliminary", when(st.GetClosedAt()), when(st.GetObjectionEnds()))
	}
	if cp := t.GetCheckpoint(); cp != nil {
		p.CheckSize = Fig{"checkpoint.size", fmt.Sprint(cp.GetSize())}
		p.CheckRoot = base64.StdEncoding.EncodeToString(cp.GetRootHash())
	}
	defs := map[string]*doorstepv1.Item{}
	for _, it := range def.GetItems() {
		defs[it.GetItemId()] = it
	}
	names := candidateNames(def)
	for i, it := range t.GetItems() {
		d := defs[it.GetItemId()]
		k := it.GetItemId() + "."
		part := it.GetParticipating()
		x := item{
			No: i + 1, ID: it.GetItemId(), Title: d.GetTitle(), Rule: Rule(l, d),
			PartArea:   Fig{k + "participating.area", election.FormatArea(part.GetArea())},
			PartAreaP:  Fig{k + "participating.area_pct", pct(part.GetArea(), t.GetRosterArea())},
			PartHeads:  Fig{k + "participating.headcount", fmt.Sprint(part.GetHeadcount())},
			PartHeadsP: Fig{k + "participating.headcount_pct", pct(int64(part.GetHeadcount()), int64(t.GetRosterHeadcount()))},
			Quorum:     l.T("notice.quorum.not_met"),
			Outcome:    Outcome(l, it.GetOutcome()),
			Held:       Fig{k + "held_headcount", fmt.Sprint(it.GetHeldHeadcount())},
			HasHeld:    it.GetHeldHeadcount() > 0,
		}
		if it.GetQuorumMet() {
			x.Quorum = l.T("notice.quorum.met")
		}
		count := func(key, label string, c *doorstepv1.Count) row {
			return row{Label: label,
				Area:     Fig{k + key + ".area", election.FormatArea(c.GetArea())},
				AreaPct:  Fig{k + key + ".area_pct", pct(c.GetArea(), part.GetArea())},
				Heads:    Fig{k + key + ".headcount", fmt.Sprint(c.GetHeadcount())},
				HeadsPct: Fig{k + key + ".headcount_pct", pct(int64(c.GetHeadcount()), int64(part.GetHeadcount()))},
			}
		}
		if d.GetCandidates() != nil || len(it.GetCandidates()) > 0 {
			x.Candidates = true
			for _, c := range tallyview.Ranked(it.GetCandidates()) {
				r := count("candidate."+c.GetCandidateId(), "", c.GetSupport())
				r.Candidate = names[c.GetCandidateId()]
				if r.Candidate == "" {
					r.Candidate = c.GetCandidateId()
				}
				r.Rank = Fig{k + "candidate." + c.GetCandidateId() + ".rank", "-"}
				if c.GetRank() > 0 {
					r.Rank.Text = fmt.Sprint(c.GetRank())
				}
				r.Status = CandidateStatus(l, c)
				r.Elected = c.GetElected()
				if c.GetElected() {
					x.Elected = append(x.Elected, r.Candidate)
				}
				x.Rows = append(x.Rows, r)
			}
			if len(x.Elected) > 0 {
				p.Elected = append(p.Elected, fmt.Sprintf("%s: %s", d.GetTitle(), strings.Join(x.Elected, l.T("notice.list_sep"))))
			}
		} else {
			x.Rows = append(x.Rows, count("yes", l.T("notice.row.yes"), it.GetYes()), count("no", l.T("notice.row.no"), it.GetNo()), count("abstain", l.T("notice.row.abstain"), it.GetAbstain()))
		}
		inv := count("invalid", l.T("notice.row.invalid"), it.GetInvalid())
		inv.Wide = x.Candidates
		x.Rows = append(x.Rows, inv)
		p.Items = append(p.Items, x)
	}
	for _, u := range in.Held {
		p.Held = append(p.Held, l.T("notice.held.unit", u.GetUnitId(), len(u.GetBallots())))
	}
	for _, o := range in.SplitOwners {
		p.Split = append(p.Split, l.T("notice.held.owner", o.GetOwnerKey(), o.GetItemId(), strings.Join(o.GetUnitIds(), l.T("notice.list_sep"))))
	}
	for _, s := range in.Settled {
		a := s.Adjudication
		r := settledRow{Reason: a.GetReason(), At: s.At.In(loc).Format("2006-01-02 15:04")}
		switch sub := a.GetSubject().(type) {
		case *doorstepv1.Adjudication_Unit:
			r.Subject = l.T("notice.settled.unit", sub.Unit.GetUnitId())
			if id := sub.Unit.GetCountedRecordId(); id != "" {
				r.Decision = l.T("notice.settled.counted", id)
			} else {
				r.Decision = l.T("notice.settled.void")
			}
		case *doorstepv1.Adjudication_Owner:
			r.Subject = l.T("notice.settled.owner", sub.Owner.GetOwnerKey(), sub.Owner.GetItemId())
			r.Decision = l.T("notice.settled.owner_vote", SelectionText(l, &doorstepv1.Selection{ItemId: sub.Owner.GetItemId(), Choice: sub.Owner.GetChoice(), CandidateIds: sub.Owner.GetCandidateIds()}, names))
		default:
			continue
		}
		p.Settled = append(p.Settled, r)
	}
	return p, nil
}

func candidateNames(def *doorstepv1.ElectionDefinition) map[string]string {
	names := map[string]string{}
	for _, it := range def.GetItems() {
		for _, c := range it.GetCandidates().GetCandidates() {
			names[c.GetCandidateId()] = c.GetName()
		}
	}
	return names
}

// pct is election.Percent with the sign, "-" when the whole is zero.
func pct(part, whole int64) string {
	if whole <= 0 {
		return "-"
	}
	return election.Percent(part, whole) + "%"
}

// Rule says in a few words what an item decides and how.
func Rule(l i18n.Lang, it *doorstepv1.Item) string {
	switch k := it.GetKind().(type) {
	case *doorstepv1.Item_Motion:
		if k.Motion.GetThreshold() == doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL {
			return l.T("notice.rule.special")
		}
		return l.T("notice.rule.ordinary")
	case *doorstepv1.Item_Candidates:
		return l.T("notice.rule.candidates", k.Candidates.GetSeats(), len(k.Candidates.GetCandidates()))
	}
	return ""
}

// Outcome names an item's outcome.
func Outcome(l i18n.Lang, o doorstepv1.Outcome) string {
	return l.T("outcome." + tallyview.OutcomeKey(o))
}

// CandidateStatus names where a candidate stands.
func CandidateStatus(l i18n.Lang, c *doorstepv1.CandidateTally) string {
	s := l.T("outcome.not_elected")
	switch {
	case c.GetElected():
		s = l.T("outcome.elected")
	case c.GetQualified():
		s = l.T("notice.qualified")
	}
	if c.GetTied() {
		s += l.T("notice.list_sep") + l.T("outcome.tied")
	}
	return s
}

// SelectionText renders one answer for people: the choice's word, or the
// candidates' ids with their names.
func SelectionText(l i18n.Lang, s *doorstepv1.Selection, names map[string]string) string {
	switch {
	case len(s.GetCandidateIds()) > 0:
		var ns []string
		for _, id := range s.GetCandidateIds() {
			if n := names[id]; n != "" {
				ns = append(ns, n)
			}
		}
		out := strings.Join(s.GetCandidateIds(), ",")
		if len(ns) > 0 {
			out += " (" + strings.Join(ns, l.T("notice.list_sep")) + ")"
		}
		return out
	case s.GetChoice() == doorstepv1.Choice_CHOICE_YES:
		return l.T("notice.choice.yes")
	case s.GetChoice() == doorstepv1.Choice_CHOICE_NO:
		return l.T("notice.choice.no")
	case s.GetChoice() == doorstepv1.Choice_CHOICE_ABSTAIN:
		return l.T("notice.choice.abstain")
	}
	return l.T("notice.choice.invalid")
}

// CandidateNames maps each candidate id of a definition to its name.
func CandidateNames(def *doorstepv1.ElectionDefinition) map[string]string { return candidateNames(def) }
