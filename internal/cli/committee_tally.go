package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/hlc"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

func tallyCommands() []*Command {
	return []*Command{
		{Name: "show", Summary: "print the live tally against the legal thresholds", Usage: "--election ID [--json] [flags]", Run: runTallyShow},
		{Name: "watch", Summary: "watch the tally, turnout and devices live", Usage: "--election ID [--lang zh|en] [flags]", Run: runTallyWatch},
	}
}

func adjudicateCommands() []*Command {
	return []*Command{
		{Name: "list", Summary: "list contested units and split owners", Usage: "--election ID [flags]", Run: runAdjudicateList},
		{Name: "unit", Summary: "settle a contested unit: count one ballot, or none", Usage: "--election ID --unit U (--count RECORD_ID | --count-none) --reason TEXT [flags]", Run: runAdjudicateUnit},
		{Name: "owner", Summary: "settle a split owner's headcount vote on one item", Usage: "--election ID --owner KEY --item ITEM (--choice yes|no|abstain | --candidates A,B) --reason TEXT [flags]", Run: runAdjudicateOwner},
	}
}

// cmReader is a read-only committee client: it signs calls with the
// committee key and takes no lock on the chain.
type cmReader struct {
	*committee.Client
	f     *cmFlags
	state committee.State // may be empty: the election was made elsewhere
}

func openCmReader(ctx context.Context, env *Env, f *cmFlags) (*cmReader, error) {
	key, err := committee.LoadKey(f.dir)
	if err != nil {
		return nil, err
	}
	st, _, err := committee.ReadState(f.dir, f.election)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, f.timeout)
	pin, learned, err := committee.ServerPin(pctx, f.dir, f.server, f.pin)
	cancel()
	if err != nil {
		return nil, err
	}
	if learned {
		firstContact(env, f.server, pin)
	}
	c, err := committee.Dial(f.server, pin, f.election, key, f.timeout, env.Now)
	if err != nil {
		return nil, err
	}
	return &cmReader{Client: c, f: f, state: st}, nil
}

func (r *cmReader) rpcError(what string, err error) error {
	return cmRPCError(what, r.f.server, r.f.timeout, r.f.election, err)
}

// definition returns the election's definition as this machine signed it,
// for titles and names; nil when the election was created elsewhere.
func (r *cmReader) definition() *doorstepv1.ElectionDefinition {
	def, err := r.state.DefinitionProto()
	if err != nil {
		return nil
	}
	return def
}

func runTallyShow(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "tally show", "--election ID [--json] [flags]",
		"Print the live tally of an election: participation by area and by owners against\nthe 2/3 quorum, each item's votes against its threshold, candidates ranked, and\nthe ballot log checkpoint the tally was computed at.", true, true)
	asJSON := fs.Bool("json", false, "print the tally's canonical JSON (what auditors compare) instead")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	r, err := openCmReader(ctx, env, f)
	if err != nil {
		return err
	}
	defer r.Close()
	t, err := r.Tally(ctx)
	if err != nil {
		return r.rpcError("get the tally", err)
	}
	if *asJSON {
		out := t.GetCanonicalJson()
		if len(out) == 0 || out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		_, err := env.Stdout.Write(out)
		return err
	}
	return writeTally(env.Stdout, t, r.definition())
}

