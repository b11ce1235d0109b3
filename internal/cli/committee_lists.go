package cli

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/atomicfile"
	"github.com/doorstep-vote/doorstep/internal/hlc"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/notice"
)

// The committee's lists. Each prints a table for people, or with --json
// one JSON object whose field names are part of the command's interface
// (documented in its --help) and do not change.

func commentsCommands() []*Command {
	return []*Command{
		{Name: "list", Summary: "help.comments_list.summary", Usage: "--election ID [--csv FILE] [--json] [--lang zh|en] [flags]", Run: runCommentsList},
	}
}

// cmJSON writes v as indented JSON.
func cmJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// jsonTime is an RFC 3339 time in UTC, or null.
func jsonTime(ts *timestamppb.Timestamp) *string {
	if ts == nil {
		return nil
	}
	s := ts.AsTime().UTC().Format(time.RFC3339Nano)
	return &s
}

// cmLabel is how a device is named to a person: its label, else its id.
func cmLabel(label, id string) string {
	if label != "" {
		return label
	}
	return id
}

type jsonDevice struct {
	Label         string  `json:"label"`
	DeviceID      string  `json:"device_id"`
	EnrolledAt    *string `json:"enrolled_at"`
	LastSync      *string `json:"last_sync"`
	RecordsHeld   uint64  `json:"records_held"`
	HighSeq       uint64  `json:"high_seq"`
	Gaps          uint64  `json:"gaps"`
	Revoked       bool    `json:"revoked"`
	Unsent        *uint64 `json:"unsent"`
	ClockOffsetMs int64   `json:"clock_offset_ms"`
}

func runDeviceList(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "device list", "--election ID [--json] [--lang zh|en] [flags]", "help.device_list", true, true)
	asJSON := fs.Bool("json", false, "help.device_list.flag.json")
	f.withLang(fs, "help.flag.lang_table")
	l, r, err := f.openRead(ctx, env, fs, args)
	if err != nil {
		return err
	}
	defer r.Close()
	devs, err := r.Devices(ctx)
	if err != nil {
		return r.rpcError("cli.call.list_devices", err)
	}
	if *asJSON {
		out := struct {
			ElectionID string       `json:"election_id"`
			Devices    []jsonDevice `json:"devices"`
		}{ElectionID: f.election, Devices: []jsonDevice{}}
		for _, d := range devs {
			j := jsonDevice{Label: d.GetLabel(), DeviceID: d.GetDeviceId(), EnrolledAt: jsonTime(d.GetEnrolledAt()), LastSync: jsonTime(d.GetLastSync()),
				RecordsHeld: d.GetRecordsHeld(), HighSeq: d.GetHighSeq(), Gaps: d.GetGaps(), Revoked: d.GetRevoked(), ClockOffsetMs: d.GetClockOffsetMs()}
			if d.GetUnsentKnown() {
				n := d.GetUnsent()
				j.Unsent = &n
			}
			out.Devices = append(out.Devices, j)
		}
		return cmJSON(env.Stdout, out)
	}
	writeDevices(env.Stdout, l, f.election, devs, env.Now())
	return nil
}

func writeDevices(w io.Writer, l i18n.Lang, electionID string, devs []*doorstepv1.DeviceSummary, now time.Time) {
	if len(devs) == 0 {
		fmt.Fprintln(w, l.T("cli.devices.none", electionID, electionID))
		return
	}
	fmt.Fprintln(w, l.T("cli.devices.heading", electionID, len(devs)))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\n", strings.Join([]string{l.T("cli.devices.col_label"), l.T("cli.devices.col_id"), l.T("cli.devices.col_enrolled"), l.T("cli.devices.col_last_sync"),
		l.T("cli.devices.col_held"), l.T("cli.devices.col_gaps"), l.T("cli.devices.col_revoked"), l.T("cli.devices.col_unsent")}, "\t"))
	waiting := 0
	for _, d := range devs {
		unsent := l.T("cli.devices.unknown")
		if d.GetUnsentKnown() {
			unsent = fmt.Sprint(d.GetUnsent())
			if d.GetUnsent() > 0 && !d.GetRevoked() {
				waiting++
			}
		}
		revoked := l.T("cli.no")
		if d.GetRevoked() {
			revoked = l.T("cli.yes")
		}
		last := l.T("cli.devices.never")
		if d.GetLastSync() != nil {
			last = cmTime(d.GetLastSync(), now)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", cmLabel(d.GetLabel(), "-"), d.GetDeviceId(), cmTime(d.GetEnrolledAt(), now), last,
			d.GetRecordsHeld(), d.GetGaps(), revoked, unsent)
	}
	tw.Flush()
	if waiting > 0 {
		fmt.Fprintln(w, "\n"+l.T("cli.devices.must_sync", waiting))
	}
}

