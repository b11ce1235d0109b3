package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/i18n"
)

// Defaults of the committee's commands.
const (
	defaultServer      = "127.0.0.1:7070"
	defaultCallTimeout = 30 * time.Second
)

// cmFlags are the flags every committee command shares.
type cmFlags struct {
	name     string // "election create", for messages
	dir      string
	server   string
	election string
	timeout  time.Duration
	pin      string // the server's TLS pin as the operator gave it, if at all
	lang     string // --lang, for the commands that have it
}

// newCmFlags makes the flag set of a committee command. withServer and
// withElection add --server and --election.
func newCmFlags(env *Env, name, usage, summary string, withServer, withElection bool) (*flag.FlagSet, *cmFlags) {
	fs := NewFlags(env, name, usage, summary)
	f := &cmFlags{name: name}
	dir := env.Getenv("DOORSTEP_COMMITTEE_DIR")
	if dir == "" {
		dir = filepath.Join(env.ConfigDir, "committee")
	}
	fs.StringVar(&f.dir, "committee-dir", dir, "the committee's folder: its key and its record chains (env DOORSTEP_COMMITTEE_DIR)")
	if withServer {
		server := env.Getenv("DOORSTEP_SERVER")
		if server == "" {
			server = defaultServer
		}
		fs.StringVar(&f.server, "server", server, "tallyd address HOST:PORT (env DOORSTEP_SERVER)")
		fs.StringVar(&f.pin, "server-pin", env.Getenv("DOORSTEP_SERVER_PIN"), "the pin of tallyd's TLS certificate, as tallyd printed it (env DOORSTEP_SERVER_PIN); without it the pin is learned on first contact and kept")
		fs.DurationVar(&f.timeout, "timeout", defaultCallTimeout, "how long to wait for each call to the server")
	}
	if withElection {
		fs.StringVar(&f.election, "election", "", "the election id (required)")
	}
	return fs, f
}

// withLang adds --lang to a committee command whose words people read.
func (f *cmFlags) withLang(fs *flag.FlagSet, what string) {
	fs.StringVar(&f.lang, "lang", "", "the language of "+what+": zh (中文) or en (default: from LC_ALL, LC_MESSAGES or LANG)")
}

// language is --lang, else the locale's, else fallback.
func (f *cmFlags) language(env *Env, fallback i18n.Lang) (i18n.Lang, error) {
	if f.lang != "" {
		l, err := i18n.Parse(f.lang)
		if err != nil {
			return "", cmUsage(env, f.name, "--lang: %v", err)
		}
		return l, nil
	}
	return i18n.FromEnv(env.Getenv, fallback), nil
}

// termLang is the language of the words a committee command prints when
// neither --lang nor the locale names one (the notice's page is Chinese
// unless --lang says otherwise).
const termLang = i18n.EN

// termLanguage is the language of what a signing command says at the
// terminal: --lang, else the locale, else English. A bad --lang was
// refused when the flags were parsed.
func (f *cmFlags) termLanguage(env *Env) i18n.Lang {
	l, err := f.language(env, termLang)
	if err != nil {
		return termLang
	}
	return l
}

// openRead parses a read command's flags, picks the language of its words
// and opens the signed reader: how every list and view starts.
func (f *cmFlags) openRead(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) (i18n.Lang, *cmReader, error) {
	if err := f.parse(env, fs, args); err != nil {
		return "", nil, err
	}
	l, err := f.language(env, termLang)
	if err != nil {
		return "", nil, err
	}
	r, err := openCmReader(ctx, env, f, l)
	if err != nil {
		return "", nil, err
	}
	return l, r, nil
}

// parse parses args and checks what every committee command needs.
func (f *cmFlags) parse(env *Env, fs *flag.FlagSet, args []string) error {
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return cmUsage(env, f.name, "unexpected argument %q (flags go before nothing else)", fs.Arg(0))
	}
	if fs.Lookup("election") != nil && f.election == "" {
		return cmUsage(env, f.name, "--election is required")
	}
	if fs.Lookup("timeout") != nil && f.timeout <= 0 {
		return cmUsage(env, f.name, "--timeout must be positive")
	}
	return nil
}

// cmUsage prints a usage problem and returns ErrUsage.
func cmUsage(env *Env, name, format string, args ...any) error {
	fmt.Fprintf(env.Stderr, "doorstep %s: %s\nRun 'doorstep %s --help' for its flags.\n", name, fmt.Sprintf(format, args...), name)
	return ErrUsage
}

