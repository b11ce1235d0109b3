package cli

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"
	"rsc.io/qr"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
)

func deviceCommands() []*Command {
	return []*Command{
		{Name: "enroll", Summary: "help.device_enroll.summary", Usage: "--election ID [--label NAME] [flags]", Run: runDeviceEnroll},
		{Name: "list", Summary: "help.device_list.summary", Usage: "--election ID [--json] [--lang zh|en] [flags]", Run: runDeviceList},
		{Name: "revoke", Summary: "help.device_revoke.summary", Usage: "--election ID --device ID --reason TEXT [flags]", Run: runDeviceRevoke},
	}
}

// defaultEnrollValidity is how long an enrollment code works by default.
const defaultEnrollValidity = 72 * time.Hour

func runDeviceEnroll(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "device enroll", "--election ID [--label NAME] [flags]",
		"help.device_enroll", true, true)
	var label, public, fingerprint, qrMode string
	var valid time.Duration
	fs.StringVar(&label, "label", "", "help.device_enroll.flag.label")
	fs.StringVar(&public, "server-public", "", "help.device_enroll.flag.server_public")
	fs.StringVar(&fingerprint, "server-fingerprint", "", "help.device_enroll.flag.server_fingerprint")
	fs.DurationVar(&valid, "valid", defaultEnrollValidity, "help.device_enroll.flag.valid")
	fs.StringVar(&qrMode, "qr", "dark", "help.device_enroll.flag.qr")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if qrMode != "dark" && qrMode != "light" && qrMode != "none" {
		return f.usage(env, "cli.usage.qr")
	}
	if valid < 0 {
		return f.usage(env, "cli.usage.valid")
	}
	if err := election.CheckText("label", label, election.MaxTitleLen); err != nil {
		return f.usageText(env, "--label: "+err.Error())
	}
	if public == "" {
		public = f.server
		if host, _, err := net.SplitHostPort(public); err == nil && (host == "localhost" || net.ParseIP(host).IsLoopback()) {
			fmt.Fprintln(env.Stderr, f.say(env).T("cli.enroll.loopback", public))
		}
	}
	token, err := enrollcode.NewToken(rand.Reader)
	if err != nil {
		return err
	}
	hash, err := enrollcode.TokenHash(token)
	if err != nil {
		return err
	}
	code := enrollcode.Code{Server: public, ElectionID: f.election, Token: token, Fingerprint: fingerprint}
	if code.Fingerprint == "" {
		code.Fingerprint = "unknown" // replaced by the server's answer below
	}
	if err := code.Validate(); err != nil {
		return f.usageText(env, err.Error())
	}
	s, err := openCmSession(ctx, env, f, f.election)
	if err != nil {
		return err
	}
	defer s.Close()
	l := f.say(env)
	info, err := s.serverInfo(ctx)
	if err != nil {
		return err
	}
	if fingerprint != "" && fingerprint != info.GetFingerprint() {
		return errors.New(l.T("cli.enroll.fingerprint_differs", f.server, info.GetFingerprint(), fingerprint))
	}
	// The code tells devices which server to trust, so a key that changed
	// since the election was created needs a person's confirmation.
	if known := s.Signer().State().Server; fingerprint == "" && known != nil && known.Fingerprint != "" && known.Fingerprint != info.GetFingerprint() {
		return errors.New(l.T("cli.enroll.fingerprint_changed", f.server, info.GetFingerprint(), known.Fingerprint, info.GetFingerprint()))
	}
	if err := s.rememberServer(info); err != nil {
		return err
	}
	code.Fingerprint, code.TLS = info.GetFingerprint(), s.Pin()
	if err := code.Validate(); err != nil {
		return fmt.Errorf("the server's fingerprint cannot go into a code: %w", err)
	}
	grant := &doorstepv1.EnrollmentGrant{TokenSha256: hash, Label: label}
	if valid > 0 {
		grant.Expires = timestamppb.New(env.Now().Add(valid))
	}
	if err := s.submit(ctx, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Enrollment{Enrollment: grant}}); err != nil {
		return err
	}
	text := enrollcode.Encode(code)
	w := env.Stdout
	if label != "" {
		fmt.Fprintln(w, l.T("cli.enroll.code_for", f.election, label))
	} else {
		fmt.Fprintln(w, l.T("cli.enroll.code", f.election))
	}
	fmt.Fprintf(w, "\n%s\n\n", text)
	if qrMode != "none" {
		if err := writeQR(w, text, qrMode == "dark"); err != nil {
			fmt.Fprintln(env.Stderr, l.T("cli.enroll.no_qr", err))
		} else {
			fmt.Fprintln(w)
		}
	}
	if grant.Expires != nil {
		fmt.Fprintln(w, l.T("cli.enroll.once_until", grant.Expires.AsTime().In(env.Now().Location()).Format(time.RFC3339), code.Fingerprint))
	} else {
		fmt.Fprintln(w, l.T("cli.enroll.once", code.Fingerprint))
	}
	fmt.Fprintln(w, l.T("cli.enroll.join", text))
	return nil
}

