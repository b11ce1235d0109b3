package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/electionfile"
)

func electionCommands() []*Command {
	return []*Command{
		{Name: "create", Summary: "define an election from a file and create it on the server", Usage: "--file FILE [flags]", Run: runElectionCreate},
		{Name: "open", Summary: "freeze the imported roster and start counting ballots", Usage: "--election ID [flags]", Run: runElectionOpen},
		{Name: "close", Summary: "stop ballots made from now on", Usage: "--election ID [flags]", Run: runElectionClose},
		{Name: "certify", Summary: "certify the result after the objection period: the count is final", Usage: "--election ID [--yes] [flags]", Run: runElectionCertify},
	}
}

func rosterCommands() []*Command {
	return []*Command{
		{Name: "import", Summary: "send the roster of units from a CSV file", Usage: "--election ID --file roster.csv [flags]", Run: runRosterImport},
	}
}

// cmReadFile reads a file the committee names, at most limit bytes.
func cmReadFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}

func runElectionCreate(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "election create", "--file FILE [flags]",
		"Read an election definition (JSON or YAML: items, thresholds, candidates, contest\npolicy, sync deadline), sign it with the committee key as the election's first\ncommittee record, and create the election on the server.", true, false)
	var file, operator string
	fs.StringVar(&file, "file", "", "the election definition file, JSON or YAML (required)")
	fs.StringVar(&operator, "operator-token", env.Getenv("DOORSTEP_OPERATOR_TOKEN"), "the token that lets its holder create elections on this tallyd: it is in the server's data folder, operator.token (env DOORSTEP_OPERATOR_TOKEN)")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if file == "" {
		return cmUsage(env, f.name, "--file is required")
	}

	data, err := cmReadFile(file, electionfile.MaxDefinitionBytes)
	if err != nil {
		return err
	}
	key, err := committee.LoadKey(f.dir)
	if err != nil {
		return err
	}
	def, err := electionfile.ParseDefinition(data, key.Public().(ed25519.PublicKey))
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	f.election = def.GetElectionId()
	s, err := openCmSession(ctx, env, f, def.GetElectionId())
	if err != nil {
		return err
	}
	if operator == "" {
		s.Close()
		return cmUsage(env, f.name, "--operator-token is required: only whoever runs tallyd may create elections on it; ask them for the token in the data folder's operator.token, or set DOORSTEP_OPERATOR_TOKEN")
	}
	defer s.Close()
	st := s.Signer().State()
	if st.Acked > 0 {
		return fmt.Errorf("election %s was already created from this machine (%d committee records so far); to change the ballot, create a new election with another id", def.GetElectionId(), st.Seq)
	}
	info, err := s.serverInfo(ctx)
	if err != nil {
		return err
	}
	if err := s.rememberServer(info); err != nil {
		return err
	}
	// An earlier attempt whose answer never came: the same bytes go first,
	// so a definition the server did store is never signed twice.
	if len(st.Pending) > 0 {
		resp, err := s.Create(ctx, st.Pending[0].Signed(), operator)
		switch {
		case err == nil:
			earlier, derr := st.DefinitionProto()
			if derr == nil && !proto.Equal(earlier, def) {
				return fmt.Errorf("election %s was already created from this machine with a different definition (an earlier run whose answer was lost); to change the ballot, create a new election with another id", def.GetElectionId())
			}
			return cmPrintCreated(env, s, def, info, resp)
		case !refused(ctx, err):
			return s.rpcError("cli.call.create", err)
		}
		if err := s.Signer().DiscardUncreated(); err != nil {
			return err
		}
	}
	recs, err := s.Signer().Sign(&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: def}})
	if err != nil {
		return err
	}
	resp, err := s.Create(ctx, recs[0], operator)
	if err != nil {
		if refused(ctx, err) {
			// Refused outright: nothing of this chain is on the server.
			if derr := s.Signer().DiscardUncreated(); derr != nil {
				return derr
			}
		}
		return s.rpcError("cli.call.create", err)
	}
	return cmPrintCreated(env, s, def, info, resp)
}

