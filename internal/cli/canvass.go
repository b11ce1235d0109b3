package cli

import (
	"context"
	"encoding/base64"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
)

// This file holds the canvasser's commands (doorstep canvass …). Each works
// on one device folder; all but join and sync work with no server at all.

// canvassOffline is what a canvasser is told whenever the server cannot be
// reached: nothing is lost.
const canvassOffline = "saved on this device; will sync when the server is reachable"

func canvassCommands() []*Command {
	return []*Command{
		{Name: "join", Summary: "join an election with the committee's enrollment code", Usage: "[flags] CODE", Run: runCanvassJoin},
		{Name: "record", Summary: "record a ballot or a visit at one unit", Usage: "--unit UNIT (--choice ITEM=yes|no|abstain … | --blank | --visit OUTCOME) [flags]", Run: runCanvassRecord},
		{Name: "revise", Summary: "change answers on this device's ballot for a unit (the rest is kept)", Usage: "--unit UNIT [--choice ITEM=…] [--pick ITEM=…] [flags]", Run: runCanvassRevise},
		{Name: "sync", Summary: "send saved records to the server and refresh the walk list", Usage: "[flags]", Run: runCanvassSync},
		{Name: "status", Summary: "show what this device holds and how its sync stands", Usage: "[flags]", Run: runCanvassStatus},
		{Name: "walk", Summary: "walk a route door to door, recording as you go", Usage: "[--buildings 1,2 | --units U1,U2] [flags]", Run: runCanvassWalk},
	}
}

// cvFlags are the flags every canvass command shares.
type cvFlags struct {
	name string
	dir  string
}

func newCvFlags(env *Env, name, usage, summary string) (*flag.FlagSet, *cvFlags) {
	fs := NewFlags(env, "canvass "+name, usage, summary)
	f := &cvFlags{}
	def := env.Getenv("DOORSTEP_DEVICE")
	if def == "" {
		def = "default"
	}
	fs.StringVar(&f.name, "device", def, "device name: its folder is <config>/devices/NAME (env DOORSTEP_DEVICE)")
	fs.StringVar(&f.dir, "device-dir", env.Getenv("DOORSTEP_DEVICE_DIR"), "device folder, overriding --device (env DOORSTEP_DEVICE_DIR)")
	return fs, f
}

