package demo

import (
	"bytes"
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/electionfile"
	"github.com/doorstep-vote/doorstep/internal/examples"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// This file writes the day's script: a pure function of the seed and the
// example election, with no I/O and no clock, so that the same seed always
// gives the same ballots.

// Canvasser is one volunteer's day: the buildings they walk and every stop
// they make, in order.
type Canvasser struct {
	Name string
	// Slug names the device folder.
	Slug      string
	Buildings []string
	Stops     []Stop
}

// StopKind is what happens at a stop.
type StopKind uint8

const (
	// StopBallot records a ballot.
	StopBallot StopKind = iota + 1
	// StopRevise records a ballot that replaces this device's latest one
	// for the unit: the owner changed their mind.
	StopRevise
	// StopVisit records a call that produced no ballot.
	StopVisit
)

// Stop is one call at a door.
type Stop struct {
	Unit   string
	Kind   StopKind
	Ballot device.Ballot // StopBallot and StopRevise
	Visit  device.Visit  // StopVisit
	// Story, when set, is worth a line in the progress as it happens.
	Story string
}

// Door is a unit where two canvassers collect differing ballots. Owner is
// the index of the canvasser who holds the ballot the owner signed, Other
// the one who holds the second ballot; the committee counts the owner's.
type Door struct {
	Unit         string
	Owner, Other int
	// Reason is the committee's reason for counting the owner's ballot.
	Reason string
}

// Script is the whole day as it will be played.
type Script struct {
	Seed       uint64
	Canvassers []Canvasser
	// Contested is the door with two differing ballots.
	Contested Door
	// Revised is the unit whose owner changed their mind; Double the unit
	// where two canvassers collected identical ballots (counted once).
	Revised, Double string
	// Holder is a multi-unit owner whose units different canvassers walk.
	Holder string

	def    *election.Definition
	roster *election.Roster
}

// crew is who walks where. The example roster's buildings are 1 to 9, 32
// units each.
var crew = []struct {
	name, slug string
	buildings  []string
}{
	{"王芳", "wang-fang", []string{"1", "2"}},
	{"李明", "li-ming", []string{"3", "4"}},
	{"张丽", "zhang-li", []string{"5", "6"}},
	{"陈军", "chen-jun", []string{"7", "8", "9"}},
}

// Odds of the day, per mille. They are input to the draw only: the tally
// itself is exact integer arithmetic on the ballots they produce.
const (
	oddsNotHome     = 150 // not home on the first call, revisited at the end
	oddsRefused     = 70  // refused, no ballot
	oddsBallotLeft  = 300 // of the not-at-homes: still out, ballot left in the letterbox
	oddsProxy       = 30  // a plain owner's ballot is signed by a proxy
	oddsComment     = 120 // the resident says something worth writing down
	oddsKeepTooMany = 250 // a voter who picked more than the seats keeps them all (item invalid)
)

// motionOdds are per mille yes, no and abstain; the rest leave the item
// blank, which counts as an abstention.
var motionOdds = map[string][3]int{
	"rules": {700, 190, 60},
	"roof":  {780, 150, 70},
	"fund":  {560, 340, 100},
}

// candidateOdds is how likely a voter picks each candidate, per mille.
var candidateOdds = map[string]int{
	"c1": 880, "c2": 820, "c3": 780, "c4": 740, "c5": 700, "c6": 670, "c7": 640, "c8": 330, "c9": 260,
}

var comments = []string{
	"屋顶漏水好几年了，希望尽快修。",
	"希望公开维修资金的使用明细。",
	"下这么大雨还上门，辛苦了！",
	"楼道灯坏了，请物业处理。",
	"支持新一届业委会，希望多听业主意见。",
	"停车位太少，希望业委会协调。",
	"续筹维修资金之前要先把账目讲清楚。",
}

const (
	developerProxyRef = "开发商授权委托书 2026-03"
	contestedReason   = "业主本人签署的表决票有效；另一张由家属代签，无书面委托书"
)

// Example returns the shipped example election, with committeeKey as its
// committee key, and its roster.
func Example(committeeKey []byte) (*doorstepv1.ElectionDefinition, []election.Unit, error) {
	def, err := electionfile.ParseDefinition(examples.ElectionJSON, committeeKey)
	if err != nil {
		return nil, nil, fmt.Errorf("the example election: %w", err)
	}
	units, err := electionfile.ParseRoster(bytes.NewReader(examples.RosterCSV))
	if err != nil {
		return nil, nil, fmt.Errorf("the example roster: %w", err)
	}
	return def, units, nil
}

// NewScript draws the day from seed.
func NewScript(seed uint64) (*Script, error) {
	p, units, err := Example(make([]byte, 32))
	if err != nil {
		return nil, err
	}
	def, err := rules.Definition(p)
	if err != nil {
		return nil, fmt.Errorf("the example election: %w", err)
	}
	for id := range motionOdds {
		if it := def.ItemIndex(id); it < 0 || def.Items[it].Kind != election.KindMotion {
			return nil, fmt.Errorf("the example election has no motion %q: the demo's script needs updating", id)
		}
	}
	if it := def.ItemIndex("committee"); it < 0 || len(def.Items[it].Candidates) != len(candidateOdds) {
		return nil, fmt.Errorf("the example election's candidate item changed: the demo's script needs updating")
	}
	roster, err := election.NewRoster(units)
	if err != nil {
		return nil, fmt.Errorf("the example roster: %w", err)
	}
	s := &Script{Seed: seed, def: def, roster: roster}
	w := &writer{s: s, r: rand.New(rand.NewPCG(seed, 0x6261_6c6c_6f74)), ballots: map[string][]election.Selection{}}
	if err := w.write(); err != nil {
		return nil, err
	}
	return s, nil
}

// writer holds the draw while the script is written.
type writer struct {
	s       *Script
	r       *rand.Rand
	ballots map[string][]election.Selection // by owner key: what the owner answers
	routes  [][]election.Unit
	walker  map[string]int // unit id → index of the canvasser whose route has it
}

func (w *writer) odds(perMille int) bool { return w.r.IntN(1000) < perMille }

func (w *writer) write() error {
	units := w.s.roster.Units()
	// Every owner answers the same way at each of their units, so no owner
	// is split and each owner's headcount vote counts once.
	for _, u := range units {
		if _, ok := w.ballots[u.OwnerKey]; !ok {
			w.ballots[u.OwnerKey] = w.drawBallot()
		}
	}
	w.walker = make(map[string]int, len(units))
	w.routes = make([][]election.Unit, len(crew))
	for i, c := range crew {
		for _, u := range units {
			if slices.Contains(c.buildings, device.Building(u)) {
				w.routes[i] = append(w.routes[i], u)
				w.walker[u.ID] = i
			}
		}
		slices.SortStableFunc(w.routes[i], func(a, b election.Unit) int {
			return cmp.Or(device.NaturalCompare(device.Building(a), device.Building(b)), device.NaturalCompare(a.ID, b.ID))
		})
	}
	for _, u := range units {
		if _, ok := w.walker[u.ID]; !ok {
			return fmt.Errorf("unit %s is in building %q, which no canvasser walks: the demo's crew needs updating", u.ID, device.Building(u))
		}
	}
	// The special doors are plain single-owner units, each used once.
	used := map[string]bool{}
	w.s.Contested = Door{Unit: w.pickPlain(0, used), Owner: 0, Other: 2, Reason: contestedReason}
	w.s.Revised = w.pickPlain(1, used)
	w.s.Double = w.pickPlain(3, used)
	w.s.Holder = w.pickHolder()
	for _, u := range units {
		if u.OwnerKey == w.s.Holder {
			used[u.ID] = true
		}
	}
	w.s.Canvassers = make([]Canvasser, len(crew))
	for i, c := range crew {
		w.s.Canvassers[i] = Canvasser{Name: c.name, Slug: c.slug, Buildings: c.buildings, Stops: w.stops(i, used)}
	}
	w.extraStops()
	return nil
}

// drawBallot draws one owner's answers.
func (w *writer) drawBallot() []election.Selection {
	var sels []election.Selection
	for _, it := range w.s.def.Items {
		if it.Kind == election.KindCandidates {
			var picks []string
			for _, c := range it.Candidates {
				if w.odds(candidateOdds[c.ID]) {
					picks = append(picks, c.ID)
				}
			}
			// The canvasser explains the rule: most voters then drop their
			// least likely picks; a few keep them all and spoil the item.
			if len(picks) > it.Seats && !w.odds(oddsKeepTooMany) {
				slices.SortStableFunc(picks, func(a, b string) int { return candidateOdds[b] - candidateOdds[a] })
				picks = picks[:it.Seats]
				slices.Sort(picks)
			}
			sels = append(sels, election.Selection{ItemID: it.ID, Candidates: picks})
			continue
		}
		o := motionOdds[it.ID]
		switch n := w.r.IntN(1000); {
		case n < o[0]:
			sels = append(sels, election.Selection{ItemID: it.ID, Choice: election.ChoiceYes})
		case n < o[0]+o[1]:
			sels = append(sels, election.Selection{ItemID: it.ID, Choice: election.ChoiceNo})
		case n < o[0]+o[1]+o[2]:
			sels = append(sels, election.Selection{ItemID: it.ID, Choice: election.ChoiceAbstain})
		}
	}
	return sels
}

// pickPlain picks an unused single-owner unit from the middle of a
// canvasser's route.
func (w *writer) pickPlain(canvasser int, used map[string]bool) string {
	route := w.routes[canvasser]
	var plain []string
	for _, u := range route[len(route)/5 : len(route)*4/5] {
		if strings.HasPrefix(u.OwnerKey, "owner-") && !used[u.ID] {
			plain = append(plain, u.ID)
		}
	}
	id := plain[w.r.IntN(len(plain))]
	used[id] = true
	return id
}

// pickHolder picks an owner of several units that more than one canvasser
// walks.
func (w *writer) pickHolder() string {
	walkers := map[string]map[int]bool{}
	for _, u := range w.s.roster.Units() {
		if !strings.HasPrefix(u.OwnerKey, "holder-") {
			continue
		}
		if walkers[u.OwnerKey] == nil {
			walkers[u.OwnerKey] = map[int]bool{}
		}
		walkers[u.OwnerKey][w.walker[u.ID]] = true
	}
	var keys []string
	for k, ws := range walkers {
		if len(ws) > 1 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return ""
	}
	slices.Sort(keys)
	return keys[w.r.IntN(len(keys))]
}

// ballot is the owner's ballot for unit u as signed at the door.
func (w *writer) ballot(u election.Unit) device.Ballot {
	b := device.Ballot{UnitID: u.ID, Selections: w.ballots[u.OwnerKey], Signer: doorstepv1.SignerKind_SIGNER_KIND_OWNER}
	switch {
	case u.DeveloperHeld:
		b.Signer, b.ProxyRef = doorstepv1.SignerKind_SIGNER_KIND_PROXY, developerProxyRef
	case strings.HasPrefix(u.OwnerKey, "co-owners-") && w.r.IntN(2) == 0:
		b.Signer = doorstepv1.SignerKind_SIGNER_KIND_CO_OWNER
	case w.odds(oddsProxy):
		b.Signer, b.ProxyRef = doorstepv1.SignerKind_SIGNER_KIND_PROXY, fmt.Sprintf("授权委托书 %s", u.ID)
	}
	if w.odds(oddsComment) {
		b.Comment = comments[w.r.IntN(len(comments))]
	}
	return b
}

// stops writes one canvasser's walk: the route in order, the revisits of
// those not at home, and the stories along the way.
func (w *writer) stops(i int, used map[string]bool) []Stop {
	var out, revisits []Stop
	reviseAt := -1
	var revise Stop
	for _, u := range w.routes[i] {
		if len(out) == reviseAt {
			out = append(out, revise)
		}
		switch {
		case u.ID == w.s.Revised:
			final := w.ballot(u)
			first := final
			first.Selections = flip(final.Selections, "fund")
			first.Comment = ""
			out = append(out, Stop{Unit: u.ID, Kind: StopBallot, Ballot: first,
				Story: fmt.Sprintf("the owner answers fund: %s", answer(first.Selections, "fund"))})
			revise = Stop{Unit: u.ID, Kind: StopRevise, Ballot: final,
				Story: fmt.Sprintf("the owner of %s runs down the stairs: changed their mind on fund (%s → %s); the new ballot replaces the first",
					u.ID, answer(first.Selections, "fund"), answer(final.Selections, "fund"))}
			reviseAt = len(out) + 2
		case used[u.ID] || u.DeveloperHeld:
			out = append(out, w.ballotStop(u))
		case w.odds(oddsNotHome):
			out = append(out, Stop{Unit: u.ID, Kind: StopVisit, Visit: device.Visit{UnitID: u.ID, Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME, Note: "敲门无人应答"}})
			if w.odds(oddsBallotLeft) {
				revisits = append(revisits, Stop{Unit: u.ID, Kind: StopVisit, Visit: device.Visit{UnitID: u.ID, Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_BALLOT_LEFT, Note: "仍无人在家，表决票已投入信箱"}})
			} else {
				s := w.ballotStop(u)
				s.Story = "back again: home now, the ballot is signed"
				revisits = append(revisits, s)
			}
		case w.odds(oddsRefused):
			out = append(out, Stop{Unit: u.ID, Kind: StopVisit, Visit: device.Visit{UnitID: u.ID, Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_REFUSED, Note: "业主表示不参与表决"}})
		default:
			out = append(out, w.ballotStop(u))
		}
	}
	if reviseAt >= len(out) {
		out = append(out, revise)
	}
	return append(out, revisits...)
}

func (w *writer) ballotStop(u election.Unit) Stop {
	s := Stop{Unit: u.ID, Kind: StopBallot, Ballot: w.ballot(u)}
	if u.OwnerKey == w.s.Holder {
		var others []string
		for _, o := range w.s.roster.Units() {
			if o.OwnerKey == u.OwnerKey && o.ID != u.ID {
				others = append(others, fmt.Sprintf("%s (%s)", o.ID, crew[w.walker[o.ID]].name))
			}
		}
		s.Story = fmt.Sprintf("%s also owns %s: each unit's area counts, the owner once in the headcount", u.OwnerKey, strings.Join(others, ", "))
	}
	return s
}

// extraStops adds the calls outside a canvasser's own buildings, halfway
// through their walk: a second, different ballot at the contested door and
// an identical one at the double-visited door.
func (w *writer) extraStops() {
	s := w.s
	cu, _ := s.roster.Unit(s.Contested.Unit)
	other := w.ballot(cu)
	other.Selections = flip(flip(w.ballots[cu.OwnerKey], "rules"), "fund")
	other.Signer, other.ProxyRef, other.Comment = doorstepv1.SignerKind_SIGNER_KIND_PROXY, "口头委托（无书面委托书）", ""
	other.SignerName = "业主之子"
	s.Canvassers[s.Contested.Other].insertMidway(Stop{Unit: cu.ID, Kind: StopBallot, Ballot: other,
		Story: fmt.Sprintf("called over to building %s, where the owner's son signs a ballot for %s that differs from the owner's own, which %s collects: the unit will be contested",
			device.Building(cu), cu.ID, s.Canvassers[s.Contested.Owner].Name)})

	du, _ := s.roster.Unit(s.Double)
	walker := w.walker[du.ID]
	for _, st := range s.Canvassers[walker].Stops {
		if st.Unit == du.ID && st.Kind == StopBallot {
			again := st
			again.Ballot.Comment = ""
			again.Story = fmt.Sprintf("the owner of %s signs again, the same answers as for %s: identical ballots count once", du.ID, s.Canvassers[walker].Name)
			s.Canvassers[1].insertMidway(again)
			break
		}
	}
}

// insertMidway adds a stop halfway through the walk, where the live tally
// and the walk lists can show what it does while the day goes on.
func (c *Canvasser) insertMidway(st Stop) {
	c.Stops = slices.Insert(c.Stops, len(c.Stops)/2, st)
}

// flip returns sels with the answer to a motion turned: yes to no, and
// anything else to yes.
func flip(sels []election.Selection, item string) []election.Selection {
	out := slices.Clone(sels)
	for i, s := range out {
		if s.ItemID == item {
			if s.Choice == election.ChoiceYes {
				out[i].Choice = election.ChoiceNo
			} else {
				out[i].Choice = election.ChoiceYes
			}
			return out
		}
	}
	return append(out, election.Selection{ItemID: item, Choice: election.ChoiceYes})
}

// answer names the answer to a motion.
func answer(sels []election.Selection, item string) string {
	for _, s := range sels {
		if s.ItemID == item {
			switch s.Choice {
			case election.ChoiceYes:
				return "yes"
			case election.ChoiceNo:
				return "no"
			}
		}
	}
	return "abstain"
}

// Units is how many units the roster has.
func (s *Script) Units() int { return len(s.roster.Units()) }

// Expected is the tally the day must produce if nothing collected at a
// door is lost and nothing is counted twice: the script's ballots, each
// revision replacing the ballot before it, the committee counting the
// owner's ballot at the contested door, computed by the same pure tally
// the server runs.
func (s *Script) Expected() (tally.Result, error) {
	ballots := map[string][]tally.Ballot{}
	latest := map[string]string{} // device/unit → record id of its latest ballot
	owner := ""
	n := 0
	for ci, c := range s.Canvassers {
		for _, st := range c.Stops {
			if st.Kind == StopVisit {
				continue
			}
			n++
			id := fmt.Sprintf("%08x-0000-7000-8000-000000000000", n)
			marks, _, err := s.def.Marks(st.Ballot.Selections)
			if err != nil {
				return tally.Result{}, fmt.Errorf("the script's ballot for %s: %w", st.Unit, err)
			}
			b := tally.Ballot{RecordID: id, DeviceID: c.Slug, HLC: uint64(n), Marks: marks}
			if st.Kind == StopRevise {
				b.Supersedes = latest[c.Slug+"/"+st.Unit]
			}
			latest[c.Slug+"/"+st.Unit] = id
			if st.Unit == s.Contested.Unit && ci == s.Contested.Owner {
				owner = id
			}
			ballots[st.Unit] = append(ballots[st.Unit], b)
		}
	}
	decisions := map[string]tally.UnitDecision{s.Contested.Unit: {Seq: 1, CountedRecordID: owner}}
	res, _ := tally.Compute(s.def, s.roster, ballots, decisions, nil)
	return res, nil
}