// writeTally renders a tally for people. Percentages are for reading only:
// every decision in it was made by the server in exact arithmetic.
func writeTally(w io.Writer, t *doorstepv1.Tally, def *doorstepv1.ElectionDefinition) error {
	title := ""
	if def != nil {
		title = ": " + def.GetTitle()
	}
	fmt.Fprintf(w, "Tally of election %s%s\n", t.GetElectionId(), title)
	if cp := t.GetCheckpoint(); cp != nil {
		fmt.Fprintf(w, "Computed at ballot log checkpoint %d, root %s\n", cp.GetSize(), base64.StdEncoding.EncodeToString(cp.GetRootHash()))
	}
	fmt.Fprintf(w, "Roster: %d units, %s m², %d owners.  Counted: %d units.  Contested (held for the committee): %d.  Double visits counted once: %d.\n",
		t.GetRosterUnits(), election.FormatArea(t.GetRosterArea()), t.GetRosterHeadcount(),
		t.GetUnitsCounted(), t.GetUnitsContested(), t.GetUnitsDoubleVisited())
	items := map[string]*doorstepv1.Item{}
	for _, it := range def.GetItems() {
		items[it.GetItemId()] = it
	}
	for i, it := range t.GetItems() {
		d := items[it.GetItemId()]
		fmt.Fprintf(w, "\n%d. %s", i+1, it.GetItemId())
		if d != nil {
			fmt.Fprintf(w, " — %s (%s)", d.GetTitle(), cmItemRule(d))
		}
		fmt.Fprintln(w)
		p := it.GetParticipating()
		quorum := "quorum of 2/3 NOT met"
		if it.GetQuorumMet() {
			quorum = "quorum of 2/3 met"
		}
		fmt.Fprintf(w, "   Participation: %s of %s m² (%s), %d of %d owners (%s): %s\n",
			election.FormatArea(p.GetArea()), election.FormatArea(t.GetRosterArea()), cmPct(p.GetArea(), t.GetRosterArea()),
			p.GetHeadcount(), t.GetRosterHeadcount(), cmPct(int64(p.GetHeadcount()), int64(t.GetRosterHeadcount())), quorum)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if len(it.GetCandidates()) > 0 || d.GetCandidates() != nil {
			writeCandidates(tw, it, d)
		} else {
			fmt.Fprintf(tw, "   \tAREA m²\t%%\tOWNERS\t%%\n")
			for _, row := range []struct {
				name string
				c    *doorstepv1.Count
			}{{"Yes", it.GetYes()}, {"No", it.GetNo()}, {"Abstain", it.GetAbstain()}} {
				fmt.Fprintf(tw, "   %s\t%s\t%s\t%d\t%s\n", row.name, election.FormatArea(row.c.GetArea()), cmPct(row.c.GetArea(), p.GetArea()),
					row.c.GetHeadcount(), cmPct(int64(row.c.GetHeadcount()), int64(p.GetHeadcount())))
			}
		}
		inv := it.GetInvalid()
		fmt.Fprintf(tw, "   Invalid\t%s\t%s\t%d\t%s\n", election.FormatArea(inv.GetArea()), cmPct(inv.GetArea(), p.GetArea()),
			inv.GetHeadcount(), cmPct(int64(inv.GetHeadcount()), int64(p.GetHeadcount())))
		tw.Flush()
		if h := it.GetHeldHeadcount(); h > 0 {
			fmt.Fprintf(w, "   Split owners whose headcount vote is held for the committee: %d ('doorstep adjudicate list')\n", h)
		}
		fmt.Fprintf(w, "   Outcome: %s\n", cmOutcome(it.GetOutcome()))
	}
	return nil
}

func writeCandidates(tw *tabwriter.Writer, it *doorstepv1.ItemTally, d *doorstepv1.Item) {
	names := map[string]string{}
	for _, c := range d.GetCandidates().GetCandidates() {
		names[c.GetCandidateId()] = c.GetName()
	}
	cands := slices.Clone(it.GetCandidates())
	// Ranked candidates first, in rank order; the rest by support.
	slices.SortStableFunc(cands, func(a, b *doorstepv1.CandidateTally) int {
		ra, rb := a.GetRank(), b.GetRank()
		switch {
		case ra != 0 && rb != 0 && ra != rb:
			return int(ra) - int(rb)
		case ra != 0 && rb == 0:
			return -1
		case ra == 0 && rb != 0:
			return 1
		}
		if a.GetSupport().GetHeadcount() != b.GetSupport().GetHeadcount() {
			return int(b.GetSupport().GetHeadcount()) - int(a.GetSupport().GetHeadcount())
		}
		return strings.Compare(a.GetCandidateId(), b.GetCandidateId())
	})
	p := it.GetParticipating()
	fmt.Fprintf(tw, "   RANK\tAREA m²\t%%\tOWNERS\t%%\tSTATUS\tCANDIDATE\n")
	for _, c := range cands {
		rank := "-"
		if c.GetRank() > 0 {
			rank = fmt.Sprint(c.GetRank())
		}
		var st []string
		switch {
		case c.GetElected():
			st = append(st, "ELECTED")
		case c.GetQualified():
			st = append(st, "qualified")
		default:
			st = append(st, "not qualified")
		}
		if c.GetTied() {
			st = append(st, "TIED")
		}
		name := c.GetCandidateId()
		if n := names[name]; n != "" {
			name += " " + n
		}
		s := c.GetSupport()
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%d\t%s\t%s\t%s\n", rank, election.FormatArea(s.GetArea()), cmPct(s.GetArea(), p.GetArea()),
			s.GetHeadcount(), cmPct(int64(s.GetHeadcount()), int64(p.GetHeadcount())), strings.Join(st, ", "), name)
	}
}

// cmPct renders a share for reading; "-" when the whole is zero.
func cmPct(part, whole int64) string {
	if whole == 0 {
		return "-"
	}
	return election.Percent(part, whole) + "%"
}