type jsonSelection struct {
	ItemID         string   `json:"item_id"`
	Choice         string   `json:"choice"`
	CandidateIDs   []string `json:"candidate_ids"`
	CandidateNames []string `json:"candidate_names"`
}

type jsonBallot struct {
	RecordID     string          `json:"record_id"`
	DeviceID     string          `json:"device_id"`
	DeviceLabel  string          `json:"device_label"`
	DeviceTime   *string         `json:"device_time"`
	Selections   []jsonSelection `json:"selections"`
	Comment      string          `json:"comment"`
	SignerKind   string          `json:"signer_kind"`
	SignerName   string          `json:"signer_name"`
	LateDoubtful bool            `json:"late_doubtful"`
}

type jsonUnitChoice struct {
	UnitID    string        `json:"unit_id"`
	Selection jsonSelection `json:"selection"`
}

type jsonContested struct {
	UnitID  string       `json:"unit_id"`
	Ballots []jsonBallot `json:"ballots"`
}

type jsonSplitOwner struct {
	OwnerKey string           `json:"owner_key"`
	ItemID   string           `json:"item_id"`
	UnitIDs  []string         `json:"unit_ids"`
	Choices  []jsonUnitChoice `json:"choices"`
}

func toJSONSelection(s *doorstepv1.Selection, names map[string]string) jsonSelection {
	j := jsonSelection{ItemID: s.GetItemId(), CandidateIDs: append([]string{}, s.GetCandidateIds()...), CandidateNames: []string{}}
	for _, id := range s.GetCandidateIds() {
		j.CandidateNames = append(j.CandidateNames, names[id])
	}
	switch s.GetChoice() {
	case doorstepv1.Choice_CHOICE_YES:
		j.Choice = "yes"
	case doorstepv1.Choice_CHOICE_NO:
		j.Choice = "no"
	case doorstepv1.Choice_CHOICE_ABSTAIN:
		j.Choice = "abstain"
	}
	return j
}

func signerKind(k doorstepv1.SignerKind) string {
	switch k {
	case doorstepv1.SignerKind_SIGNER_KIND_OWNER:
		return "owner"
	case doorstepv1.SignerKind_SIGNER_KIND_CO_OWNER:
		return "co-owner"
	case doorstepv1.SignerKind_SIGNER_KIND_PROXY:
		return "proxy"
	}
	return ""
}

// ballotTime is when the device made a ballot: its author time, else the
// wall part of its hybrid clock.
func ballotTime(b *doorstepv1.ContestedBallot) *timestamppb.Timestamp {
	if b.GetAuthorTime() != nil {
		return b.GetAuthorTime()
	}
	if b.GetHlc() != 0 {
		return timestamppb.New(hlc.Wall(b.GetHlc()))
	}
	return nil
}

