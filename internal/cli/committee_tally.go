package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/notice"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/tallyview"
)

func tallyCommands() []*Command {
	return []*Command{
		{Name: "show", Summary: "help.tally_show.summary", Usage: "--election ID [--json] [--lang zh|en] [flags]", Run: runTallyShow},
		{Name: "watch", Summary: "help.tally_watch.summary", Usage: "--election ID [--lang zh|en] [flags]", Run: runTallyWatch},
		{Name: "notice", Summary: "help.tally_notice.summary", Usage: "--election ID --out FILE.html [--lang zh|en] [--final] [flags]", Run: runTallyNotice},
	}
}

func adjudicateCommands() []*Command {
	return []*Command{
		{Name: "list", Summary: "help.adjudicate_list.summary", Usage: "--election ID [--json] [--lang zh|en] [flags]", Run: runAdjudicateList},
		{Name: "unit", Summary: "help.adjudicate_unit.summary", Usage: "--election ID --unit U (--count RECORD_ID | --count-none) --reason TEXT [flags]", Run: runAdjudicateUnit},
		{Name: "owner", Summary: "help.adjudicate_owner.summary", Usage: "--election ID --owner KEY --item ITEM (--choice yes|no|abstain | --candidates A,B) --reason TEXT [flags]", Run: runAdjudicateOwner},
	}
}

// cmReader is a read-only committee client: it signs calls with the
// committee key and takes no lock on the chain.
type cmReader struct {
	*committee.Client
	f     *cmFlags
	state committee.State // may be empty: the election was made elsewhere
	lang  i18n.Lang       // of what it says at the terminal
}

// openCmReader opens the signed reader the read commands share; l is the
// language of what it says at the terminal.
func openCmReader(ctx context.Context, env *Env, f *cmFlags, l i18n.Lang) (*cmReader, error) {
	key, err := f.loadKey(env)
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
		return nil, f.localErr(env, err)
	}
	if learned {
		firstContact(env, l, f.server, pin)
	}
	c, err := committee.Dial(f.server, pin, f.election, key, f.timeout, env.Now)
	if err != nil {
		return nil, err
	}
	return &cmReader{Client: c, f: f, state: st, lang: l}, nil
}

func (r *cmReader) rpcError(what string, err error) error {
	return cmRPCError(r.lang, what, r.f.server, r.f.timeout, r.f.election, false, err)
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
	fs, f := newCmFlags(env, "tally show", "--election ID [--json] [--lang zh|en] [flags]",
		"help.tally_show", true, true)
	asJSON := fs.Bool("json", false, "help.tally_show.flag.json")
	f.withLang(fs, "help.flag.lang_tally")
	l, r, err := f.openRead(ctx, env, fs, args)
	if err != nil {
		return err
	}
	defer r.Close()
	t, st, err := r.TallyStatus(ctx)
	if err != nil {
		return r.rpcError("cli.call.get_tally", err)
	}
	if *asJSON {
		out := t.GetCanonicalJson()
		if len(out) == 0 || out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		_, err := env.Stdout.Write(out)
		return err
	}
	return writeTally(env.Stdout, l, t, st, r.definition(), env.Now())
}

// cmTime renders a time for the committee in the machine's zone.
func cmTime(ts *timestamppb.Timestamp, now time.Time) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().In(now.Location()).Format("2006-01-02 15:04 MST")
}

// writeStatus says where the election stands and since when.
func writeStatus(w io.Writer, l i18n.Lang, st *doorstepv1.ElectionStatus, now time.Time) {
	if st == nil {
		return
	}
	switch st.GetState() {
	case doorstepv1.ElectionState_ELECTION_STATE_DEFINED:
		fmt.Fprintln(w, l.T("cli.status.defined", l.T("state.defined")))
	case doorstepv1.ElectionState_ELECTION_STATE_OPEN:
		fmt.Fprintln(w, l.T("cli.status.open", l.T("state.open"), cmTime(st.GetOpenedAt(), now), cmTime(st.GetSyncDeadline(), now)))
	case doorstepv1.ElectionState_ELECTION_STATE_CLOSED:
		fmt.Fprintln(w, l.T("cli.status.closed", l.T("state.closed"), cmTime(st.GetClosedAt(), now)))
		if ends := st.GetObjectionEnds(); ends != nil && now.Before(ends.AsTime()) {
			fmt.Fprintln(w, l.T("cli.status.objection_runs", cmTime(ends, now)))
		} else {
			fmt.Fprintln(w, l.T("cli.status.objection_over", cmTime(ends, now)))
		}
	case doorstepv1.ElectionState_ELECTION_STATE_CERTIFIED:
		fmt.Fprintln(w, l.T("cli.status.certified", l.T("state.certified"), cmTime(st.GetCertifiedAt(), now)))
	}
}