// serverInfo asks the server for its identity.
func (s *cmSession) serverInfo(ctx context.Context) (*doorstepv1.GetServerInfoResponse, error) {
	info, err := s.ServerInfo(ctx)
	if err != nil {
		return nil, s.rpcError("cli.call.server_info", err)
	}
	return info, nil
}

// rememberServer keeps the server's identity with the chain.
func (s *cmSession) rememberServer(info *doorstepv1.GetServerInfoResponse) error {
	return s.Signer().SetServer(committee.Server{Address: s.f.server, TLSPin: s.Pin(), Fingerprint: info.GetFingerprint(), PublicKey: info.GetServerPublicKey(), LogOrigin: info.GetLogOrigin()})
}

func cmPrintCreated(env *Env, s *cmSession, def *doorstepv1.ElectionDefinition, info *doorstepv1.GetServerInfoResponse, resp *doorstepv1.CreateElectionResponse) error {
	w := env.Stdout
	fmt.Fprintf(w, "Created election %s: %s\n", def.GetElectionId(), def.GetTitle())
	for i, it := range def.GetItems() {
		fmt.Fprintf(w, "  %d. %s — %s (%s)\n", i+1, it.GetItemId(), it.GetTitle(), cmItemRule(it))
	}
	fmt.Fprintf(w, "Contest policy: %s.  Sync deadline: %s.\n",
		cmEnumName(def.GetContestPolicy().String(), "CONTEST_POLICY_"), def.GetSyncDeadline().AsTime().In(env.Now().Location()).Format(time.RFC3339))
	fmt.Fprintf(w, "Server %s, key fingerprint %s\n", s.f.server, info.GetFingerprint())
	cmPrintCheckpoint(env, resp.GetCheckpoint())
	fmt.Fprintf(w, "\nNext: doorstep roster import --election %s --file roster.csv\n", def.GetElectionId())
	return nil
}

// cmItemRule says in a few words what an item decides and how.
func cmItemRule(it *doorstepv1.Item) string {
	switch k := it.GetKind().(type) {
	case *doorstepv1.Item_Motion:
		if k.Motion.GetThreshold() == doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL {
			return "special motion: at least 3/4 of participating area and owners"
		}
		return "ordinary motion: more than 1/2 of participating area and owners"
	case *doorstepv1.Item_Candidates:
		return fmt.Sprintf("elect up to %d of %d candidates", k.Candidates.GetSeats(), len(k.Candidates.GetCandidates()))
	}
	return "unknown kind"
}

func runRosterImport(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "roster import", "--election ID --file roster.csv [flags]",
		"Read the roster of units (CSV with columns unit_id,building,area_m2,owner_key,\ndeveloper_held), sign it as roster records of up to 5,000 units each, send them,\nand print the roster hash that 'election open' freezes.", true, true)
	var file string
	fs.StringVar(&file, "file", "", "the roster CSV file (required)")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if file == "" {
		return cmUsage(env, f.name, "--file is required")
	}
	in, err := os.Open(file)
	if err != nil {
		return err
	}
	units, err := electionfile.ParseRoster(in)
	in.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	roster, err := election.NewRoster(units)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	hash := roster.Hash()
	s, err := openCmSession(ctx, env, f, f.election)
	if err != nil {
		return err
	}
	defer s.Close()
	earlier, err := s.catchUp(ctx)
	if err != nil {
		return err
	}
	if prev := s.Signer().State().Roster; prev != nil {
		if string(prev.SHA256) != string(hash[:]) {
			return fmt.Errorf("a different roster (%d units, sha256 %s) was already imported for election %s; the server adds roster units and never replaces them, so a corrected roster needs a new election", prev.Units, hex.EncodeToString(prev.SHA256), f.election)
		}
		fmt.Fprintf(env.Stdout, "This roster was already imported for election %s.\n", f.election)
		cmPrintRoster(env, roster)
		return cmRejections(earlier)
	}
	if err := cmRejections(earlier); err != nil {
		fmt.Fprintf(env.Stderr, "warning: %v\n", err)
	}
	rec, chunks := committee.RosterActions(roster)
	results, err := s.signAndSend(ctx, func() ([]*doorstepv1.SignedRecord, error) { return s.Signer().SignRoster(rec, chunks...) })
	if err != nil {
		return err
	}
	rejected := 0
	for _, r := range results {
		if r.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
			rejected++
		}
	}
	if rejected == len(results) {
		// Nothing of it is on the server: a corrected file may be imported.
		if err := s.Signer().SetRoster(nil); err != nil {
			return err
		}
		return fmt.Errorf("the server refused the roster: %w", committee.CheckAccepted(results))
	}
	if rejected > 0 {
		return fmt.Errorf("the server took only %d of %d roster records, so its roster is incomplete and 'election open' will refuse it; create a new election for a corrected roster: %w", len(results)-rejected, len(results), committee.CheckAccepted(results))
	}
	fmt.Fprintf(env.Stdout, "Imported the roster for election %s in %d record(s).\n", f.election, len(results))
	cmPrintRoster(env, roster)
	cmPrintCheckpoint(env, s.Checkpoint())
	fmt.Fprintf(env.Stdout, "\nNext: check the counts above, then: doorstep election open --election %s\n", f.election)
	return nil
}

