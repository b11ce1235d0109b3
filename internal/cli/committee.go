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
	"regexp"
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
	// --help in the command's language: parse has read --lang by then.
	fs.Usage = func() { printHelp(env.Stdout, fs, f.say(env), name, usage, summary) }
	dir := env.Getenv("DOORSTEP_COMMITTEE_DIR")
	if dir == "" {
		dir = filepath.Join(env.ConfigDir, "committee")
	}
	fs.StringVar(&f.dir, "committee-dir", dir, "help.flag.committee_dir")
	if withServer {
		server := env.Getenv("DOORSTEP_SERVER")
		if server == "" {
			server = defaultServer
		}
		fs.StringVar(&f.server, "server", server, "help.flag.server")
		fs.StringVar(&f.pin, "server-pin", env.Getenv("DOORSTEP_SERVER_PIN"), "help.flag.server_pin")
		fs.DurationVar(&f.timeout, "timeout", defaultCallTimeout, "help.flag.timeout")
	}
	if withElection {
		fs.StringVar(&f.election, "election", "", "help.flag.election")
	}
	fs.StringVar(&f.lang, "lang", "", "help.flag.lang")
	return fs, f
}

// withLang gives --lang the help text key, where the flag chooses the
// language of more than the command's messages.
func (f *cmFlags) withLang(fs *flag.FlagSet, key string) {
	fs.Lookup("lang").Usage = key
}

// termLang is the language of the words a committee command prints when
// neither --lang nor the locale names one (the notice's page is Chinese
// unless --lang says otherwise).
const termLang = i18n.EN

// say is the language of what a committee command says at the terminal:
// --lang, else the locale, else English. A bad --lang is refused when the
// flags are parsed, and said in the locale's language.
func (f *cmFlags) say(env *Env) i18n.Lang {
	if l, err := i18n.Parse(f.lang); err == nil {
		return l
	}
	return i18n.FromEnv(env.Getenv, termLang)
}

// openRead parses a read command's flags, picks the language of its words
// and opens the signed reader: how every list and view starts.
func (f *cmFlags) openRead(ctx context.Context, env *Env, fs *flag.FlagSet, args []string) (i18n.Lang, *cmReader, error) {
	if err := f.parse(env, fs, args); err != nil {
		return "", nil, err
	}
	l := f.say(env)
	r, err := openCmReader(ctx, env, f, l)
	if err != nil {
		return "", nil, err
	}
	return l, r, nil
}

// parse parses args and checks what every committee command needs. Its
// mistakes are said in the command's language, which --lang names even
// when it comes after the mistake.
func (f *cmFlags) parse(env *Env, fs *flag.FlagSet, args []string) error {
	f.lang = argValue(fs, args, "lang")
	err := parseQuiet(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case err != nil:
		return f.usageText(env, flagMistake(f.say(env), err))
	}
	if fs.NArg() > 0 {
		return f.usage(env, "cli.usage.argument", fs.Arg(0))
	}
	if fs.Lookup("election") != nil && f.election == "" {
		return f.usage(env, "cli.usage.need_election")
	}
	if fs.Lookup("timeout") != nil && f.timeout <= 0 {
		return f.usage(env, "cli.usage.timeout")
	}
	if f.lang != "" {
		if _, err := i18n.Parse(f.lang); err != nil {
			return f.usage(env, "cli.usage.lang", f.lang)
		}
	}
	return nil
}

// flagMistakes read the flag package's own (English) words for a parse
// error, so that it can be said in l.
var flagMistakes = []struct {
	re  *regexp.Regexp
	key string
}{
	{regexp.MustCompile(`^flag provided but not defined: -(.*)$`), "cli.usage.flag_unknown"},
	{regexp.MustCompile(`^flag needs an argument: -(.*)$`), "cli.usage.flag_needs_value"},
	{regexp.MustCompile(`^invalid (?:boolean )?value (".*") for (?:flag )?-([^:]*): (.*)$`), "cli.usage.flag_bad_value"},
}