func cmOutcome(o doorstepv1.Outcome) string {
	switch o {
	case doorstepv1.Outcome_OUTCOME_PASSED:
		return "PASSED"
	case doorstepv1.Outcome_OUTCOME_FAILED:
		return "FAILED"
	case doorstepv1.Outcome_OUTCOME_NO_QUORUM:
		return "quorum not met (nothing is decided yet)"
	case doorstepv1.Outcome_OUTCOME_ELECTED:
		return "ELECTED (see the candidates marked above)"
	case doorstepv1.Outcome_OUTCOME_TIE:
		return "TIE for the last seat(s): the committee decides, the count never does"
	}
	return "not decided"
}

func runAdjudicateList(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "adjudicate list", "--election ID [flags]",
		"List the units whose live ballots differ (held for the committee under the hold\npolicy) with each ballot, and the owners whose units voted differently on an item.", true, true)
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	r, err := openCmReader(ctx, env, f)
	if err != nil {
		return err
	}
	defer r.Close()
	units, owners, err := r.Contested(ctx)
	if err != nil {
		return r.rpcError("list contested units", err)
	}
	writeContested(env.Stdout, f.election, units, owners, env.Now().Location())
	return nil
}

func writeContested(w io.Writer, electionID string, units []*doorstepv1.ContestedUnit, owners []*doorstepv1.SplitOwner, loc *time.Location) {
	if len(units) == 0 && len(owners) == 0 {
		fmt.Fprintf(w, "Nothing waits for the committee in election %s.\n", electionID)
		return
	}
	fmt.Fprintf(w, "Contested units: %d\n", len(units))
	for _, u := range units {
		fmt.Fprintf(w, "\n  Unit %s: %d live ballots that differ\n", u.GetUnitId(), len(u.GetBallots()))
		for _, b := range u.GetBallots() {
			fmt.Fprintf(w, "    record %s  device %s  %s\n      %s\n", b.GetRecordId(), b.GetDeviceId(),
				hlc.Wall(b.GetHlc()).In(loc).Format("2006-01-02 15:04:05 MST"), cmSelections(b.GetSelections()))
		}
	}
	if len(units) > 0 {
		fmt.Fprintf(w, "\n  Settle one: doorstep adjudicate unit --election %s --unit UNIT (--count RECORD_ID | --count-none) --reason TEXT\n", electionID)
	}
	fmt.Fprintf(w, "\nSplit owners: %d\n", len(owners))
	for _, o := range owners {
		fmt.Fprintf(w, "  owner %s  item %s  units %s\n", o.GetOwnerKey(), o.GetItemId(), strings.Join(o.GetUnitIds(), ", "))
	}
	if len(owners) > 0 {
		fmt.Fprintf(w, "\n  Settle one: doorstep adjudicate owner --election %s --owner KEY --item ITEM (--choice yes|no|abstain | --candidates A,B) --reason TEXT\n", electionID)
	}
}

// cmSelections renders a ballot's answers on one line.
func cmSelections(sels []*doorstepv1.Selection) string {
	if len(sels) == 0 {
		return "(blank ballot)"
	}
	parts := make([]string, 0, len(sels))
	for _, s := range sels {
		switch {
		case len(s.GetCandidateIds()) > 0:
			parts = append(parts, s.GetItemId()+": "+strings.Join(s.GetCandidateIds(), ","))
		case s.GetChoice() == doorstepv1.Choice_CHOICE_UNSPECIFIED:
			parts = append(parts, s.GetItemId()+": (invalid or blank)")
		default:
			parts = append(parts, s.GetItemId()+": "+cmEnumName(s.GetChoice().String(), "CHOICE_"))
		}
	}
	return strings.Join(parts, "; ")
}

