package notice_test

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/notice"
)

var (
	closed  = time.Date(2026, 7, 5, 20, 0, 0, 0, time.UTC)
	objEnds = closed.Add(7 * 24 * time.Hour)
)

func definition() *doorstepv1.ElectionDefinition {
	return &doorstepv1.ElectionDefinition{
		ElectionId: "cuihu-2026-4th", Title: "翠湖苑小区第四届业主委员会换届选举",
		Items: []*doorstepv1.Item{
			{ItemId: "committee", Title: "选举业主委员会委员", Kind: &doorstepv1.Item_Candidates{Candidates: &doorstepv1.CandidateElection{Seats: 2, Candidates: []*doorstepv1.Candidate{
				{CandidateId: "c1", Name: "王建国"}, {CandidateId: "c2", Name: "李秀英"}, {CandidateId: "c3", Name: "张伟"}}}}},
			{ItemId: "rules", Title: "管理规约", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY}}},
			{ItemId: "fund", Title: "续筹专项维修资金", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL}}},
		},
	}
}

func count(a int64, h uint64) *doorstepv1.Count { return &doorstepv1.Count{Area: a, Headcount: h} }

// tally has figures whose shares round both ways (2/3 → 66.67).
func tally() *doorstepv1.Tally {
	return &doorstepv1.Tally{
		ElectionId: "cuihu-2026-4th", Checkpoint: &doorstepv1.Checkpoint{Size: 412, RootHash: bytes.Repeat([]byte{7}, 32)},
		RosterArea: 2675050, RosterHeadcount: 255, RosterUnits: 288,
		UnitsCounted: 201, UnitsContested: 1, UnitsDoubleVisited: 3,
		Items: []*doorstepv1.ItemTally{
			{ItemId: "committee", Outcome: doorstepv1.Outcome_OUTCOME_ELECTED, QuorumMet: true, Participating: count(1783367, 170),
				Invalid: count(8950, 1), HeldHeadcount: 2,
				Candidates: []*doorstepv1.CandidateTally{
					{CandidateId: "c3", Support: count(600001, 60)},
					{CandidateId: "c1", Support: count(1500000, 150), Qualified: true, Elected: true, Rank: 1},
					{CandidateId: "c2", Support: count(1200033, 120), Qualified: true, Elected: true, Rank: 2},
				}},
			{ItemId: "rules", Outcome: doorstepv1.Outcome_OUTCOME_PASSED, QuorumMet: true, Participating: count(1783367, 170),
				Yes: count(1188911, 113), No: count(500000, 50), Abstain: count(85506, 6), Invalid: count(8950, 1)},
			{ItemId: "fund", Outcome: doorstepv1.Outcome_OUTCOME_FAILED, QuorumMet: true, Participating: count(1783367, 170),
				Yes: count(1337525, 127), No: count(445842, 43)},
		},
	}
}

func input(l i18n.Lang, final bool) notice.Input {
	st := &doorstepv1.ElectionStatus{State: doorstepv1.ElectionState_ELECTION_STATE_CLOSED, ClosedAt: timestamppb.New(closed), ObjectionEnds: timestamppb.New(objEnds)}
	if final {
		st.State = doorstepv1.ElectionState_ELECTION_STATE_CERTIFIED
		st.CertifiedAt = timestamppb.New(objEnds.Add(time.Hour))
	}
	return notice.Input{
		Lang: l, Definition: definition(), Tally: tally(), Status: st, TallySHA256: bytes.Repeat([]byte{0xab}, 32), Final: final,
		Held:        []*doorstepv1.ContestedUnit{{UnitId: "5-1-302", Ballots: make([]*doorstepv1.ContestedBallot, 2)}},
		SplitOwners: []*doorstepv1.SplitOwner{{OwnerKey: "holder-07", ItemId: "rules", UnitIds: []string{"2-1-101", "2-1-102"}}},
		Settled: []notice.Settled{
			{Adjudication: &doorstepv1.Adjudication{Subject: &doorstepv1.Adjudication_Unit{Unit: &doorstepv1.UnitDecision{UnitId: "3-2-501", CountedRecordId: "rec-1"}}, Reason: "业主本人确认"}, At: closed.Add(-time.Hour)},
			{Adjudication: &doorstepv1.Adjudication{Subject: &doorstepv1.Adjudication_Unit{Unit: &doorstepv1.UnitDecision{UnitId: "4-1-201"}}, Reason: "两张选票均非业主本人"}, At: closed.Add(-time.Hour)},
			{Adjudication: &doorstepv1.Adjudication{Subject: &doorstepv1.Adjudication_Owner{Owner: &doorstepv1.OwnerDecision{OwnerKey: "holder-01", ItemId: "committee", CandidateIds: []string{"c1"}}}, Reason: "书面说明"}, At: closed.Add(-time.Hour)},
		},
		Location: time.UTC, Generated: objEnds,
	}
}