func flagMistake(l i18n.Lang, err error) string {
	msg := err.Error()
	for _, m := range flagMistakes {
		if sub := m.re.FindStringSubmatch(msg); sub != nil {
			args := make([]any, len(sub)-1)
			for i, a := range sub[1:] {
				args[i] = a
			}
			return l.T(m.key, args...)
		}
	}
	return msg
}

// usage prints a usage problem, key's text in the command's language, and
// returns ErrUsage.
func (f *cmFlags) usage(env *Env, key string, args ...any) error {
	return f.usageText(env, f.say(env).T(key, args...))
}

// usageText is usage for a text already in words: a checker's error, say.
func (f *cmFlags) usageText(env *Env, msg string) error {
	return cmUsage(env, f.say(env), f.name, msg)
}

// cmUsage prints msg, a usage problem with the command name, and
// returns ErrUsage.
func cmUsage(env *Env, l i18n.Lang, name, msg string) error {
	fmt.Fprintf(env.Stderr, "doorstep %s: %s\n%s\n", name, msg, l.T("cli.usage.help", name))
	return ErrUsage
}

func committeeCommands() []*Command {
	return []*Command{
		{Name: "init", Summary: "help.committee_init.summary", Usage: "[flags]", Run: runCommitteeInit},
		{Name: "show", Summary: "help.committee_show.summary", Usage: "[flags]", Run: runCommitteeShow},
		{Name: "dashboard", Summary: "help.committee_dashboard.summary", Usage: "--election ID [--web URL] [--open] [flags]", Run: runCommitteeDashboard},
	}
}

func runCommitteeInit(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "committee init", "[flags]", "help.committee_init", false, false)
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	pub, err := committee.Init(f.dir, rand.Reader)
	if err != nil {
		return f.localErr(env, err)
	}
	l := f.say(env)
	fmt.Fprintln(env.Stdout, l.T("cli.init.made", filepath.Join(f.dir, committee.KeyFile)))
	fmt.Fprintln(env.Stdout, l.T("cli.init.public_key", base64.StdEncoding.EncodeToString(pub)))
	fmt.Fprintln(env.Stdout)
	fmt.Fprintln(env.Stdout, l.T("cli.init.keep"))
	return nil
}

func runCommitteeShow(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "committee show", "[flags]", "help.committee_show", false, false)
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	key, err := f.loadKey(env)
	if err != nil {
		return err
	}
	states, err := committee.List(f.dir)
	if err != nil {
		return err
	}
	l := f.say(env)
	fmt.Fprintln(env.Stdout, l.T("cli.show.folder", f.dir))
	fmt.Fprintln(env.Stdout, l.T("cli.show.public_key", base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))))
	fmt.Fprintln(env.Stdout)
	if len(states) == 0 {
		fmt.Fprintln(env.Stdout, l.T("cli.show.none"))
		return nil
	}
	tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, l.T("cli.show.columns"))
	for _, s := range states {
		roster := "-"
		if s.Roster != nil {
			roster = l.T("cli.show.roster", s.Roster.Units, hex.EncodeToString(s.Roster.SHA256[:6]))
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
		return nil, f.localErr(env, err)
	}
	if s.FirstContact {
		firstContact(env, f.say(env), f.server, s.Pin())
	}
	return &cmSession{Session: s, env: env, f: f}, nil
}

// firstContact tells the person this machine now trusts the server by the
// pin it just saw, and how to check it.
func firstContact(env *Env, l i18n.Lang, server, pin string) {
	fmt.Fprintln(env.Stderr, l.T("cli.first_contact", server, pin))
}