func runAdjudicateUnit(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "adjudicate unit", "--election ID --unit U (--count RECORD_ID | --count-none) --reason TEXT [flags]",
		"Settle a contested unit: count one of its ballots, or none of them. The decision\nis a signed committee record in the log; a later decision on the same unit\nreplaces it.", true, true)
	var unit, count, reason string
	var none bool
	fs.StringVar(&unit, "unit", "", "the unit id (required)")
	fs.StringVar(&count, "count", "", "the record id of the ballot to count")
	fs.BoolVar(&none, "count-none", false, "count none of the unit's ballots")
	fs.StringVar(&reason, "reason", "", "why, for the record (required)")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if err := election.CheckID("--unit", unit); err != nil {
		return cmUsage(env, f.name, "%v", err)
	}
	if (count == "") == !none {
		return cmUsage(env, f.name, "give exactly one of --count RECORD_ID and --count-none")
	}
	if count != "" {
		if err := signed.CheckRecordID("--count", count); err != nil {
			return cmUsage(env, f.name, "%v (copy it from 'doorstep adjudicate list')", err)
		}
	}
	if err := cmCheckReason(env, f.name, reason); err != nil {
		return err
	}
	act := &doorstepv1.Adjudication{Subject: &doorstepv1.Adjudication_Unit{Unit: &doorstepv1.UnitDecision{UnitId: unit, CountedRecordId: count}}, Reason: reason}
	if err := cmAdjudicate(ctx, env, f, act); err != nil {
		return err
	}
	if none {
		fmt.Fprintf(env.Stdout, "Unit %s: none of its ballots count, by the committee's decision.\n", unit)
	} else {
		fmt.Fprintf(env.Stdout, "Unit %s: ballot %s counts, by the committee's decision.\n", unit, count)
	}
	return nil
}

func runAdjudicateOwner(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "adjudicate owner", "--election ID --owner KEY --item ITEM (--choice yes|no|abstain | --candidates A,B) --reason TEXT [flags]",
		"Settle a split owner: an owner of several units whose ballots disagree on an item.\nThe units' areas count as each unit voted; this decides how the owner's one\nheadcount vote counts on that item.", true, true)
	var owner, item, choice, cands, reason string
	fs.StringVar(&owner, "owner", "", "the owner key (required)")
	fs.StringVar(&item, "item", "", "the item id (required)")
	fs.StringVar(&choice, "choice", "", "the headcount vote on a motion: yes, no or abstain")
	fs.StringVar(&cands, "candidates", "", "the headcount vote in a candidate election: candidate ids, comma-separated")
	fs.StringVar(&reason, "reason", "", "why, for the record (required)")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if err := election.CheckID("--owner", owner); err != nil {
		return cmUsage(env, f.name, "%v", err)
	}
	if err := election.CheckID("--item", item); err != nil {
		return cmUsage(env, f.name, "%v", err)
	}
	if (choice == "") == (cands == "") {
		return cmUsage(env, f.name, "give exactly one of --choice (a motion) and --candidates (a candidate election)")
	}
	dec := &doorstepv1.OwnerDecision{OwnerKey: owner, ItemId: item}
	sel := election.Selection{ItemID: item}
	if choice != "" {
		switch strings.ToLower(choice) {
		case "yes":
			dec.Choice, sel.Choice = doorstepv1.Choice_CHOICE_YES, election.ChoiceYes
		case "no":
			dec.Choice, sel.Choice = doorstepv1.Choice_CHOICE_NO, election.ChoiceNo
		case "abstain":
			dec.Choice, sel.Choice = doorstepv1.Choice_CHOICE_ABSTAIN, election.ChoiceAbstain
		default:
			return cmUsage(env, f.name, "--choice must be yes, no or abstain")
		}
	} else {
		for c := range strings.SplitSeq(cands, ",") {
			dec.CandidateIds = append(dec.CandidateIds, strings.TrimSpace(c))
		}
		sel.Candidates = dec.CandidateIds
	}
	if err := cmCheckReason(env, f.name, reason); err != nil {
		return err
	}
	// Check against the definition when this machine has it, so a typo is
	// caught before it is signed into the log.
	if st, ok, err := committee.ReadState(f.dir, f.election); err == nil && ok {
		if p, _ := st.DefinitionProto(); p != nil {
			if def, err := rules.Definition(p); err == nil {
				if _, _, err := def.Marks([]election.Selection{sel}); err != nil {
					return cmUsage(env, f.name, "%v", err)
				}
			}
		}
	}
	act := &doorstepv1.Adjudication{Subject: &doorstepv1.Adjudication_Owner{Owner: dec}, Reason: reason}
	if err := cmAdjudicate(ctx, env, f, act); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Owner %s, item %s: the headcount vote is settled by the committee's decision.\n", owner, item)
	return nil
}

func cmCheckReason(env *Env, name, reason string) error {
	if reason == "" {
		return cmUsage(env, name, "--reason is required: it goes into the log for auditors")
	}
	if err := election.CheckText("--reason", reason, election.MaxTextLen); err != nil {
		return cmUsage(env, name, "%v", err)
	}
	return nil
}

func cmAdjudicate(ctx context.Context, env *Env, f *cmFlags, a *doorstepv1.Adjudication) error {
	s, err := openCmSession(ctx, env, f, f.election)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.submit(ctx, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: a}}); err != nil {
		return err
	}
	cmPrintCheckpoint(env, s.Checkpoint())
	return nil
}