// wantFigures is every figure the notice must show, computed from the
// tally here, by key.
func wantFigures(t *doorstepv1.Tally) map[string]string {
	pct := func(part, whole int64) string { return election.Percent(part, whole) + "%" }
	w := map[string]string{
		"roster.units": fmt.Sprint(t.GetRosterUnits()), "roster.area": election.FormatArea(t.GetRosterArea()), "roster.owners": fmt.Sprint(t.GetRosterHeadcount()),
		"units.counted": fmt.Sprint(t.GetUnitsCounted()), "units.contested": fmt.Sprint(t.GetUnitsContested()), "units.double": fmt.Sprint(t.GetUnitsDoubleVisited()),
		"checkpoint.size": fmt.Sprint(t.GetCheckpoint().GetSize()),
	}
	for _, it := range t.GetItems() {
		k, p := it.GetItemId()+".", it.GetParticipating()
		w[k+"participating.area"] = election.FormatArea(p.GetArea())
		w[k+"participating.area_pct"] = pct(p.GetArea(), t.GetRosterArea())
		w[k+"participating.headcount"] = fmt.Sprint(p.GetHeadcount())
		w[k+"participating.headcount_pct"] = pct(int64(p.GetHeadcount()), int64(t.GetRosterHeadcount()))
		add := func(name string, c *doorstepv1.Count) {
			w[k+name+".area"] = election.FormatArea(c.GetArea())
			w[k+name+".area_pct"] = pct(c.GetArea(), p.GetArea())
			w[k+name+".headcount"] = fmt.Sprint(c.GetHeadcount())
			w[k+name+".headcount_pct"] = pct(int64(c.GetHeadcount()), int64(p.GetHeadcount()))
		}
		if len(it.GetCandidates()) > 0 {
			for _, c := range it.GetCandidates() {
				add("candidate."+c.GetCandidateId(), c.GetSupport())
				w[k+"candidate."+c.GetCandidateId()+".rank"] = "-"
				if c.GetRank() > 0 {
					w[k+"candidate."+c.GetCandidateId()+".rank"] = fmt.Sprint(c.GetRank())
				}
			}
		} else {
			add("yes", it.GetYes())
			add("no", it.GetNo())
			add("abstain", it.GetAbstain())
		}
		add("invalid", it.GetInvalid())
		if it.GetHeldHeadcount() > 0 {
			w[k+"held_headcount"] = fmt.Sprint(it.GetHeldHeadcount())
		}
	}
	return w
}

var figRE = regexp.MustCompile(`<span data-fig="([^"]+)">([^<]*)</span>`)

