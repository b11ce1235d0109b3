package cli

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
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
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/notice"
)

func electionCommands() []*Command {
	return []*Command{
		{Name: "create", Summary: "help.election_create.summary", Usage: "--file FILE [flags]", Run: runElectionCreate},
		{Name: "open", Summary: "help.election_open.summary", Usage: "--election ID [flags]", Run: runElectionOpen},
		{Name: "close", Summary: "help.election_close.summary", Usage: "--election ID [flags]", Run: runElectionClose},
		{Name: "certify", Summary: "help.election_certify.summary", Usage: "--election ID [--yes] [flags]", Run: runElectionCertify},
	}
}

func rosterCommands() []*Command {
	return []*Command{
		{Name: "import", Summary: "help.roster_import.summary", Usage: "--election ID --file roster.csv [flags]", Run: runRosterImport},
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
		"help.election_create", true, false)
	var file, operator string
	fs.StringVar(&file, "file", "", "help.election_create.flag.file")
	fs.StringVar(&operator, "operator-token", env.Getenv("DOORSTEP_OPERATOR_TOKEN"), "help.election_create.flag.operator_token")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if file == "" {
		return f.usage(env, "cli.usage.need_file")
	}

	data, err := cmReadFile(file, electionfile.MaxDefinitionBytes)
	if err != nil {
		return err
	}
	key, err := f.loadKey(env)
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
		return f.usage(env, "cli.usage.need_operator")
	}
	defer s.Close()
	st := s.Signer().State()
	if st.Acked > 0 {
		return errors.New(f.say(env).T("cli.create.already", def.GetElectionId(), st.Seq))
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
				return errors.New(f.say(env).T("cli.create.differs", def.GetElectionId()))
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
	w, l := env.Stdout, s.f.say(env)
	fmt.Fprintln(w, l.T("cli.create.done", def.GetElectionId(), def.GetTitle()))
	for i, it := range def.GetItems() {
		fmt.Fprintln(w, l.T("cli.create.item", i+1, it.GetItemId(), it.GetTitle(), notice.Rule(l, it)))
	}
	fmt.Fprintln(w, l.T("cli.create.policy", cmContestPolicy(l, def.GetContestPolicy()), def.GetSyncDeadline().AsTime().In(env.Now().Location()).Format(time.RFC3339)))
	fmt.Fprintln(w, l.T("cli.create.server", s.f.server, info.GetFingerprint()))
	cmPrintCheckpoint(env, l, resp.GetCheckpoint())
	fmt.Fprintln(w)
	fmt.Fprintln(w, l.T("cli.create.next", def.GetElectionId()))
	return nil
}

// cmContestPolicy names p in l.
func cmContestPolicy(l i18n.Lang, p doorstepv1.ContestPolicy) string {
	switch p {
	case doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD:
		return l.T("cli.policy.hold")
	case doorstepv1.ContestPolicy_CONTEST_POLICY_FIRST:
		return l.T("cli.policy.first")
	case doorstepv1.ContestPolicy_CONTEST_POLICY_LAST:
		return l.T("cli.policy.last")
	}
	return cmEnumName(p.String(), "CONTEST_POLICY_")
}

func runRosterImport(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "roster import", "--election ID --file roster.csv [flags]",
		"help.roster_import", true, true)
	var file string
	fs.StringVar(&file, "file", "", "help.roster_import.flag.file")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if file == "" {
		return f.usage(env, "cli.usage.need_file")
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
	l := f.say(env)
	if prev := s.Signer().State().Roster; prev != nil {
		if string(prev.SHA256) != string(hash[:]) {
			return errors.New(l.T("cli.roster.different", prev.Units, hex.EncodeToString(prev.SHA256), f.election))
		}
		fmt.Fprintln(env.Stdout, l.T("cli.roster.already", f.election))
		cmPrintRoster(env, l, roster)
		return s.rejections(earlier)
	}
	if err := s.rejections(earlier); err != nil {
		s.warn(err)
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
		err := s.accepted(results)
		return localized(l.T("cli.roster.refused", err), err)
	}
	if rejected > 0 {
		err := s.accepted(results)
		return localized(l.T("cli.roster.partial", len(results)-rejected, len(results), err), err)
	}
	fmt.Fprintln(env.Stdout, l.T("cli.roster.imported", f.election, len(results)))
	cmPrintRoster(env, l, roster)
	cmPrintCheckpoint(env, l, s.Checkpoint())
	fmt.Fprintln(env.Stdout)
	fmt.Fprintln(env.Stdout, l.T("cli.roster.next", f.election))
	return nil
}

func cmPrintRoster(env *Env, l i18n.Lang, r *election.Roster) {
	dev := 0
	for _, u := range r.Units() {
		if u.DeveloperHeld {
			dev++
		}
	}
	h := r.Hash()
	fmt.Fprintln(env.Stdout, l.T("cli.roster.hash", hex.EncodeToString(h[:])))
	fmt.Fprintln(env.Stdout, l.T("cli.roster.counts", len(r.Units()), dev, election.FormatArea(r.TotalArea()), r.Headcount()))
}

func runElectionOpen(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "election open", "--election ID [flags]",
		"help.election_open", true, true)
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	s, err := openCmSession(ctx, env, f, f.election)
	if err != nil {
		return err
	}
	defer s.Close()
	l := f.say(env)
	r := s.Signer().State().Roster
	if r == nil {
		return errors.New(l.T("cli.open.no_roster", f.election, f.election))
	}
	if err := s.submit(ctx, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: r.SHA256}}}); err != nil {
		return err
	}
	fmt.Fprintln(env.Stdout, l.T("cli.open.done", f.election))
	fmt.Fprintln(env.Stdout, l.T("cli.open.frozen", r.Units, election.FormatArea(r.AreaCenti), r.Owners, hex.EncodeToString(r.SHA256)))
	cmPrintCheckpoint(env, l, s.Checkpoint())
	fmt.Fprintln(env.Stdout)
	fmt.Fprintln(env.Stdout, l.T("cli.open.next", f.election))
	return nil
}

func runElectionClose(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "election close", "--election ID [flags]",
		"help.election_close", true, true)
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
	l := f.say(env)
	fmt.Fprintln(env.Stdout, l.T("cli.close.done", f.election, now.Format(time.RFC3339)))
	if def, _ := s.Signer().State().DefinitionProto(); def != nil && def.GetSyncDeadline() != nil {
		fmt.Fprintln(env.Stdout, l.T("cli.close.sync", def.GetSyncDeadline().AsTime().In(now.Location()).Format(time.RFC3339)))
	}
	cmPrintCheckpoint(env, l, s.Checkpoint())
	fmt.Fprintln(env.Stdout)
	fmt.Fprintln(env.Stdout, l.T("cli.close.next", f.election))
	return nil
}