// rpcError explains a failed call in terms of what to do next; what is
// the catalogue key of what the call was for.
func (s *cmSession) rpcError(what string, err error) error {
	return cmRPCError(s.f.say(s.env), what, s.f.server, s.f.timeout, s.ElectionID(), true, err)
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
	return localized(msg, err)
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
			return nil, localized(s.f.say(s.env).T("cli.err.not_created", id, s.f.server, status.Convert(err).Message()), err)
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
		return nil, errors.New(s.f.say(s.env).T("cli.err.never_created", id))
	}
	fmt.Fprintln(s.env.Stderr, s.f.say(s.env).T("cli.sending_earlier", len(pending)))
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
	if err := s.rejections(earlier); err != nil {
		s.warn(err)
	}
	results, err := s.signAndSend(ctx, func() ([]*doorstepv1.SignedRecord, error) { return s.Signer().Sign(actions...) })
	if err != nil {
		return err
	}
	return s.accepted(results)
}

// signAndSend signs with sign (which persists), sends every unanswered
// record, and returns the answers to the records sign made, in order.
func (s *cmSession) signAndSend(ctx context.Context, sign func() ([]*doorstepv1.SignedRecord, error)) ([]*doorstepv1.RecordResult, error) {
	results, err := s.SignAndSend(ctx, sign)
	return results, s.explain("cli.call.send_records", err)
}

// rejections turns rejected answers into one error naming each.
func (s *cmSession) rejections(answers map[string]*doorstepv1.RecordResult) error {
	var errs []error
	for _, r := range answers {
		if r.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			errs = append(errs, s.rejected(r))
		}
	}
	return errors.Join(errs...)
}

// accepted is committee.CheckAccepted in the command's language: an
// error naming every answer that is not an acceptance, or nil.
func (s *cmSession) accepted(results []*doorstepv1.RecordResult) error {
	var errs []error
	for _, r := range results {
		if r.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
			errs = append(errs, s.rejected(r))
		}
	}
	return errors.Join(errs...)
}

// rejected says that the server rejected r; the server's reason and
// message stay as they came.
func (s *cmSession) rejected(r *doorstepv1.RecordResult) error {
	err := committee.Rejected(r)
	return localized(s.f.say(s.env).T("cli.err.rejected", r.GetRecordId(), cmEnumName(r.GetReason().String(), "REASON_CODE_"), r.GetMessage()), err)
}

// warn says err as a warning: the command goes on.
func (s *cmSession) warn(err error) {
	fmt.Fprintln(s.env.Stderr, s.f.say(s.env).T("cli.warning", err))
}

// localizedError is an error said in the command's language that still
// unwraps to the error it explains.
type localizedError struct {
	msg string
	err error
}

func localized(msg string, err error) error { return &localizedError{msg: msg, err: err} }

func (e *localizedError) Error() string { return e.msg }
func (e *localizedError) Unwrap() error { return e.err }

// localErr says in the command's language the mistakes of this machine a
// committee member meets in the ordinary course: no key, a key already
// made, the chain busy, the server unreachable on first contact or with
// another certificate. Others pass as they are.
func (f *cmFlags) localErr(env *Env, err error) error {
	l := f.say(env)
	var unreachable *committee.UnreachableError
	var changed *committee.PinChangedError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, committee.ErrNoKey):
		return localized(l.T("cli.err.no_key", f.dir), err)
	case errors.Is(err, committee.ErrKeyExists):
		return localized(l.T("cli.err.key_exists", f.dir), err)
	case errors.Is(err, committee.ErrBusy):
		return localized(l.T("cli.err.busy"), err)
	case errors.As(err, &changed):
		return localized(l.T("cli.err.pin_changed", changed.Kept, changed.Given, changed.Addr, changed.Path), err)
	case errors.As(err, &unreachable):
		return localized(l.T("cli.err.first_contact_unreachable", unreachable.Addr, unreachable.Err), err)
	}
	return err
}

// loadKey loads the committee key from f's folder.
func (f *cmFlags) loadKey(env *Env) (ed25519.PrivateKey, error) {
	key, err := committee.LoadKey(f.dir)
	return key, f.localErr(env, err)
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
func cmPrintCheckpoint(env *Env, l i18n.Lang, cp *doorstepv1.Checkpoint) {
	if cp == nil {
		return
	}
	fmt.Fprintln(env.Stdout, l.T("cli.checkpoint", cp.GetSize(), base64.StdEncoding.EncodeToString(cp.GetRootHash())))
}