// writeQR draws text as a QR code with half-block characters, two modules
// a character cell. dark says the terminal background is dark, so the
// light modules are drawn; on a light background the dark ones are.
func writeQR(w io.Writer, text string, dark bool) error {
	code, err := qr.Encode(text, qr.M)
	if err != nil {
		return err
	}
	const quiet = 2 // modules of margin; the background supplies the rest
	n := code.Size
	// ink reports whether the module at (x, y) is drawn.
	ink := func(x, y int) bool {
		black := x >= 0 && y >= 0 && x < n && y < n && code.Black(x, y)
		return black != dark
	}
	var b strings.Builder
	for y := -quiet; y < n+quiet; y += 2 {
		for x := -quiet; x < n+quiet; x++ {
			top, bottom := ink(x, y), y+1 < n+quiet && ink(x, y+1)
			switch {
			case top && bottom:
				b.WriteRune('█')
			case top:
				b.WriteRune('▀')
			case bottom:
				b.WriteRune('▄')
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteByte('\n')
	}
	_, err = io.WriteString(w, b.String())
	return err
}

func runDeviceRevoke(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "device revoke", "--election ID --device ID --reason TEXT [flags]",
		"help.device_revoke", true, true)
	var device, reason string
	var after uint64
	fs.StringVar(&device, "device", "", "help.device_revoke.flag.device")
	fs.Uint64Var(&after, "after-seq", 0, "help.device_revoke.flag.after_seq")
	fs.StringVar(&reason, "reason", "", "help.device_revoke.flag.reason")
	if err := f.parse(env, fs, args); err != nil {
		return err
	}
	if err := election.CheckID("--device", device); err != nil {
		return f.usageText(env, err.Error())
	}
	if reason == "" {
		return f.usage(env, "cli.usage.need_reason")
	}
	if err := election.CheckText("--reason", reason, election.MaxTextLen); err != nil {
		return f.usageText(env, err.Error())
	}
	s, err := openCmSession(ctx, env, f, f.election)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.submit(ctx, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Revocation{Revocation: &doorstepv1.DeviceRevocation{DeviceId: device, AfterSeq: after, Reason: reason}}}); err != nil {
		return err
	}
	// Name the canvasser too, as the committee knows them; the list is
	// only for the message, so a failure to read it is not the revoke's.
	named := device
	if devs, err := s.Devices(ctx); err == nil {
		for _, d := range devs {
			if d.GetDeviceId() == device && d.GetLabel() != "" {
				named = f.say(env).T("cli.device.named", device, d.GetLabel())
			}
		}
	}
	l := f.say(env)
	if after == 0 {
		fmt.Fprintln(env.Stdout, l.T("cli.revoke.done", named, f.election))
	} else {
		fmt.Fprintln(env.Stdout, l.T("cli.revoke.done_after", named, f.election, after))
	}
	cmPrintCheckpoint(env, l, s.Checkpoint())
	return nil
}