func runAdjudicateList(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "adjudicate list", "--election ID [--json] [--lang zh|en] [flags]", "help.adjudicate_list", true, true)
	asJSON := fs.Bool("json", false, "help.adjudicate_list.flag.json")
	f.withLang(fs, "help.flag.lang_list")
	l, r, err := f.openRead(ctx, env, fs, args)
	if err != nil {
		return err
	}
	defer r.Close()
	units, owners, err := r.Contested(ctx)
	if err != nil {
		return r.rpcError("cli.call.list_contested", err)
	}
	names := map[string]string{}
	if def := r.definition(); def != nil {
		names = notice.CandidateNames(def)
	}
	if *asJSON {
		out := struct {
			ElectionID     string           `json:"election_id"`
			ContestedUnits []jsonContested  `json:"contested_units"`
			SplitOwners    []jsonSplitOwner `json:"split_owners"`
		}{ElectionID: f.election, ContestedUnits: []jsonContested{}, SplitOwners: []jsonSplitOwner{}}
		for _, u := range units {
			c := jsonContested{UnitID: u.GetUnitId(), Ballots: []jsonBallot{}}
			for _, b := range u.GetBallots() {
				jb := jsonBallot{RecordID: b.GetRecordId(), DeviceID: b.GetDeviceId(), DeviceLabel: b.GetDeviceLabel(), DeviceTime: jsonTime(ballotTime(b)),
					Selections: []jsonSelection{}, Comment: b.GetComment(), SignerKind: signerKind(b.GetSignerKind()), SignerName: b.GetSignerName(), LateDoubtful: b.GetLateDoubtful()}
				for _, s := range b.GetSelections() {
					jb.Selections = append(jb.Selections, toJSONSelection(s, names))
				}
				c.Ballots = append(c.Ballots, jb)
			}
			out.ContestedUnits = append(out.ContestedUnits, c)
		}
		for _, o := range owners {
			j := jsonSplitOwner{OwnerKey: o.GetOwnerKey(), ItemID: o.GetItemId(), UnitIDs: append([]string{}, o.GetUnitIds()...), Choices: []jsonUnitChoice{}}
			for _, c := range o.GetChoices() {
				j.Choices = append(j.Choices, jsonUnitChoice{UnitID: c.GetUnitId(), Selection: toJSONSelection(c.GetSelection(), names)})
			}
			out.SplitOwners = append(out.SplitOwners, j)
		}
		return cmJSON(env.Stdout, out)
	}
	writeContested(env.Stdout, l, f.election, units, owners, names, env.Now())
	return nil
}

func writeContested(w io.Writer, l i18n.Lang, electionID string, units []*doorstepv1.ContestedUnit, owners []*doorstepv1.SplitOwner, names map[string]string, now time.Time) {
	if len(units) == 0 && len(owners) == 0 {
		fmt.Fprintln(w, l.T("cli.adj.nothing", electionID))
		return
	}
	fmt.Fprintln(w, l.T("cli.adj.units", len(units)))
	for _, u := range units {
		fmt.Fprintln(w, "\n"+l.T("cli.adj.unit", u.GetUnitId(), len(u.GetBallots())))
		for _, b := range u.GetBallots() {
			fmt.Fprintln(w, l.T("cli.adj.ballot", b.GetRecordId(), cmLabel(b.GetDeviceLabel(), b.GetDeviceId()), b.GetDeviceId(), cmTime(ballotTime(b), now)))
			fmt.Fprintln(w, "      "+cmSelections(l, b.GetSelections(), names))
			if k := signerKind(b.GetSignerKind()); k != "" || b.GetSignerName() != "" {
				fmt.Fprintln(w, l.T("cli.adj.signer", l.T("cli.signer."+cmOr(k, "unknown")), b.GetSignerName()))
			}
			if c := b.GetComment(); c != "" {
				fmt.Fprintln(w, l.T("cli.adj.comment", c))
			}
			if b.GetLateDoubtful() {
				fmt.Fprintln(w, l.T("cli.adj.late_doubtful"))
			}
		}
	}
	if len(units) > 0 {
		fmt.Fprintln(w, "\n"+l.T("cli.adj.settle_unit", electionID))
	}
	fmt.Fprintln(w, "\n"+l.T("cli.adj.owners", len(owners)))
	for _, o := range owners {
		fmt.Fprintln(w, l.T("cli.adj.owner", o.GetOwnerKey(), o.GetItemId(), strings.Join(o.GetUnitIds(), ", ")))
		for _, c := range o.GetChoices() {
			fmt.Fprintf(w, "      %s: %s\n", c.GetUnitId(), notice.SelectionText(l, c.GetSelection(), names))
		}
	}
	if len(owners) > 0 {
		fmt.Fprintln(w, "\n"+l.T("cli.adj.settle_owner", electionID))
	}
}

func cmOr(s, alt string) string {
	if s == "" {
		return alt
	}
	return s
}