// writeTally renders a tally for people. Percentages are for reading only:
// every decision in it was made by the server in exact arithmetic.
func writeTally(w io.Writer, l i18n.Lang, t *doorstepv1.Tally, st *doorstepv1.ElectionStatus, def *doorstepv1.ElectionDefinition, now time.Time) error {
	if def != nil {
		fmt.Fprintln(w, l.T("cli.tally.heading_title", t.GetElectionId(), def.GetTitle()))
	} else {
		fmt.Fprintln(w, l.T("cli.tally.heading", t.GetElectionId()))
	}
	writeStatus(w, l, st, now)
	if cp := t.GetCheckpoint(); cp != nil {
		fmt.Fprintln(w, l.T("cli.tally.checkpoint", cp.GetSize(), base64.StdEncoding.EncodeToString(cp.GetRootHash())))
	}
	fmt.Fprintln(w, l.T("cli.tally.roster", t.GetRosterUnits(), election.FormatArea(t.GetRosterArea()), t.GetRosterHeadcount(),
		t.GetUnitsCounted(), t.GetUnitsContested(), t.GetUnitsDoubleVisited()))
	items := map[string]*doorstepv1.Item{}
	for _, it := range def.GetItems() {
		items[it.GetItemId()] = it
	}
	for i, it := range t.GetItems() {
		d := items[it.GetItemId()]
		fmt.Fprintf(w, "\n%d. %s", i+1, it.GetItemId())
		if d != nil {
			fmt.Fprintf(w, " — %s (%s)", d.GetTitle(), notice.Rule(l, d))
		}
		fmt.Fprintln(w)
		p := it.GetParticipating()
		quorum := l.T("cli.tally.quorum_not_met")
		if it.GetQuorumMet() {
			quorum = l.T("cli.tally.quorum_met")
		}
		fmt.Fprintln(w, l.T("cli.tally.participation",
			election.FormatArea(p.GetArea()), election.FormatArea(t.GetRosterArea()), cmPct(p.GetArea(), t.GetRosterArea()),
			p.GetHeadcount(), t.GetRosterHeadcount(), cmPct(int64(p.GetHeadcount()), int64(t.GetRosterHeadcount())), quorum))
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if len(it.GetCandidates()) > 0 || d.GetCandidates() != nil {
			writeCandidates(tw, l, it, d)
		} else {
			fmt.Fprintf(tw, "   \t%s\t%%\t%s\t%%\n", l.T("cli.tally.col_area"), l.T("cli.tally.col_owners"))
			for _, row := range []struct {
				name string
				c    *doorstepv1.Count
			}{{l.T("cli.tally.yes"), it.GetYes()}, {l.T("cli.tally.no"), it.GetNo()}, {l.T("cli.tally.abstain"), it.GetAbstain()}} {
				fmt.Fprintf(tw, "   %s\t%s\t%s\t%d\t%s\n", row.name, election.FormatArea(row.c.GetArea()), cmPct(row.c.GetArea(), p.GetArea()),
					row.c.GetHeadcount(), cmPct(int64(row.c.GetHeadcount()), int64(p.GetHeadcount())))
			}
		}
		inv := it.GetInvalid()
		fmt.Fprintf(tw, "   %s\t%s\t%s\t%d\t%s\n", l.T("cli.tally.invalid"), election.FormatArea(inv.GetArea()), cmPct(inv.GetArea(), p.GetArea()),
			inv.GetHeadcount(), cmPct(int64(inv.GetHeadcount()), int64(p.GetHeadcount())))
		tw.Flush()
		if h := it.GetHeldHeadcount(); h > 0 {
			fmt.Fprintln(w, l.T("cli.tally.held", h))
		}
		fmt.Fprintln(w, l.T("cli.tally.outcome", cmOutcome(l, it.GetOutcome())))
	}
	return nil
}