func cmPrintRoster(env *Env, r *election.Roster) {
	dev := 0
	for _, u := range r.Units() {
		if u.DeveloperHeld {
			dev++
		}
	}
	h := r.Hash()
	fmt.Fprintf(env.Stdout, "Roster sha256: %s\n", hex.EncodeToString(h[:]))
	fmt.Fprintf(env.Stdout, "Units: %d (%d developer-held)   Total area: %s m²   Owners (headcount): %d\n",
		len(r.Units()), dev, election.FormatArea(r.TotalArea()), r.Headcount())
}

func runElectionOpen(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "election open", "--election ID [flags]",
		"Freeze the roster imported from this machine (by its hash) and open the election:\nballots count from now on.", true, true)
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	s, err := openCmSession(ctx, env, f, f.election)
	if err != nil {
		return err
	}
	defer s.Close()
	r := s.Signer().State().Roster
	if r == nil {
		return fmt.Errorf("no roster was imported from this machine for election %s: run 'doorstep roster import --election %s --file roster.csv' first", f.election, f.election)
	}
	if err := s.submit(ctx, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: r.SHA256}}}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Election %s is open: ballots count from now on.\n", f.election)
	fmt.Fprintf(env.Stdout, "Roster frozen: %d units, %s m², %d owners, sha256 %s\n", r.Units, election.FormatArea(r.AreaCenti), r.Owners, hex.EncodeToString(r.SHA256))
	cmPrintCheckpoint(env, s.Checkpoint())
	fmt.Fprintf(env.Stdout, "\nNext: enroll each canvasser's device: doorstep device enroll --election %s --label NAME\n", f.election)
	return nil
}

func runElectionClose(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "election close", "--election ID [flags]",
		"Close the election: ballots made from now on are rejected. Ballots made before\nnow are still accepted until the definition's sync deadline, as devices come\nback from the field.", true, true)
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	s, err := openCmSession(ctx, env, f, f.election)
	if err != nil {
		return err
	}
	defer s.Close()
	now := env.Now()
	if err := s.submit(ctx, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Close{Close: &doorstepv1.CloseElection{ClosedAt: timestamppb.New(now)}}}); err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Election %s is closed as of %s.\n", f.election, now.Format(time.RFC3339))
	if def, _ := s.Signer().State().DefinitionProto(); def != nil && def.GetSyncDeadline() != nil {
		fmt.Fprintf(env.Stdout, "Ballots collected before now are accepted until the sync deadline, %s: ask canvassers to sync.\n",
			def.GetSyncDeadline().AsTime().In(now.Location()).Format(time.RFC3339))
	}
	cmPrintCheckpoint(env, s.Checkpoint())
	fmt.Fprintf(env.Stdout, "\nNext: doorstep tally show --election %s\n", f.election)
	return nil
}
