package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/atomicfile"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/notice"
)

func runElectionCertify(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "election certify", "--election ID [--yes] [--lang zh|en] [flags]",
		"help.election_certify", true, true)
	yes := fs.Bool("yes", false, "help.election_certify.flag.yes")
	f.withLang(fs, "help.flag.lang_messages")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	l := f.say(env)
	s, err := openCmSession(ctx, env, f, f.election)
	if err != nil {
		return err
	}
	defer s.Close()
	t, st, err := s.TallyStatus(ctx)
	if err != nil {
		return s.rpcError("cli.call.get_tally", err)
	}
	switch st.GetState() {
	case doorstepv1.ElectionState_ELECTION_STATE_CERTIFIED:
		return errors.New(l.T("cli.certify.already", f.election, cmTime(st.GetCertifiedAt(), env.Now())))
	case doorstepv1.ElectionState_ELECTION_STATE_CLOSED:
	default:
		return errors.New(l.T("cli.certify.not_closed", f.election, f.election))
	}
	hash := sha256.Sum256(t.GetCanonicalJson())
	size := t.GetCheckpoint().GetSize()
	w := env.Stdout
	fmt.Fprintln(w, l.T("cli.certify.shows", f.election))
	writeStatus(w, l, st, env.Now())
	fmt.Fprintln(w, l.T("cli.certify.hash", hex.EncodeToString(hash[:])))
	fmt.Fprintln(w, l.T("cli.certify.size", size))
	fmt.Fprintln(w, l.T("cli.certify.figures", t.GetUnitsCounted(), t.GetUnitsContested(), f.election))
	if !*yes {
		fmt.Fprint(w, "\n"+l.T("cli.certify.ask"))
		line, _ := bufio.NewReader(env.Stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "yes" && a != "y" && a != "是" {
			fmt.Fprintln(w)
			return errors.New(l.T("cli.certify.not_confirmed"))
		}
	}
	act := &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Certify{Certify: &doorstepv1.CertifyResult{LogSize: size, TallySha256: hash[:]}}}
	if err := s.submit(ctx, act); err != nil {
		return err
	}
	fmt.Fprintln(w, "\n"+l.T("cli.certify.done", f.election, hex.EncodeToString(hash[:])))
	cmPrintCheckpoint(env, l, s.Checkpoint())
	fmt.Fprintln(w, "\n"+l.T("cli.certify.next", f.election))
	return nil
}

func runTallyNotice(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "tally notice", "--election ID --out FILE.html [--lang zh|en] [--final] [flags]",
		"help.tally_notice", true, true)
	out := fs.String("out", "", "help.tally_notice.flag.out")
	final := fs.Bool("final", false, "help.tally_notice.flag.final")
	f.withLang(fs, "help.flag.lang_notice")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if *out == "" {
		return f.usage(env, "cli.usage.need_out")
	}
	// The notice is posted for the owners: Chinese unless --lang says
	// otherwise, whatever this machine's locale; what the command says
	// to the person at the terminal follows --lang or the locale.
	page := i18n.ZH
	l := f.say(env)
	if f.lang != "" {
		page = l
	}
	r, err := openCmReader(ctx, env, f, l)
	if err != nil {
		return err
	}
	defer r.Close()
	t, st, err := r.TallyStatus(ctx)
	if err != nil {
		return r.rpcError("cli.call.get_tally", err)
	}
	in := notice.Input{Lang: page, Tally: t, Status: st, Final: *final, Location: env.Now().Location(), Generated: env.Now()}
	// Refuse before reading the log: a final notice needs the certification.
	if _, err := notice.Check(in.Status, in.Final); err != nil {
		return noticeRefusal(l, f.election, err)
	}
	h := sha256.Sum256(t.GetCanonicalJson())
	in.TallySHA256 = h[:]
	if in.Held, in.SplitOwners, err = r.Contested(ctx); err != nil {
		return r.rpcError("cli.call.list_contested", err)
	}
	var lr notice.LogReader
	if err := r.LogEntries(ctx, 0, t.GetCheckpoint().GetSize(), func(_ uint64, e []byte) error { return lr.Add(e) }); err != nil {
		return r.rpcError("cli.call.read_decisions", err)
	}
	in.Definition, in.Settled = lr.Definition(), lr.Settled()
	var b bytes.Buffer
	if err := notice.Render(&b, in); err != nil {
		return noticeRefusal(l, f.election, err)
	}
	if err := atomicfile.Replace(*out, b.Bytes()); err != nil {
		return fmt.Errorf("write %s: %w", *out, err)
	}
	kind := l.T("cli.notice.preliminary")
	if *final {
		kind = l.T("cli.notice.final")
	}
	fmt.Fprintln(env.Stdout, l.T("cli.notice.written", kind, *out, t.GetCheckpoint().GetSize()))
	return nil
}

func noticeRefusal(l i18n.Lang, electionID string, err error) error {
	key := ""
	switch {
	case errors.Is(err, notice.ErrNotCertified):
		key = "cli.notice.not_certified"
	case errors.Is(err, notice.ErrCertified):
		key = "cli.notice.certified"
	case errors.Is(err, notice.ErrNotClosed):
		key = "cli.notice.not_closed"
	default:
		return err
	}
	return localized(l.T(key, electionID), err)
}
