package cli

import (
	"context"
	"crypto/ed25519"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/keyfile"
	"github.com/doorstep-vote/doorstep/internal/rules"
)

// The dashboard's sign-in link: a token the key signs right here, so the
// key never leaves this machine (see internal/dashboard).

// defaultWebPort is tallyd's default port for the browser side.
const defaultWebPort = "7443"

// dashFlags are the flags of both dashboard commands.
type dashFlags struct {
	election, web, lang string
	open                bool
}

// add adds the flags; an auditor's adds --election and --lang too (the
// committee's flags have them already).
func (d *dashFlags) add(env *Env, fs *flag.FlagSet, auditor bool) {
	if auditor {
		fs.StringVar(&d.election, "election", "", "help.flag.election")
		fs.StringVar(&d.lang, "lang", "", "help.dashboard.flag.lang")
	}
	fs.StringVar(&d.web, "web", env.Getenv("DOORSTEP_WEB"), "help.dashboard.flag.web") // its text names defaultWebPort
	fs.BoolVar(&d.open, "open", false, "help.dashboard.flag.open")
}

// link makes the sign-in link for signer's election.
func (d *dashFlags) link(env *Env, l i18n.Lang, s *callauth.Signer) (string, error) {
	base := d.web
	if base == "" {
		host := env.Getenv("DOORSTEP_SERVER")
		if host == "" {
			host = defaultServer
		}
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		base = "https://" + net.JoinHostPort(host, defaultWebPort)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", errors.New(l.T("cli.dashboard.bad_web", base))
	}
	tok, err := s.SignInToken()
	if err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/dashboard/signin"
	if d.lang != "" {
		u.RawQuery = "lang=" + d.lang
	}
	// In the fragment, which browsers never send: the token reaches the
	// server only when the page posts it.
	u.Fragment = tok
	return u.String(), nil
}

func (d *dashFlags) print(env *Env, l i18n.Lang, link string) {
	fmt.Fprintln(env.Stdout, l.T("cli.dashboard.link", callauth.Window, d.election, link))
	fmt.Fprintln(env.Stdout, l.T("cli.dashboard.secret"))
	if d.open {
		if err := openBrowser(link); err != nil {
			fmt.Fprintln(env.Stderr, l.T("cli.dashboard.no_browser", err))
		}
	}
}

// openBrowser opens link in the desktop's browser.
func openBrowser(link string) error {
	name, args := "xdg-open", []string{link}
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler", link}
	}
	cmd := exec.Command(name, args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	go cmd.Wait() // reap it; the browser outlives this command
	return nil
}

func (d *dashFlags) check(env *Env, l i18n.Lang, name string) error {
	if d.election == "" {
		return cmUsage(env, l, name, l.T("cli.usage.need_election"))
	}
	if err := election.CheckID("--election", d.election); err != nil {
		return cmUsage(env, l, name, err.Error())
	}
	if d.lang != "" {
		if _, err := i18n.Parse(d.lang); err != nil {
			return cmUsage(env, l, name, l.T("cli.usage.lang", d.lang))
		}
	}
	return nil
}

func runCommitteeDashboard(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "committee dashboard", "--election ID [--web URL] [--open] [flags]",
		"help.committee_dashboard", false, true)
	f.withLang(fs, "help.flag.lang_dashboard")
	var d dashFlags
	d.add(env, fs, false)
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	d.election, d.lang = f.election, f.lang
	l := f.say(env)
	if err := d.check(env, l, f.name); err != nil {
		return err
	}
	key, err := f.loadKey(env)
	if err != nil {
		return err
	}
	link, err := d.link(env, l, &callauth.Signer{ElectionID: d.election, KeyID: election.CommitteeAuthor, Key: key, Now: env.Now})
	if err != nil {
		return err
	}
	d.print(env, l, link)
	return nil
}

func runAuditDashboard(ctx context.Context, env *Env, args []string) error {
	fs := NewFlags(env, "audit dashboard", "--election ID --key FILE [--web URL] [--open] [flags]",
		"Make a link that signs a browser in to the election's live dashboard as an\nauditor the committee granted access, with the auditor's own key file (the key\nstays on this machine). The link works once, within two minutes.")
	var d dashFlags
	var keyFile string
	d.add(env, fs, true)
	fs.StringVar(&keyFile, "key", "", "the auditor's key file (required)")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return auditUsage(env, "dashboard", "unexpected argument %q", fs.Arg(0))
	}
	if keyFile == "" {
		return auditUsage(env, "dashboard", "--key is required: the auditor's key file, whose public key the committee granted")
	}
	if err := d.check(env, i18n.EN, "audit dashboard"); err != nil {
		return err
	}
	key, err := keyfile.Load(filepath.Clean(keyFile))
	if err != nil {
		return fmt.Errorf("auditor key: %w", err)
	}
	id := rules.AuditorID(key.Public().(ed25519.PublicKey))
	link, err := d.link(env, i18n.EN, &callauth.Signer{ElectionID: d.election, KeyID: id, Key: key, Now: env.Now})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "Auditor %s.\n", id)
	d.print(env, i18n.EN, link) // the audit commands speak English
	return nil
}
