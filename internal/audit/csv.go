package audit

import (
	"bytes"
	"cmp"
	"encoding/csv"
	"slices"
	"strconv"
	"strings"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// The CSVs are for people: they start with a UTF-8 byte order mark so that
// spreadsheet programs read Chinese titles and names correctly, areas are
// in m² with two decimals, and percentages are rounded half up to two
// decimals from the exact ratio (election.Percent). They are derived from the log (and
// results.csv from tally.json), so Verify regenerates and compares them.

const bom = "\uFEFF"

// csvFiles renders every CSV the record holds, by file name. results.csv
// is left out when tally.json is missing or unreadable.
func csvFiles(c *checked, published []byte) map[string][]byte {
	out := map[string][]byte{}
	if c.r.roster == nil || c.outcomes == nil {
		return out
	}
	out[ParticipationFile] = participationCSV(c)
	out[ContestedFile] = contestedCSV(c)
	if published != nil {
		if pub, err := decodeTally(published); err == nil {
			out[ResultsFile] = resultsCSV(c.r.def, pub)
		}
	}
	return out
}

func writeCSV(rows [][]string) []byte {
	var b bytes.Buffer
	b.WriteString(bom)
	w := csv.NewWriter(&b)
	_ = w.WriteAll(rows) // a bytes.Buffer does not fail
	return b.Bytes()
}

// percent is 100·a/b with election.Percent's rounding (half up, two
// decimals), the same figure every screen shows.
func percent(a, b int64) string { return election.Percent(a, b) }

// participationCSV: one row per building and a total.
func participationCSV(c *checked) []byte {
	type row struct {
		units, withBallot, counted, contested, visitedOnly int64
		area, areaCounted                                  int64
	}
	rows := map[string]*row{}
	var total row
	for _, u := range c.r.roster.Units() {
		b := rows[u.Building]
		if b == nil {
			b = &row{}
			rows[u.Building] = b
		}
		out := c.outcomes[u.ID]
		for _, x := range []*row{b, &total} {
			x.units++
			x.area += u.Area
			if len(c.r.ballots[u.ID]) > 0 {
				x.withBallot++
			} else if c.r.visited[u.ID] {
				x.visitedOnly++
			}
			if out.Counted {
				x.counted++
				x.areaCounted += u.Area
			}
			if out.Held() {
				x.contested++
			}
		}
	}
	buildings := make([]string, 0, len(rows))
	for b := range rows {
		buildings = append(buildings, b)
	}
	slices.SortFunc(buildings, naturalCompare)
	lines := [][]string{{"building", "units", "area_m2", "units_with_ballot", "units_counted", "units_counted_pct",
		"area_counted_m2", "area_counted_pct", "units_contested_held", "units_visited_no_ballot"}}
	emit := func(name string, r *row) {
		lines = append(lines, []string{name, itoa(r.units), election.FormatArea(r.area), itoa(r.withBallot), itoa(r.counted),
			percent(r.counted, r.units), election.FormatArea(r.areaCounted), percent(r.areaCounted, r.area), itoa(r.contested), itoa(r.visitedOnly)})
	}
	for _, b := range buildings {
		name := b
		if name == "" {
			name = "(no building)"
		}
		emit(name, rows[b])
	}
	emit("total", &total)
	return writeCSV(lines)
}

// contestedCSV lists every unit whose live ballots differ, however it was
// settled.
func contestedCSV(c *checked) []byte {
	lines := [][]string{{"unit_id", "building", "owner_key", "live_ballots", "state", "counted_record_id"}}
	for _, u := range c.r.roster.Units() {
		out, ok := c.outcomes[u.ID]
		if !ok || !out.Contested {
			continue
		}
		state := "held for the committee"
		switch {
		case out.Adjudicated:
			state = "settled by the committee"
		case out.Counted:
			state = "settled by the contest policy (" + policyName(c.r.def.Policy) + ")"
		}
		lines = append(lines, []string{u.ID, u.Building, u.OwnerKey, strings.Join(out.Live, " "), state, out.CountedID})
	}
	return writeCSV(lines)
}

// resultsCSV: per item its counts, outcome and, for a candidate election,
// one line per candidate in the published order.
func resultsCSV(def *election.Definition, r *tally.Result) []byte {
	lines := [][]string{{"item_id", "item_title", "outcome", "quorum_met", "line", "name", "area_m2", "headcount", "area_pct", "headcount_pct", "note"}}
	for _, it := range r.Items {
		title := ""
		var names map[string]string
		if i := def.ItemIndex(it.ItemID); i >= 0 {
			title = def.Items[i].Title
			names = make(map[string]string)
			for _, c := range def.Items[i].Candidates {
				names[c.ID] = c.Name
			}
		}
		p := it.Participating
		line := func(what, name string, n tally.Count, note string) {
			lines = append(lines, []string{it.ItemID, title, it.Outcome, strconv.FormatBool(it.QuorumMet), what, name,
				election.FormatArea(n.Area), strconv.FormatInt(n.Headcount, 10), percent(n.Area, p.Area), percent(n.Headcount, p.Headcount), note})
		}
		line("participating", "", p, "of the roster: "+percent(p.Area, r.RosterArea)+"% of the area, "+percent(p.Headcount, int64(r.RosterHeadcount))+"% of the owners")
		if it.Kind == tally.KindMotion {
			line("yes", "", it.Yes, it.Threshold+" majority")
			line("no", "", it.No, "")
		}
		line("abstain", "", it.Abstain, "")
		line("invalid", "", it.Invalid, "")
		line("held", "", tally.Count{Headcount: it.HeldHeadcount}, "split owners awaiting the committee")
		for _, c := range it.Candidates {
			var note string
			switch {
			case c.Elected:
				note = "elected, rank " + itoa(int64(c.Rank))
			case c.Tied:
				note = "tied for the last seat, rank " + itoa(int64(c.Rank))
			case c.Qualified:
				note = "qualified, rank " + itoa(int64(c.Rank))
			default:
				note = "not qualified"
			}
			line("candidate "+c.CandidateID, names[c.CandidateID], c.Support, note)
		}
	}
	return writeCSV(lines)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// naturalCompare orders building names as people do: "2" before "10".
func naturalCompare(a, b string) int {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	switch {
	case aerr == nil && berr == nil && ai != bi:
		return cmp.Compare(ai, bi)
	case aerr == nil && berr == nil:
		return strings.Compare(a, b) // "01" and "1"
	case aerr == nil:
		return -1
	case berr == nil:
		return 1
	}
	return strings.Compare(a, b)
}