func (f *cvFlags) folder(env *Env) (string, error) {
	if f.dir != "" {
		return f.dir, nil
	}
	if err := election.CheckID("--device", f.name); err != nil || strings.ContainsAny(f.name, `/\`) || f.name == "." || f.name == ".." {
		return "", fmt.Errorf("--device %q: a device name is one word without slashes, e.g. volunteer-1", f.name)
	}
	return filepath.Join(env.ConfigDir, "devices", f.name), nil
}

// open opens the device folder the flags name.
func (f *cvFlags) open(env *Env) (*device.Device, error) {
	dir, err := f.folder(env)
	if err != nil {
		return nil, err
	}
	return device.Open(dir, device.Options{Logger: env.Logger, Now: env.Now})
}

// cvList is a flag that may be given several times; each value may also
// hold several entries separated by commas when split is set.
type cvList struct {
	vals  []string
	split bool
}

func (l *cvList) String() string { return strings.Join(l.vals, ",") }

func (l *cvList) Set(s string) error {
	if !l.split {
		l.vals = append(l.vals, s)
		return nil
	}
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			l.vals = append(l.vals, part)
		}
	}
	return nil
}

func cvUsage(env *Env, format string, args ...any) error {
	fmt.Fprintf(env.Stderr, format+"\n", args...)
	return ErrUsage
}

func runCanvassJoin(ctx context.Context, env *Env, args []string) error {
	fs, f := newCvFlags(env, "join", "[flags] CODE",
		"Join an election: makes this device's key, checks the server against the fingerprint in the code,\n"+
			"enrolls with the code's one-time token and fetches the election and its roster.")
	label := fs.String("label", "", "a name for this device the committee sees (default: the device name)")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return cvUsage(env, "doorstep canvass join: give the enrollment code from the committee (one argument; quote it)")
	}
	code, err := enrollcode.Parse(fs.Arg(0))
	if err != nil {
		return err
	}
	if *label == "" {
		*label = f.name
	}
	d, err := f.open(env)
	if err != nil {
		return err
	}
	defer d.Close()
	enr, err := d.Join(ctx, code, *label)
	if err != nil {
		if client.Unreachable(err) && enr.DeviceID == "" {
			return fmt.Errorf("%w: check the network and the server address in the code, then run join again", err)
		}
		return err
	}
	def, roster, err := d.Election()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Joined election %s (%s) as device %s.\n", enr.ElectionID, def.Title, enr.DeviceID)
	fmt.Fprintf(env.Stdout, "Server %s, key %s.\n", enr.Server, enr.Fingerprint)
	if roster == nil {
		fmt.Fprintln(env.Stdout, "The committee has not imported the roster yet: run `doorstep canvass sync` before walking.")
	} else {
		fmt.Fprintf(env.Stdout, "Roster: %d units in %d buildings; %d items on the ballot.\n", len(roster.Units()), cvBuildings(roster), len(def.Items))
	}
	fmt.Fprintf(env.Stdout, "Device folder: %s\n", d.Dir())
	return nil
}

func cvBuildings(r *election.Roster) int {
	seen := map[string]bool{}
	for _, u := range r.Units() {
		seen[device.Building(u)] = true
	}
	return len(seen)
}

// ballotFlags are record's and revise's ballot flags.
type ballotFlags struct {
	unit       string
	choices    cvList
	picks      cvList
	signer     string
	proxyRef   string
	signerName string
	comment    string
	blank      bool
	set        map[string]bool // the flags given on the command line
}

func (b *ballotFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&b.unit, "unit", "", "the unit, e.g. 3-2-501 (required)")
	fs.Var(&b.choices, "choice", "answer to a motion, ITEM=yes|no|abstain (repeat for each motion)")
	fs.Var(&b.picks, "pick", "picks in a candidate election, ITEM=CANDIDATE,CANDIDATE (repeat for each election; ITEM= picks none)")
	fs.StringVar(&b.signer, "signer", "owner", "who signed: owner, co-owner or proxy")
	fs.StringVar(&b.proxyRef, "proxy-ref", "", "the proxy document's reference (with --signer proxy)")
	fs.StringVar(&b.signerName, "signer-name", "", "the signer's name, if they gave it")
	fs.StringVar(&b.comment, "comment", "", "the resident's comments and suggestions")
	fs.BoolVar(&b.blank, "blank", false, "the owner returned the sheet with no item answered (a ballot with no --choice or --pick needs it)")
}

// given notes which flags were set, after parsing: a revision changes
// only those.
func (b *ballotFlags) given(fs *flag.FlagSet) {
	b.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { b.set[f.Name] = true })
}

// selections reads --choice and --pick against the election: candidates
// by id or by name. ITEM=blank (with revise) leaves an item blank.
func (b *ballotFlags) selections(def *election.Definition, allowClear bool) (sels []election.Selection, clear []string, err error) {
	for _, c := range b.choices.vals {
		item, answer, ok := strings.Cut(c, "=")
		if !ok || item == "" {
			return nil, nil, fmt.Errorf("--choice %q: write ITEM=yes, ITEM=no or ITEM=abstain", c)
		}
		if allowClear && strings.EqualFold(strings.TrimSpace(answer), "blank") {
			clear = append(clear, item)
			continue
		}
		choice, ok := cvChoice(answer)
		if !ok {
			if allowClear {
				return nil, nil, fmt.Errorf("--choice %q: the answer must be yes, no, abstain or blank", c)
			}
			return nil, nil, fmt.Errorf("--choice %q: the answer must be yes, no or abstain", c)
		}
		sels = append(sels, election.Selection{ItemID: item, Choice: choice})
	}
	for _, p := range b.picks.vals {
		item, list, ok := strings.Cut(p, "=")
		if !ok || item == "" {
			return nil, nil, fmt.Errorf("--pick %q: write ITEM=CANDIDATE,CANDIDATE (ids or names)", p)
		}
		if allowClear && strings.EqualFold(strings.TrimSpace(list), "blank") {
			clear = append(clear, item)
			continue
		}
		var cands []string
		for c := range strings.SplitSeq(list, ",") {
			if c = strings.TrimSpace(c); c == "" {
				continue
			}
			id, err := cvCandidate(def, item, c)
			if err != nil {
				return nil, nil, fmt.Errorf("--pick %q: %w", p, err)
			}
			cands = append(cands, id)
		}
		sels = append(sels, election.Selection{ItemID: item, Candidates: cands})
	}
	return sels, clear, nil
}

// cvCandidate finds a candidate of an item by id or by name. An unknown
// item is left to the ballot's own check, which names it.
func cvCandidate(def *election.Definition, itemID, s string) (string, error) {
	i := def.ItemIndex(itemID)
	if i < 0 {
		return s, nil
	}
	it := &def.Items[i]
	switch j, named := cvFindCandidate(it, s); {
	case j >= 0:
		return it.Candidates[j].ID, nil
	case named > 1:
		return "", fmt.Errorf("%d candidates of %s are named %q: give the id (%s)", named, itemID, s, cvCandidateList(it))
	}
	return "", fmt.Errorf("%q is not a candidate of %s: give an id or a name (%s)", s, itemID, cvCandidateList(it))
}

// cvFindCandidate finds a candidate of it by id, else by its name (any
// case); when no id matches, named says how many have the name, and more
// than one finds none.
func cvFindCandidate(it *election.Item, s string) (idx, named int) {
	idx = -1
	for j, c := range it.Candidates {
		if c.ID == s {
			return j, 0
		}
		if strings.EqualFold(strings.TrimSpace(c.Name), s) {
			if named++; named == 1 {
				idx = j
			}
		}
	}
	if named > 1 {
		return -1, named
	}
	return idx, named
}

func cvCandidateList(it *election.Item) string {
	parts := make([]string, len(it.Candidates))
	for i, c := range it.Candidates {
		parts[i] = c.ID + " " + c.Name
	}
	return strings.Join(parts, ", ")
}

// ballot is the whole ballot the flags describe (record's).
func (b *ballotFlags) ballot(def *election.Definition) (device.Ballot, error) {
	out := device.Ballot{UnitID: b.unit, ProxyRef: b.proxyRef, SignerName: b.signerName, Comment: b.comment, Blank: b.blank}
	var err error
	if out.Signer, err = cvSigner(b.signer); err != nil {
		return device.Ballot{}, err
	}
	if out.Selections, _, err = b.selections(def, false); err != nil {
		return device.Ballot{}, err
	}
	if len(out.Selections) == 0 && !b.blank {
		return device.Ballot{}, fmt.Errorf("this ballot answers no item: give --choice or --pick for each answer, or --blank if the owner returned the sheet blank")
	}
	if len(out.Selections) > 0 && b.blank {
		return device.Ballot{}, fmt.Errorf("--blank is for a sheet with no answer: leave out --choice and --pick, or --blank")
	}
	return out, nil
}

// revision is what revise's flags change.
func (b *ballotFlags) revision(def *election.Definition) (device.Revision, error) {
	var r device.Revision
	var err error
	if r.Set, r.Clear, err = b.selections(def, true); err != nil {
		return r, err
	}
	if b.blank {
		if len(r.Set) > 0 {
			return r, fmt.Errorf("--blank leaves every item blank: leave out --choice and --pick, or --blank")
		}
		for _, it := range def.Items {
			r.Clear = append(r.Clear, it.ID)
		}
	}
	if b.set["signer"] {
		k, err := cvSigner(b.signer)
		if err != nil {
			return r, err
		}
		r.Signer = &k
	}
	if b.set["proxy-ref"] {
		r.ProxyRef = &b.proxyRef
	}
	if b.set["signer-name"] {
		r.SignerName = &b.signerName
	}
	if b.set["comment"] {
		r.Comment = &b.comment
	}
	return r, nil
}

func cvSigner(s string) (doorstepv1.SignerKind, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "owner", "业主":
		return doorstepv1.SignerKind_SIGNER_KIND_OWNER, nil
	case "co-owner", "coowner", "共有人":
		return doorstepv1.SignerKind_SIGNER_KIND_CO_OWNER, nil
	case "proxy", "代理人":
		return doorstepv1.SignerKind_SIGNER_KIND_PROXY, nil
	}
	return 0, fmt.Errorf("signer %q: say owner, co-owner or proxy", s)
}

func cvChoice(s string) (election.Choice, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "y", "同意":
		return election.ChoiceYes, true
	case "no", "n", "反对", "不同意":
		return election.ChoiceNo, true
	case "abstain", "a", "弃权":
		return election.ChoiceAbstain, true
	}
	return 0, false
}

var cvOutcomes = []struct {
	name    string
	outcome doorstepv1.VisitOutcome
	label   string
}{
	{"not-home", doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME, "not home"},
	{"refused", doorstepv1.VisitOutcome_VISIT_OUTCOME_REFUSED, "refused"},
	{"ballot-left", doorstepv1.VisitOutcome_VISIT_OUTCOME_BALLOT_LEFT, "ballot left"},
	{"moved", doorstepv1.VisitOutcome_VISIT_OUTCOME_MOVED, "moved"},
}

func cvOutcome(s string) (doorstepv1.VisitOutcome, bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	for i, o := range cvOutcomes {
		if s == o.name || s == o.label || s == fmt.Sprint(i+1) {
			return o.outcome, true
		}
	}
	return 0, false
}

func cvOutcomeLabel(o doorstepv1.VisitOutcome) string {
	for _, c := range cvOutcomes {
		if c.outcome == o {
			return c.label
		}
	}
	return "visited"
}

func runCanvassRecord(ctx context.Context, env *Env, args []string) error {
	fs, f := newCvFlags(env, "record", "--unit UNIT (--choice ITEM=yes|no|abstain … | --visit OUTCOME) [flags]",
		"Record one unit's ballot, or a visit that produced none, on this device. Needs no network:\n"+
			"the record is signed and saved to disk before this command says so.")
	var b ballotFlags
	b.register(fs)
	visit := fs.String("visit", "", "record a visit instead of a ballot: not-home, refused, ballot-left or moved")
	note := fs.String("note", "", "a note about the visit")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cvUsage(env, "doorstep canvass record: unexpected argument %q (the unit goes in --unit)", fs.Arg(0))
	}
	if b.unit == "" {
		return cvUsage(env, "doorstep canvass record: --unit is required")
	}
	d, err := f.open(env)
	if err != nil {
		return err
	}
	defer d.Close()
	if *visit != "" {
		if len(b.choices.vals) > 0 || len(b.picks.vals) > 0 || b.comment != "" || b.blank {
			return cvUsage(env, "doorstep canvass record: --visit records a call without a ballot; leave out --choice, --pick, --blank and --comment (use --note)")
		}
		outcome, ok := cvOutcome(*visit)
		if !ok {
			return cvUsage(env, "doorstep canvass record: --visit %q: say not-home, refused, ballot-left or moved", *visit)
		}
		s, err := d.RecordVisit(ctx, device.Visit{UnitID: b.unit, Outcome: outcome, Note: *note})
		if err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "Saved on this device: visit to %s (%s), record #%d.\n", b.unit, cvOutcomeLabel(outcome), s.Seq)
		cvSavedTail(env, d, s)
		return nil
	}
	if *note != "" {
		return cvUsage(env, "doorstep canvass record: --note goes with --visit; a ballot's free text is --comment")
	}
	def, _, err := d.Election()
	if err != nil {
		return err
	}
	ballot, err := b.ballot(def)
	if err != nil {
		return cvUsage(env, "doorstep canvass record: %v", err)
	}
	s, err := d.RecordBallot(ctx, ballot)
	if err != nil {
		return err
	}
	cvPrintBallotSaved(env, d, b.unit, s)
	return nil
}

func runCanvassRevise(ctx context.Context, env *Env, args []string) error {
	fs, f := newCvFlags(env, "revise", "--unit UNIT [--choice ITEM=…] [--pick ITEM=…] [flags]",
		"Record a new ballot for a unit whose owner changed their mind. It starts from this device's\n"+
			"latest ballot for the unit and changes only what you name (--choice ITEM=blank leaves an item\n"+
			"blank), shows what changed, and replaces the earlier ballot. To replace a ballot another device\n"+
			"recorded, give its record id with --supersedes and the whole ballot.")
	var b ballotFlags
	b.register(fs)
	supersedes := fs.String("supersedes", "", "record id of another device's ballot this one replaces (then give every answer)")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	b.given(fs)
	if fs.NArg() != 0 {
		return cvUsage(env, "doorstep canvass revise: unexpected argument %q", fs.Arg(0))
	}
	if b.unit == "" {
		return cvUsage(env, "doorstep canvass revise: --unit is required")
	}
	d, err := f.open(env)
	if err != nil {
		return err
	}
	defer d.Close()
	def, _, err := d.Election()
	if err != nil {
		return err
	}
	prev, prevID, prevSeq, own, err := d.LastBallot(b.unit)
	if err != nil {
		return err
	}
	var next device.Ballot
	if *supersedes != "" && (!own || *supersedes != prevID) {
		// Another device's ballot: this device does not hold it, so the
		// new one is whole, as record takes it.
		if next, err = b.ballot(def); err != nil {
			return cvUsage(env, "doorstep canvass revise: %v", err)
		}
		next.Supersedes = *supersedes
	} else {
		if !own {
			return election.Errorf(election.CodeNotFound, "unit",
				"this device has no ballot for unit %s to revise: record one, or give --supersedes with the record id of another device's ballot", b.unit)
		}
		r, err := b.revision(def)
		if err != nil {
			return cvUsage(env, "doorstep canvass revise: %v", err)
		}
		next = device.Revise(prev, prevID, r)
		changes := cvChanges(def, prev, next)
		if len(changes) == 0 {
			return cvUsage(env, "doorstep canvass revise: nothing changes on ballot #%d for %s: name the answers that change, e.g. --choice ITEM=no", prevSeq, b.unit)
		}
		fmt.Fprintf(env.Stdout, "Changes from ballot #%d for %s:\n", prevSeq, b.unit)
		for _, c := range changes {
			fmt.Fprintf(env.Stdout, "  %s\n", c)
		}
	}
	s, err := d.ReviseBallot(ctx, next)
	if err != nil {
		return err
	}
	cvPrintBallotSaved(env, d, b.unit, s)
	return nil
}

// cvChanges lists what differs between two ballots, item by item, for the
// canvasser to read before the revision counts.
func cvChanges(def *election.Definition, prev, next device.Ballot) []string {
	var out []string
	for _, it := range def.Items {
		was, now := cvAnswer(&it, prev), cvAnswer(&it, next)
		if was != now {
			out = append(out, fmt.Sprintf("%s: %s → %s", it.Title, was, now))
		}
	}
	if cvSignedBy(prev) != cvSignedBy(next) {
		out = append(out, fmt.Sprintf("signed by: %s → %s", cvSignedBy(prev), cvSignedBy(next)))
	}
	if prev.Comment != next.Comment {
		out = append(out, fmt.Sprintf("comment: %q → %q", prev.Comment, next.Comment))
	}
	return out
}

// cvAnswer shows a ballot's answer to one item.
func cvAnswer(it *election.Item, b device.Ballot) string {
	for _, s := range b.Selections {
		if s.ItemID != it.ID {
			continue
		}
		if it.Kind == election.KindMotion {
			return cvChoiceName(s.Choice)
		}
		if len(s.Candidates) == 0 {
			return "no picks"
		}
		names := make([]string, len(s.Candidates))
		for i, id := range s.Candidates {
			names[i] = id
			for _, c := range it.Candidates {
				if c.ID == id {
					names[i] = c.Name
				}
			}
		}
		return strings.Join(names, ", ")
	}
	return "blank"
}

func cvSignedBy(b device.Ballot) string {
	s := cvEnum(b.Signer.String(), "SIGNER_KIND_")
	if b.SignerName != "" {
		s += " (" + b.SignerName + ")"
	}
	if b.ProxyRef != "" {
		s += ", proxy document " + b.ProxyRef
	}
	return s
}

func cvPrintBallotSaved(env *Env, d *device.Device, unit string, s device.Saved) {
	fmt.Fprintf(env.Stdout, "Saved on this device: ballot for %s, record #%d (%s).\n", unit, s.Seq, s.RecordID)
	fmt.Fprintf(env.Stdout, "Receipt code: %s (the household can check with it that its ballot is in the log)\n", s.Receipt)
	for _, item := range s.InvalidItems {
		fmt.Fprintf(env.Stdout, "Note: item %s has more picks than seats, so it is invalid on this ballot; the rest counts.\n", item)
	}
	cvSavedTail(env, d, s)
}

func cvSavedTail(env *Env, d *device.Device, s device.Saved) {
	for _, w := range s.Warnings {
		fmt.Fprintf(env.Stdout, "Warning: %s\n", w)
	}
	if st, err := d.Status(); err == nil {
		fmt.Fprintf(env.Stdout, "%d waiting to sync: run `doorstep canvass sync` where the server is reachable.\n", st.Pending)
	}
}

func runCanvassSync(ctx context.Context, env *Env, args []string) error {
	fs, f := newCvFlags(env, "sync", "[flags]",
		"Send every saved record the server lacks, keep its answers, and refresh the walk list.\n"+
			"Retries with backoff; a failed sync loses nothing and the next one resumes.")
	attempts := fs.Int("attempts", 3, "how many times to try before giving up")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 || *attempts < 1 {
		return cvUsage(env, "doorstep canvass sync: takes no arguments; --attempts must be at least 1")
	}
	d, err := f.open(env)
	if err != nil {
		return err
	}
	defer d.Close()
	rep, err := d.Sync(ctx, *attempts)
	cvPrintSync(env, rep)
	if err != nil {
		if client.Unreachable(err) {
			return fmt.Errorf("%s (%d waiting; %v)", canvassOffline, rep.Pending, err)
		}
		return err
	}
	return nil
}

func cvPrintSync(env *Env, rep device.SyncReport) {
	w := env.Stdout
	if rep.Pushed > 0 || rep.Answered > 0 {
		fmt.Fprintf(w, "Sent %d records; the server answered for %d: %s.\n", rep.Pushed, rep.Answered, cvStatusCounts(rep.Statuses))
	}
	for _, a := range rep.Rejected {
		cvPrintRejected(w, a)
	}
	if rep.CommitteeRecords > 0 {
		fmt.Fprintf(w, "%d new records from the committee.\n", rep.CommitteeRecords)
	}
	if rep.UnitsUpdated > 0 {
		fmt.Fprintf(w, "Walk list: %d unit updates.\n", rep.UnitsUpdated)
	}
	for _, warn := range rep.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	if cp := rep.Checkpoint; cp != nil {
		fmt.Fprintf(w, "Ballot log checkpoint: %d entries, root %s.\n", cp.GetSize(), base64.StdEncoding.EncodeToString(cp.GetRootHash()))
	}
	if rep.Pending == 0 {
		fmt.Fprintln(w, "Nothing waits to sync.")
	} else {
		fmt.Fprintf(w, "%d records still wait to sync.\n", rep.Pending)
	}
}

func cvStatusCounts(m map[doorstepv1.RecordStatus]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]doorstepv1.RecordStatus, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%d %s", m[k], cvEnum(k.String(), "RECORD_STATUS_")))
	}
	return strings.Join(parts, ", ")
}

func cvEnum(s, prefix string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(s, prefix)), "_", " ")
}

func cvPrintRejected(w io.Writer, a device.Answer) {
	fmt.Fprintf(w, "Rejected: record #%d (%s): %s: %s\n", a.Seq, a.Result.GetRecordId(),
		cvEnum(a.Result.GetReason().String(), "REASON_CODE_"), a.Result.GetMessage())
}

func runCanvassStatus(ctx context.Context, env *Env, args []string) error {
	fs, f := newCvFlags(env, "status", "[flags]", "Show what this device holds: records waiting to sync, the server's answers, the last sync,\nthe last ballot log checkpoint and the clock offset.")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cvUsage(env, "doorstep canvass status: takes no arguments")
	}
	d, err := f.open(env)
	if err != nil {
		return err
	}
	defer d.Close()
	st, err := d.Status()
	if err != nil {
		return err
	}
	w := env.Stdout
	fmt.Fprintf(w, "Device folder: %s\n", st.Dir)
	if !st.Enrolled {
		fmt.Fprintln(w, "This device has not joined an election: run `doorstep canvass join CODE` with the committee's code.")
		return nil
	}
	e := st.Enrollment
	fmt.Fprintf(w, "Device %s (%s) in election %s", e.DeviceID, e.Label, e.ElectionID)
	if st.Title != "" {
		fmt.Fprintf(w, ": %s", st.Title)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Server: %s (key %s)\n", e.Server, e.Fingerprint)
	switch {
	case !st.ClosedAt.IsZero():
		fmt.Fprintf(w, "Election: closed at %s (as of the last sync)\n", st.ClosedAt.In(time.Local).Format("2006-01-02 15:04"))
	case st.Opened:
		fmt.Fprintln(w, "Election: open (as of the last sync)")
	default:
		fmt.Fprintln(w, "Election: not open yet (as of the last sync)")
	}
	fmt.Fprintf(w, "Roster: %d units\n", st.RosterUnits)
	answered := 0
	for _, n := range st.Answered {
		answered += n
	}
	fmt.Fprintf(w, "Records made here: %d; waiting to sync (pending): %d; acknowledged by the server: %d", st.Records, st.Pending, answered)
	if answered > 0 {
		fmt.Fprintf(w, " (%s)", cvStatusCounts(st.Answered))
	}
	fmt.Fprintln(w)
	for _, a := range st.Rejected {
		cvPrintRejected(w, a)
	}
	now := env.Now()
	if st.LastSync.IsZero() {
		fmt.Fprintln(w, "Last sync: never")
	} else {
		fmt.Fprintf(w, "Last sync: %s (%s ago)\n", st.LastSync.In(time.Local).Format("2006-01-02 15:04:05"), now.Sub(st.LastSync).Round(time.Second))
	}
	if st.LastError != "" {
		fmt.Fprintf(w, "Last attempt, %s: %s\n", st.LastAttempt.In(time.Local).Format("2006-01-02 15:04:05"), st.LastError)
	}
	if cp := st.Checkpoint; cp != nil {
		fmt.Fprintf(w, "Last checkpoint: %d entries, root %s\n", cp.GetSize(), base64.StdEncoding.EncodeToString(cp.GetRootHash()))
	} else {
		fmt.Fprintln(w, "Last checkpoint: none yet")
	}
	fmt.Fprintf(w, "Clock: %s\n", cvOffset(st.ClockOffset, st.OffsetKnown))
	return nil
}

// cvOffset describes the server's clock minus this device's.
func cvOffset(off time.Duration, known bool) string {
	switch {
	case !known:
		return "offset unknown until the first sync"
	case off > -time.Second && off < time.Second:
		return fmt.Sprintf("within a second of the server's (offset %v)", off)
	case off > 0:
		return fmt.Sprintf("this device is %v behind the server (offset +%v)", off, off)
	}
	return fmt.Sprintf("this device is %v ahead of the server (offset %v)", -off, off)
}