func render(t *testing.T, in notice.Input) string {
	t.Helper()
	var b bytes.Buffer
	if err := notice.Render(&b, in); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestEveryFigure checks every figure on the page against the tally, in
// both languages, preliminary and final.
func TestEveryFigure(t *testing.T) {
	for _, l := range i18n.Langs {
		for _, final := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/final=%v", l, final), func(t *testing.T) {
				page := render(t, input(l, final))
				want := wantFigures(tally())
				got := map[string]string{}
				for _, m := range figRE.FindAllStringSubmatch(page, -1) {
					if _, dup := got[m[1]]; dup {
						t.Errorf("figure %s shown twice", m[1])
					}
					got[m[1]] = html.UnescapeString(m[2])
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("figure %s = %q; the tally says %q", k, got[k], v)
					}
				}
				for k := range got {
					if _, ok := want[k]; !ok {
						t.Errorf("figure %s = %q is not from the tally", k, got[k])
					}
				}
				// Spot checks of the rounding rule: 1783367/2675050 is
				// 66.6665…%, shown as 66.67%, never cut to 66.66%.
				if got["rules.participating.area_pct"] != "66.67%" {
					t.Errorf("participation by area shown as %q; want 66.67%%", got["rules.participating.area_pct"])
				}
				for _, bad := range []string{"<script", "onload=", "onclick="} {
					if strings.Contains(page, bad) {
						t.Errorf("the page holds %q: a printed notice has no scripts", bad)
					}
				}
				if !strings.Contains(page, "size: A4") {
					t.Error("no A4 print rule")
				}
			})
		}
	}
}

// TestWords checks the page's words come from the language asked for and
// say what a notice must.
func TestWords(t *testing.T) {
	for _, tc := range []struct {
		lang  i18n.Lang
		final bool
		want  []string
	}{
		{i18n.ZH, false, []string{`lang="zh-CN"`, "选举结果公示（初步）", "公示期（异议期）至 2026-07-12 20:00 UTC", "翠湖苑小区", "当选", "王建国、李秀英", "通过", "未通过",
			"3-2-501 户", "计入选票 rec-1", "作废", "业主 holder-01，事项 committee", "人数票计为：c1 (王建国)", "5-1-302（2 张", "holder-07",
			"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=", strings.Repeat("ab", 32), "doorstep audit receipt --election cuihu-2026-4th CODE", "第二百七十八条", "专有部分总面积", "业主总人数"}},
		{i18n.ZH, true, []string{"选举结果公告（最终）", "2026-07-12 21:00 UTC 由选举委员会签署确认"}},
		{i18n.EN, false, []string{`lang="en"`, "Results notice (preliminary)", "runs until 2026-07-12 20:00 UTC", "Elected: 王建国, 李秀英", "passed", "failed",
			"unit 3-2-501", "ballot rec-1 counts", "void: none", "special motion: at least 3/4", "doorstep audit receipt --election cuihu-2026-4th CODE", "art. 278"}},
		{i18n.EN, true, []string{"Results notice (final)", "certified this result on 2026-07-12 21:00 UTC"}},
	} {
		t.Run(fmt.Sprintf("%s/final=%v", tc.lang, tc.final), func(t *testing.T) {
			page := html.UnescapeString(render(t, input(tc.lang, tc.final)))
			for _, w := range tc.want {
				if !strings.Contains(page, w) {
					t.Errorf("the notice does not say %q", w)
				}
			}
			if strings.Contains(page, "[notice.") || strings.Contains(page, "[outcome.") {
				t.Error("a catalogue key is missing")
			}
		})
	}
}

func TestRefusals(t *testing.T) {
	open := input(i18n.ZH, false)
	open.Status = &doorstepv1.ElectionStatus{State: doorstepv1.ElectionState_ELECTION_STATE_OPEN}
	finalEarly := input(i18n.ZH, false)
	finalEarly.Final = true
	prelimLate := input(i18n.EN, true)
	prelimLate.Final = false
	noDef := input(i18n.ZH, false)
	noDef.Definition = nil
	for _, tc := range []struct {
		name string
		in   notice.Input
		want error
	}{
		{"final before certification", finalEarly, notice.ErrNotCertified},
		{"preliminary after certification", prelimLate, notice.ErrCertified},
		{"still open", open, notice.ErrNotClosed},
		{"no definition", noDef, notice.ErrIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := notice.Render(&b, tc.in); !errors.Is(err, tc.want) {
				t.Errorf("Render = %v; want %v", err, tc.want)
			}
			if b.Len() != 0 {
				t.Errorf("wrote %d bytes for a refused notice", b.Len())
			}
		})
	}
}