func writeCandidates(tw *tabwriter.Writer, l i18n.Lang, it *doorstepv1.ItemTally, d *doorstepv1.Item) {
	names := map[string]string{}
	for _, c := range d.GetCandidates().GetCandidates() {
		names[c.GetCandidateId()] = c.GetName()
	}
	p := it.GetParticipating()
	fmt.Fprintf(tw, "   %s\t%s\t%%\t%s\t%%\t%s\t%s\n", l.T("cli.tally.col_rank"), l.T("cli.tally.col_area"), l.T("cli.tally.col_owners"), l.T("cli.tally.col_status"), l.T("cli.tally.col_candidate"))
	for _, c := range tallyview.Ranked(it.GetCandidates()) {
		rank := "-"
		if c.GetRank() > 0 {
			rank = fmt.Sprint(c.GetRank())
		}
		var st []string
		switch {
		case c.GetElected():
			st = append(st, l.T("cli.cand.elected"))
		case c.GetQualified():
			st = append(st, l.T("cli.cand.qualified"))
		default:
			st = append(st, l.T("cli.cand.not_qualified"))
		}
		if c.GetTied() {
			st = append(st, l.T("cli.cand.tied"))
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

func cmOutcome(l i18n.Lang, o doorstepv1.Outcome) string {
	return l.T("cli.outcome." + tallyview.OutcomeKey(o))
}

func runAdjudicateUnit(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "adjudicate unit", "--election ID --unit U (--count RECORD_ID | --count-none) --reason TEXT [flags]",
		"help.adjudicate_unit", true, true)
	var unit, count, reason string
	var none bool
	fs.StringVar(&unit, "unit", "", "help.adjudicate_unit.flag.unit")
	fs.StringVar(&count, "count", "", "help.adjudicate_unit.flag.count")
	fs.BoolVar(&none, "count-none", false, "help.adjudicate_unit.flag.count_none")
	fs.StringVar(&reason, "reason", "", "help.adjudicate_unit.flag.reason")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if err := election.CheckID("--unit", unit); err != nil {
		return f.usageText(env, err.Error())
	}
	if (count == "") == !none {
		return f.usage(env, "cli.usage.count_one")
	}
	if count != "" {
		if err := signed.CheckRecordID("--count", count); err != nil {
			return f.usage(env, "cli.usage.record_id", err)
		}
	}
	if err := f.checkReason(env, reason); err != nil {
		return err
	}
	act := &doorstepv1.Adjudication{Subject: &doorstepv1.Adjudication_Unit{Unit: &doorstepv1.UnitDecision{UnitId: unit, CountedRecordId: count}}, Reason: reason}
	if err := cmAdjudicate(ctx, env, f, act); err != nil {
		return err
	}
	if none {
		fmt.Fprintln(env.Stdout, f.say(env).T("cli.settle.unit_none", unit))
	} else {
		fmt.Fprintln(env.Stdout, f.say(env).T("cli.settle.unit", unit, count))
	}
	return nil
}

func runAdjudicateOwner(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "adjudicate owner", "--election ID --owner KEY --item ITEM (--choice yes|no|abstain | --candidates A,B) --reason TEXT [flags]",
		"help.adjudicate_owner", true, true)
	var owner, item, choice, cands, reason string
	fs.StringVar(&owner, "owner", "", "help.adjudicate_owner.flag.owner")
	fs.StringVar(&item, "item", "", "help.adjudicate_owner.flag.item")
	fs.StringVar(&choice, "choice", "", "help.adjudicate_owner.flag.choice")
	fs.StringVar(&cands, "candidates", "", "help.adjudicate_owner.flag.candidates")
	fs.StringVar(&reason, "reason", "", "help.adjudicate_owner.flag.reason")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if err := election.CheckID("--owner", owner); err != nil {
		return f.usageText(env, err.Error())
	}
	if err := election.CheckID("--item", item); err != nil {
		return f.usageText(env, err.Error())
	}
	if (choice == "") == (cands == "") {
		return f.usage(env, "cli.usage.choice_one")
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
			return f.usage(env, "cli.usage.choice")
		}
	} else {
		for c := range strings.SplitSeq(cands, ",") {
			dec.CandidateIds = append(dec.CandidateIds, strings.TrimSpace(c))
		}
		sel.Candidates = dec.CandidateIds
	}
	if err := f.checkReason(env, reason); err != nil {
		return err
	}
	// Check against the definition when this machine has it, so a typo is
	// caught before it is signed into the log.
	if st, ok, err := committee.ReadState(f.dir, f.election); err == nil && ok {
		if p, _ := st.DefinitionProto(); p != nil {
			if def, err := rules.Definition(p); err == nil {
				if _, _, err := def.Marks([]election.Selection{sel}); err != nil {
					return f.usageText(env, err.Error())
				}
			}
		}
	}
	act := &doorstepv1.Adjudication{Subject: &doorstepv1.Adjudication_Owner{Owner: dec}, Reason: reason}
	if err := cmAdjudicate(ctx, env, f, act); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, f.say(env).T("cli.settle.owner", owner, item))
	return nil
}

func (f *cmFlags) checkReason(env *Env, reason string) error {
	if reason == "" {
		return f.usage(env, "cli.usage.need_reason")
	}
	if err := election.CheckText("--reason", reason, election.MaxTextLen); err != nil {
		return f.usageText(env, err.Error())
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
	cmPrintCheckpoint(env, f.say(env), s.Checkpoint())
	return nil
}