// cmSelections renders a ballot's answers on one line.
func cmSelections(l i18n.Lang, sels []*doorstepv1.Selection, names map[string]string) string {
	if len(sels) == 0 {
		return l.T("cli.adj.blank")
	}
	parts := make([]string, 0, len(sels))
	for _, s := range sels {
		if len(s.GetCandidateIds()) == 0 && s.GetChoice() == doorstepv1.Choice_CHOICE_UNSPECIFIED {
			parts = append(parts, s.GetItemId()+": ("+l.T("notice.choice.invalid")+")")
			continue
		}
		parts = append(parts, s.GetItemId()+": "+notice.SelectionText(l, s, names))
	}
	return strings.Join(parts, "; ")
}

type jsonComment struct {
	UnitID      string  `json:"unit_id"`
	Building    string  `json:"building"`
	Time        *string `json:"time"`
	Comment     string  `json:"comment"`
	DeviceID    string  `json:"device_id"`
	DeviceLabel string  `json:"device_label"`
	RecordID    string  `json:"record_id"`
}

func runCommentsList(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "comments list", "--election ID [--csv FILE] [--json] [--lang zh|en] [flags]", "help.comments_list", true, true)
	asJSON := fs.Bool("json", false, "help.comments_list.flag.json")
	csvFile := fs.String("csv", "", "help.comments_list.flag.csv")
	f.withLang(fs, "help.flag.lang_list_csv")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if *asJSON && *csvFile != "" {
		return f.usage(env, "cli.usage.json_csv")
	}
	l := f.say(env)
	r, err := openCmReader(ctx, env, f, l)
	if err != nil {
		return err
	}
	defer r.Close()
	cs, err := r.Comments(ctx)
	if err != nil {
		return r.rpcError("cli.call.list_comments", err)
	}
	switch {
	case *asJSON:
		out := struct {
			ElectionID string        `json:"election_id"`
			Comments   []jsonComment `json:"comments"`
		}{ElectionID: f.election, Comments: []jsonComment{}}
		for _, c := range cs {
			out.Comments = append(out.Comments, jsonComment{UnitID: c.GetUnitId(), Building: c.GetBuilding(), Time: jsonTime(c.GetAuthorTime()),
				Comment: c.GetComment(), DeviceID: c.GetDeviceId(), DeviceLabel: c.GetDeviceLabel(), RecordID: c.GetRecordId()})
		}
		return cmJSON(env.Stdout, out)
	case *csvFile != "":
		if err := atomicfile.Replace(*csvFile, commentsCSV(l, cs, env.Now())); err != nil {
			return fmt.Errorf("write %s: %w", *csvFile, err)
		}
		fmt.Fprintln(env.Stdout, l.T("cli.comments.written", len(cs), *csvFile))
		return nil
	}
	if len(cs) == 0 {
		fmt.Fprintln(env.Stdout, l.T("cli.comments.none", f.election))
		return nil
	}
	fmt.Fprintln(env.Stdout, l.T("cli.comments.heading", f.election, len(cs)))
	for _, c := range cs {
		fmt.Fprintln(env.Stdout, "\n"+l.T("cli.comments.item", c.GetUnitId(), c.GetBuilding(), cmTime(c.GetAuthorTime(), env.Now()), cmLabel(c.GetDeviceLabel(), c.GetDeviceId())))
		fmt.Fprintln(env.Stdout, "  "+c.GetComment())
	}
	return nil
}

// commentsCSV is the comments for a spreadsheet: a UTF-8 byte order mark
// (as internal/audit's CSVs have), the headers in l, local times.
func commentsCSV(l i18n.Lang, cs []*doorstepv1.ResidentComment, now time.Time) []byte {
	var b strings.Builder
	b.WriteString("\uFEFF")
	w := csv.NewWriter(&b)
	_ = w.Write([]string{l.T("csv.unit"), l.T("csv.building"), l.T("csv.time"), l.T("csv.comment"), l.T("csv.canvasser"), l.T("csv.device_id"), l.T("csv.record_id")})
	for _, c := range cs {
		t := ""
		if c.GetAuthorTime() != nil {
			t = c.GetAuthorTime().AsTime().In(now.Location()).Format("2006-01-02 15:04:05")
		}
		_ = w.Write([]string{c.GetUnitId(), c.GetBuilding(), t, c.GetComment(), c.GetDeviceLabel(), c.GetDeviceId(), c.GetRecordId()})
	}
	w.Flush() // a strings.Builder does not fail
	return []byte(b.String())
}
