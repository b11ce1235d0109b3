package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"rsc.io/qr"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/i18n"
)

// TestWriteQR reads the half-block drawing back into modules and compares
// them with the QR code itself.
func TestWriteQR(t *testing.T) {
	const text = "doorstep:enroll?server=tally.example.org%3A7070&election=cuihu-2026-4th&token=AAAQEAYEAUDAOCAJBIFQYDIOB4&fp=SHA256%3An4bQgYhMfWWaL%2BqgxVrQFaO%2FTxsrC4Is0V1sFbDwCgg"
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		t.Fatal(err)
	}
	for _, dark := range []bool{true, false} {
		var b bytes.Buffer
		if err := writeQR(&b, text, dark); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		side := code.Size + 4
		if len(lines) != (side+1)/2 {
			t.Fatalf("dark=%v: %d lines; want %d", dark, len(lines), (side+1)/2)
		}
		for row, line := range lines {
			cells := []rune(line)
			if len(cells) != side {
				t.Fatalf("dark=%v: line %d has %d cells; want %d", dark, row, len(cells), side)
			}
			for col, c := range cells {
				top := c == '█' || c == '▀'
				bottom := c == '█' || c == '▄'
				for i, inked := range []bool{top, bottom} {
					x, y := col-2, 2*row+i-2
					if y >= code.Size+2 {
						continue
					}
					black := x >= 0 && y >= 0 && x < code.Size && y < code.Size && code.Black(x, y)
					if inked != (black != dark) {
						t.Fatalf("dark=%v: module (%d,%d) drawn %v; black is %v", dark, x, y, inked, black)
					}
				}
			}
		}
	}
}

func TestWriteTally(t *testing.T) {
	def := &doorstepv1.ElectionDefinition{
		ElectionId: "e1", Title: "第四届业主委员会换届选举",
		Items: []*doorstepv1.Item{
			{ItemId: "committee", Title: "选举委员", Kind: &doorstepv1.Item_Candidates{Candidates: &doorstepv1.CandidateElection{Seats: 1,
				Candidates: []*doorstepv1.Candidate{{CandidateId: "c1", Name: "王建国"}, {CandidateId: "c2", Name: "李秀英"}}}}},
			{ItemId: "fund", Title: "续筹维修资金", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL}}},
		},
	}
	tally := &doorstepv1.Tally{
		ElectionId: "e1",
		Checkpoint: &doorstepv1.Checkpoint{Size: 42, RootHash: []byte{1, 2, 3}},
		RosterArea: 30000, RosterHeadcount: 3, RosterUnits: 3, UnitsCounted: 2, UnitsContested: 1,
		Items: []*doorstepv1.ItemTally{
			{ItemId: "committee", Outcome: doorstepv1.Outcome_OUTCOME_ELECTED, QuorumMet: true,
				Participating: &doorstepv1.Count{Area: 20000, Headcount: 2},
				Candidates: []*doorstepv1.CandidateTally{
					{CandidateId: "c2", Support: &doorstepv1.Count{Area: 5000, Headcount: 1}},
					{CandidateId: "c1", Support: &doorstepv1.Count{Area: 15000, Headcount: 2}, Qualified: true, Elected: true, Rank: 1},
				}},
			{ItemId: "fund", Outcome: doorstepv1.Outcome_OUTCOME_NO_QUORUM,
				Participating: &doorstepv1.Count{Area: 10000, Headcount: 1},
				Yes:           &doorstepv1.Count{Area: 10000, Headcount: 1}, HeldHeadcount: 1},
		},
	}
	var b bytes.Buffer
	if err := writeTally(&b, i18n.EN, tally, nil, def, time.Now()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"Tally of election e1: 第四届业主委员会换届选举",
		"checkpoint 42, root AQID",
		"Roster: 3 units, 300.00 m², 3 owners.  Counted: 2 units.  Contested (held for the committee): 1.",
		"1. committee — 选举委员 (elect up to 1 of 2 candidates)",
		"Participation: 200.00 of 300.00 m² (66.67%), 2 of 3 owners (66.67%): quorum of 2/3 met",
		"ELECTED",
		"c1 王建国",
		"Outcome: ELECTED",
		"2. fund — 续筹维修资金 (special motion: at least 3/4",
		"quorum of 2/3 NOT met",
		"Split owners whose headcount vote is held for the committee: 1",
		"Outcome: quorum not met",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("tally does not say %q:\n%s", want, out)
		}
	}
	// Ranked candidates come first.
	if strings.Index(out, "c1 王建国") > strings.Index(out, "c2 李秀英") {
		t.Errorf("c1 (rank 1) is not listed before c2:\n%s", out)
	}
	// Without a definition, ids stand in for titles.
	b.Reset()
	if err := writeTally(&b, i18n.EN, tally, nil, nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), "1. committee\n") || !strings.Contains(b.String(), "   Yes") {
		t.Errorf("tally without a definition:\n%s", b.String())
	}
}

func TestCmPct(t *testing.T) {
	tests := []struct {
		part, whole int64
		want        string
	}{{0, 0, "-"}, {1, 3, "33.33%"}, {2, 3, "66.67%"}, {3, 3, "100.00%"}}
	for _, tt := range tests {
		if got := cmPct(tt.part, tt.whole); got != tt.want {
			t.Errorf("cmPct(%d, %d) = %q; want %q", tt.part, tt.whole, got, tt.want)
		}
	}
}

// TestWebFlagNamesThePort: --web's help, in the catalogue, names the port
// the code defaults to.
func TestWebFlagNamesThePort(t *testing.T) {
	for _, l := range i18n.Langs {
		if text := l.T("help.dashboard.flag.web"); !strings.Contains(text, "port "+defaultWebPort) && !strings.Contains(text, "端口 "+defaultWebPort) {
			t.Errorf("%s: --web's help %q does not name port %s", l, text, defaultWebPort)
		}
	}
}