func committeeCommands() []*Command {
	return []*Command{
		{Name: "init", Summary: "make the committee's signing key on this machine", Usage: "[flags]", Run: runCommitteeInit},
		{Name: "show", Summary: "print the committee's public key and its elections", Usage: "[flags]", Run: runCommitteeShow},
		{Name: "dashboard", Summary: "make a link that signs a browser in to the live dashboard", Usage: "--election ID [--web URL] [--open] [flags]", Run: runCommitteeDashboard},
	}
}

func runCommitteeInit(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "committee init", "[flags]", "Make the election committee's ed25519 signing key. The key never leaves this\nmachine; every committee record (definition, roster, enrollments, open, close,\nadjudications) is signed with it. Back up the folder and keep it private.", false, false)
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	pub, err := committee.Init(f.dir, rand.Reader)
	if errors.Is(err, committee.ErrKeyExists) {
		return fmt.Errorf("%s: %w", f.dir, err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Made the committee key in %s.\n", filepath.Join(f.dir, committee.KeyFile))
	fmt.Fprintf(env.Stdout, "Committee public key: %s\n\n", base64.StdEncoding.EncodeToString(pub))
	fmt.Fprintf(env.Stdout, "Keep this folder private and backed up: whoever holds the key signs for the committee,\n"+
		"and without it the committee can no longer act on its elections.\n"+
		"'doorstep election create' puts the public key into the election definition for you.\n")
	return nil
}

func runCommitteeShow(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "committee show", "[flags]", "Print the committee's public key and the elections this machine keeps chains for.", false, false)
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	key, err := committee.LoadKey(f.dir)
	if err != nil {
		return err
	}
	states, err := committee.List(f.dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Committee folder: %s\n", f.dir)
	fmt.Fprintf(env.Stdout, "Public key:       %s\n", base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey)))
	if len(states) == 0 {
		fmt.Fprintf(env.Stdout, "\nNo elections yet: 'doorstep election create --file FILE' makes one.\n")
		return nil
	}
	fmt.Fprintf(env.Stdout, "\n")
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ELECTION\tRECORDS\tUNSENT\tROSTER\tSERVER\tFINGERPRINT\n")
	for _, s := range states {
		roster := "-"
		if s.Roster != nil {
			roster = fmt.Sprintf("%d units, sha256 %s…", s.Roster.Units, hex.EncodeToString(s.Roster.SHA256[:6]))
		}
		server, fp := "-", "-"
		if s.Server != nil {
			server, fp = s.Server.Address, s.Server.Fingerprint
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%s\n", s.ElectionID, s.Seq, len(s.Pending), roster, server, fp)
	}
	tw.Flush()
	return nil
}

// cmSession is one committee command's connection to its election: the
// chain (locked) and a client whose calls are signed with the committee
// key.
type cmSession struct {
	*committee.Session
	env *Env
	f   *cmFlags
}

// openCmSession opens the chain of electionID and a client for f.server.
func openCmSession(ctx context.Context, env *Env, f *cmFlags, electionID string) (*cmSession, error) {
	s, err := committee.OpenSession(ctx, f.dir, electionID, f.server, f.pin, f.timeout, env.Now, env.Logger)
	if err != nil {
		return nil, err
	}
	if s.FirstContact {
		firstContact(env, f.server, s.Pin())
	}
	return &cmSession{Session: s, env: env, f: f}, nil
}

// firstContact tells the person this machine now trusts the server by the
// pin it just saw, and how to check it.
func firstContact(env *Env, server, pin string) {
	fmt.Fprintf(env.Stderr, "First contact with the tally server at %s: its TLS certificate pin is\n  %s\nCheck that it is the pin tallyd printed when it started; this machine trusts only that certificate from now on.\n", server, pin)
}

// rpcError explains a failed call in terms of what to do next; what is
// the catalogue key of what the call was for.
func (s *cmSession) rpcError(what string, err error) error {
	return cmRPCError(s.f.termLanguage(s.env), what, s.f.server, s.f.timeout, s.ElectionID(), true, err)
}

// explain is rpcError for an error that may come from the server (a gRPC
// status) or from this machine; the latter pass as they are.
func (s *cmSession) explain(what string, err error) error {
	if _, fromServer := status.FromError(err); err == nil || !fromServer {
		return err
	}
	return s.rpcError(what, err)
}

// cmRPCError explains a failed call in l; what is the catalogue key of
// what the call was for. signs says the command signs records, so what it
// signed is kept for the next run; a read signs nothing and must not
// promise that. The server's own words, in parentheses, stay as they came.
func cmRPCError(l i18n.Lang, what, server string, timeout time.Duration, electionID string, signs bool, err error) error {
	doing := l.T(what)
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", doing, err)
	}
	var msg string
	switch code := st.Code(); {
	case client.Unreachable(err) && code == codes.DeadlineExceeded:
		msg = l.T("cli.rpc.timeout", doing, server, timeout)
	case client.Unreachable(err):
		msg = l.T("cli.rpc.unreachable", doing, server, st.Message())
		if signs {
			msg += l.T("cli.rpc.kept")
		}
	case code == codes.Unauthenticated || code == codes.PermissionDenied:
		msg = l.T("cli.rpc.key_refused", doing, server, electionID, st.Message())
	case code == codes.NotFound && strings.HasPrefix(st.Message(), "there is no election"):
		msg = l.T("cli.rpc.no_election", doing, electionID, server)
	case code == codes.NotFound:
		msg = l.T("cli.rpc.not_found", doing, st.Message())
	default:
		msg = l.T("cli.rpc.refused", doing, st.Message())
	}
	return fmt.Errorf("%s: %w", msg, err)
}

// refused reports whether the server refused a call outright, so it acted
// on nothing: a gRPC status that client.Classify calls Permanent. After any
// other failure (on the way, the caller stopping, this machine's own after
// the answer came) the server may have acted, and sending the same bytes
// again is the fix.
func refused(ctx context.Context, err error) bool {
	_, fromServer := status.FromError(err)
	return err != nil && fromServer && client.Classify(ctx, err) == client.Permanent
}

// catchUp compares the chain with the server's (GetCommitteeState) and
// sends the records signed earlier that the server has not answered, in
// order. It returns their answers by record id.
func (s *cmSession) catchUp(ctx context.Context) (map[string]*doorstepv1.RecordResult, error) {
	id := s.ElectionID()
	resp, err := s.CommitteeState(ctx)
	if err != nil {
		// tallyd knows the committee key only from the election's
		// definition, so for an unknown election it answers NotFound or
		// "not enrolled"; any other refusal is explained as usual.
		if code := status.Code(err); code == codes.NotFound || code == codes.Unauthenticated && strings.Contains(status.Convert(err).Message(), "not enrolled") {
			return nil, fmt.Errorf("election %s is not on the server at %s (%s): create it with 'doorstep election create', or check --election and --server: %w", id, s.f.server, status.Convert(err).Message(), err)
		}
		return nil, s.rpcError("cli.call.committee_records", err)
	}
	if err := s.Signer().Reconcile(resp.GetHighSeq(), resp.GetHighHash()); err != nil {
		return nil, err
	}
	pending := s.Signer().Pending()
	if len(pending) == 0 {
		return map[string]*doorstepv1.RecordResult{}, nil
	}
	if pending[0].Kind == committee.KindDefine {
		return nil, fmt.Errorf("election %s was never created on the server: run 'doorstep election create' again", id)
	}
	fmt.Fprintf(s.env.Stderr, "Sending %d committee record(s) signed earlier that the server has not answered yet.\n", len(pending))
	answers, err := s.Send(ctx, pending)
	return answers, s.explain("cli.call.send_records", err)
}

// submit catches up with the server, signs actions after everything
// signed before, sends them, and fails unless the server accepted each.
func (s *cmSession) submit(ctx context.Context, actions ...*doorstepv1.CommitteeAction) error {
	earlier, err := s.catchUp(ctx)
	if err != nil {
		return err
	}
	if err := cmRejections(earlier); err != nil {
		fmt.Fprintf(s.env.Stderr, "warning: %v\n", err)
	}
	results, err := s.signAndSend(ctx, func() ([]*doorstepv1.SignedRecord, error) { return s.Signer().Sign(actions...) })
	if err != nil {
		return err
	}
	return committee.CheckAccepted(results)
}

// signAndSend signs with sign (which persists), sends every unanswered
// record, and returns the answers to the records sign made, in order.
func (s *cmSession) signAndSend(ctx context.Context, sign func() ([]*doorstepv1.SignedRecord, error)) ([]*doorstepv1.RecordResult, error) {
	results, err := s.SignAndSend(ctx, sign)
	return results, s.explain("cli.call.send_records", err)
}

// cmRejections turns rejected answers into one error naming each.
func cmRejections(answers map[string]*doorstepv1.RecordResult) error {
	var errs []error
	for _, r := range answers {
		if r.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			errs = append(errs, committee.Rejected(r))
		}
	}
	return errors.Join(errs...)
}

func cmEnumName(s, prefix string) string {
	if len(s) > len(prefix) && s[:len(prefix)] == prefix {
		s = s[len(prefix):]
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c == '_':
			b[i] = ' '
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// cmPrintCheckpoint prints the log state an answer came with.
func cmPrintCheckpoint(env *Env, cp *doorstepv1.Checkpoint) {
	if cp == nil {
		return
	}
	fmt.Fprintf(env.Stdout, "Ballot log: %d entries, root %s\n", cp.GetSize(), base64.StdEncoding.EncodeToString(cp.GetRootHash()))
}
