package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/servercert"
)

const (
	auditDefaultServer  = "127.0.0.1:7070"
	auditCallTimeout    = 30 * time.Second
	auditStreamTimeout  = 2 * time.Hour
	auditStreamRetries  = 5
	auditResumeWait     = 200 * time.Millisecond
	auditMaxListedFinds = 200
)

func auditCommands() []*Command {
	return []*Command{
		{Name: "export", Summary: "download the election record into a folder", Usage: "--election ID --out DIR [flags]", Run: runAuditExport},
		{Name: "verify", Summary: "check an election record folder on its own", Usage: "[flags] DIR", Run: runAuditVerify},
		{Name: "receipt", Summary: "look up a household's receipt code", Usage: "[flags] CODE", Run: runAuditReceipt},
		{Name: "dashboard", Summary: "make a link that signs a browser in to the live dashboard as an auditor", Usage: "--election ID --key FILE [--web URL] [--open] [flags]", Run: runAuditDashboard},
	}
}

// auditServerFlags adds --server, --server-pin and --timeout.
func auditServerFlags(env *Env, fs *flag.FlagSet, server, pin *string, timeout *time.Duration) {
	def := env.Getenv("DOORSTEP_SERVER")
	if def == "" {
		def = auditDefaultServer
	}
	fs.StringVar(server, "server", def, "tallyd address HOST:PORT (env DOORSTEP_SERVER)")
	fs.StringVar(pin, "server-pin", env.Getenv("DOORSTEP_SERVER_PIN"), "the pin of tallyd's TLS certificate, as the committee announced it (env DOORSTEP_SERVER_PIN)")
	fs.DurationVar(timeout, "timeout", auditCallTimeout, "how long to wait for each call to the server")
}

func auditUsage(env *Env, name, format string, args ...any) error {
	fmt.Fprintf(env.Stderr, "doorstep audit %s: %s\nRun 'doorstep audit %s --help' for its flags.\n", name, fmt.Sprintf(format, args...), name)
	return ErrUsage
}

func runAuditExport(ctx context.Context, env *Env, args []string) error {
	fs := NewFlags(env, "audit export", "--election ID --out DIR [flags]",
		"Download an election's record: its whole ballot log, the server's signed checkpoint,\n"+
			"the published tally, a manifest and CSVs, into a new folder anyone can verify\n"+
			"with 'doorstep audit verify'. The full log is the committee's to give out, so the\n"+
			"calls are signed with the committee key.")
	var server, pin, electionID, out, dir, keyFile string
	var timeout time.Duration
	var live bool
	auditServerFlags(env, fs, &server, &pin, &timeout)
	fs.StringVar(&electionID, "election", "", "the election id (required)")
	fs.StringVar(&out, "out", "", "the folder to write; it must not exist or be empty (required)")
	cdir := env.Getenv("DOORSTEP_COMMITTEE_DIR")
	if cdir == "" {
		cdir = filepath.Join(env.ConfigDir, "committee")
	}
	fs.StringVar(&dir, "committee-dir", cdir, "the committee's folder holding its key (env DOORSTEP_COMMITTEE_DIR)")
	fs.StringVar(&keyFile, "key", "", "a committee key file to use instead of the committee folder's")
	fs.BoolVar(&live, "live", false, "export the election as it stands now, before it is closed (the tally is then the live one)")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return auditUsage(env, "export", "unexpected argument %q", fs.Arg(0))
	case electionID == "":
		return auditUsage(env, "export", "--election is required")
	case out == "":
		return auditUsage(env, "export", "--out is required: the folder to write the record into")
	case timeout <= 0:
		return auditUsage(env, "export", "--timeout must be positive")
	}
	key, err := auditCommitteeKey(dir, keyFile)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	pin, learned, err := committee.ServerPin(pctx, dir, server, pin)
	cancel()
	if err != nil {
		return err
	}
	if learned {
		firstContact(env, i18n.EN, server, pin) // the audit commands speak English
	}
	signer := &callauth.Signer{ElectionID: electionID, KeyID: election.CommitteeAuthor, Key: key, Now: env.Now}
	conn, err := client.ForPin(pin).New(server, grpc.WithDefaultCallOptions(signer.CallOption()))
	if err != nil {
		return fmt.Errorf("server address %q: %w", server, err)
	}
	defer conn.Close()
	src := &auditSource{
		audit:         doorstepv1.NewAuditServiceClient(conn),
		elections:     doorstepv1.NewElectionServiceClient(conn),
		electionID:    electionID,
		live:          live,
		timeout:       timeout,
		streamTimeout: auditStreamTimeout,
		retries:       auditStreamRetries,
		resumeWait:    auditResumeWait,
	}
	start := time.Now()
	rep, err := audit.Export(ctx, src, out)
	if err != nil {
		return auditRPCError(server, err)
	}
	fmt.Fprintf(env.Stdout, "Exported the election record of %s to %s.\n\n", electionID, out)
	auditPrintReport(env.Stdout, rep, time.Since(start))
	if !rep.OK() {
		return fmt.Errorf("the record was exported, but it does not verify: %d discrepancies (listed above); keep the folder as evidence", len(rep.Discrepancies)+rep.Omitted)
	}
	fmt.Fprintf(env.Stdout, "\nGive the folder to auditors; 'doorstep audit verify %s' checks it with nothing else.\n", out)
	return nil
}

// auditCommitteeKey loads the committee's key from --key or the folder.
func auditCommitteeKey(dir, keyFile string) (ed25519.PrivateKey, error) {
	if keyFile == "" {
		return committee.LoadKey(dir)
	}
	f, err := os.Open(keyFile)
	if err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("committee key %s has mode %v, so others on this machine may read it; run 'chmod 600 %s'", keyFile, fi.Mode().Perm(), keyFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, ed25519.PrivateKeySize+1))
	if err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	if len(b) != ed25519.PrivateKeySize || !bytes.Equal(ed25519.NewKeyFromSeed(b[:ed25519.SeedSize]), b) {
		return nil, fmt.Errorf("committee key %s is not a %d-byte ed25519 key (seed and public key): point --key at the committee's key file", keyFile, ed25519.PrivateKeySize)
	}
	return ed25519.PrivateKey(b), nil
}

// auditRPCError explains a failed call in terms of what to do next.
func auditRPCError(server string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	if client.Unreachable(err) {
		if st.Code() == codes.DeadlineExceeded {
			return fmt.Errorf("the tally server at %s did not answer in time; run the command again or raise --timeout: %w", server, err)
		}
		return fmt.Errorf("cannot reach the tally server at %s: check --server or DOORSTEP_SERVER and that tallyd is running: %w", server, err)
	}
	switch st.Code() {
	case codes.Unauthenticated, codes.PermissionDenied:
		return fmt.Errorf("the server at %s does not accept this committee key for the election: check --election, --committee-dir or --key: %w", server, err)
	}
	return err
}

func runAuditVerify(ctx context.Context, env *Env, args []string) error {
	fs := NewFlags(env, "audit verify", "[flags] DIR",
		"Check an election record folder using nothing but its files: the server's signature on\n"+
			"the checkpoint, the Merkle root of the log, every record's signature, every device's\n"+
			"chain, each decision of the server re-made under the rules, and the tally recomputed\n"+
			"and compared with the published one byte for byte. Exits 0 only if all of it holds.")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return auditUsage(env, "verify", "give exactly one folder: the election record to check")
	}
	dir := fs.Arg(0)
	start := time.Now()
	rep, err := audit.Verify(ctx, dir)
	if err != nil {
		return err
	}
	auditPrintReport(env.Stdout, rep, time.Since(start))
	if !rep.OK() {
		return fmt.Errorf("the election record in %s does not verify: %d discrepancies (listed above)", dir, len(rep.Discrepancies)+rep.Omitted)
	}
	fmt.Fprintf(env.Stdout, "\nThe election record verifies: the published tally is exactly what the log gives.\n")
	return nil
}

// auditPrintReport prints the summary and every discrepancy.
func auditPrintReport(w io.Writer, rep *audit.Report, took time.Duration) {
	fmt.Fprintf(w, "Election:    %s  %s\n", rep.ElectionID, rep.Title)
	fmt.Fprintf(w, "Server key:  %s  (compare with the fingerprint the committee announced)\n", rep.Fingerprint)
	if rep.CheckpointSize > 0 {
		fmt.Fprintf(w, "Checkpoint:  %d entries, root %v, signed by that key\n", rep.CheckpointSize, rep.Root)
	}
	s := rep.Stats
	fmt.Fprintf(w, "Log:         %d entries: %d signed records (%d signatures verified), %d enrollments\n", s.Entries, s.Records, s.SignaturesOK, s.Enrollments)
	fmt.Fprintf(w, "Accepted:    %d ballots, %d visits, %d committee records (each upheld by the replay)\n", s.Ballots, s.Visits, s.CommitteeRecords)
	if s.Rejected > 0 {
		var parts []string
		for reason, n := range s.RejectedBy {
			parts = append(parts, fmt.Sprintf("%d %s", n, strings.ToLower(reason)))
		}
		sort.Strings(parts)
		fmt.Fprintf(w, "Rejected:    %d by the server (%s)\n", s.Rejected, strings.Join(parts, ", "))
	}
	fmt.Fprintf(w, "Devices:     %d enrolled; roster of %d units\n", rep.Devices, rep.RosterUnits)
	switch {
	case rep.Tally == nil:
		fmt.Fprintf(w, "Tally:       not recomputed\n")
	case rep.TallyMatches:
		fmt.Fprintf(w, "Tally:       recomputed; tally.json matches it byte for byte\n")
	default:
		fmt.Fprintf(w, "Tally:       recomputed; tally.json DIFFERS from it\n")
	}
	if secs := took.Seconds(); secs > 0 && s.Records > 0 {
		fmt.Fprintf(w, "Checked in:  %s (%.0f records/s)\n", took.Round(time.Millisecond), float64(s.Records)/secs)
	}
	if rep.OK() {
		return
	}
	fmt.Fprintf(w, "\n%d discrepancies:\n", len(rep.Discrepancies)+rep.Omitted)
	for i, d := range rep.Discrepancies {
		if i == auditMaxListedFinds {
			fmt.Fprintf(w, "  … and %d more\n", len(rep.Discrepancies)-i+rep.Omitted)
			return
		}
		fmt.Fprintf(w, "  %s\n", d)
	}
	if rep.Omitted > 0 {
		fmt.Fprintf(w, "  … and %d more\n", rep.Omitted)
	}
}

// auditReceiptWords explains a receipt status to a household.
var auditReceiptWords = map[doorstepv1.ReceiptStatus]string{
	doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED:    "COUNTED: this is the ballot that counts for the unit",
	doorstepv1.ReceiptStatus_RECEIPT_STATUS_SUPERSEDED: "SUPERSEDED: a later ballot for the unit replaces this one",
	doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED:  "CONTESTED: the unit has differing ballots; the committee decides, or has decided, which one counts",
	doorstepv1.ReceiptStatus_RECEIPT_STATUS_INCLUDED:   "INCLUDED: an identical ballot for the unit counts; this one was a second visit",
	doorstepv1.ReceiptStatus_RECEIPT_STATUS_REJECTED:   "REJECTED: the ballot is in the log but was not accepted; ask the committee why, quoting the log entry",
	doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND:  "NOT FOUND: no ballot with this code is in the log; the canvasser's device may not have synced yet",
}

func runAuditReceipt(ctx context.Context, env *Env, args []string) error {
	fs := NewFlags(env, "audit receipt", "[flags] CODE",
		"Look up the receipt code a household was shown at the door, on the tally server\n"+
			"(--server, --election) or in an exported election record (--record), or both.\n"+
			"The answer says whether the ballot is in the log and how it stands, never what it chose.")
	var server, pin, electionID, unit, recordDir, fingerprint string
	var timeout time.Duration
	auditServerFlags(env, fs, &server, &pin, &timeout)
	fs.StringVar(&electionID, "election", "", "the election id (to ask the server)")
	fs.StringVar(&unit, "unit", "", "the unit id, e.g. 3-2-501 (codes are short and may collide across units)")
	fs.StringVar(&recordDir, "record", "", "an exported election record folder to look in (and to check the server's proof with)")
	fs.StringVar(&fingerprint, "fingerprint", "", "the server key fingerprint the committee announced; the answer must be signed by it")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return auditUsage(env, "receipt", "give exactly one receipt code, like 7K2QM-0XH4D")
	}
	code, err := ballotlog.ParseReceiptCode(fs.Arg(0))
	if err != nil {
		return err
	}
	if electionID == "" && recordDir == "" {
		return auditUsage(env, "receipt", "give --election (to ask the server) or --record DIR (to look in an election record)")
	}
	if timeout <= 0 {
		return auditUsage(env, "receipt", "--timeout must be positive")
	}
	var entryAt func(idx int64) ([]byte, error)
	if recordDir != "" {
		if err := auditReceiptOffline(ctx, env, recordDir, code, unit); err != nil {
			return err
		}
		entryAt = func(idx int64) ([]byte, error) { return audit.ReadEntry(recordDir, idx) }
	}
	if electionID == "" {
		return nil
	}
	return auditReceiptOnline(ctx, env, server, pin, timeout, electionID, code, unit, fingerprint, entryAt)
}

func auditReceiptOffline(ctx context.Context, env *Env, dir, code, unit string) error {
	matches, rep, err := audit.LookupReceipt(ctx, dir, code, unit)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "In the election record %s (election %s):\n", dir, rep.ElectionID)
	if len(matches) == 0 {
		fmt.Fprintf(env.Stdout, "  %s  %s\n", code, auditReceiptWords[doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND])
	}
	for _, m := range matches {
		fmt.Fprintf(env.Stdout, "  %s  unit %s, log entry %d: %s\n", code, m.UnitID, m.Entry, auditReceiptWords[m.Status])
	}
	if !rep.OK() {
		fmt.Fprintf(env.Stdout, "  Careful: the record itself does not verify (%d discrepancies); run 'doorstep audit verify %s'.\n", len(rep.Discrepancies)+rep.Omitted, dir)
	} else {
		fmt.Fprintf(env.Stdout, "  The record verifies, so this answer is the auditor's own, not the server's word.\n")
	}
	return nil
}

func auditReceiptOnline(ctx context.Context, env *Env, server, pin string, timeout time.Duration, electionID, code, unit, fingerprint string, entryAt func(int64) ([]byte, error)) error {
	if pin == "" {
		// The answer is checked against the server key's fingerprint, which
		// is what authenticates it; TLS, trusted on this first contact, only
		// keeps the question private.
		pctx, cancel := context.WithTimeout(ctx, timeout)
		var err error
		pin, err = servercert.Fetch(pctx, server)
		cancel()
		if err != nil {
			return auditRPCError(server, err)
		}
	}
	conn, err := client.ForPin(pin).New(server)
	if err != nil {
		return fmt.Errorf("server address %q: %w", server, err)
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	info, err := doorstepv1.NewSyncServiceClient(conn).GetServerInfo(cctx, &doorstepv1.GetServerInfoRequest{})
	if err != nil {
		return auditRPCError(server, fmt.Errorf("server identity: %w", err))
	}
	pub := ed25519.PublicKey(info.GetServerPublicKey())
	fp := ballotlog.Fingerprint(pub)
	if fingerprint != "" && fingerprint != fp {
		return fmt.Errorf("the server at %s has key fingerprint %s, not %s: this is not the election's server, or its key changed; do not trust its answer", server, fp, fingerprint)
	}
	resp, err := doorstepv1.NewAuditServiceClient(conn).LookupReceipt(cctx, &doorstepv1.LookupReceiptRequest{ElectionId: electionID, ReceiptCode: code, UnitId: unit})
	if err != nil {
		return auditRPCError(server, fmt.Errorf("look up the receipt: %w", err))
	}
	fmt.Fprintf(env.Stdout, "On the tally server %s (election %s):\n", server, electionID)
	where := ""
	if resp.GetStatus() != doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND {
		where = fmt.Sprintf("unit %s, log entry %d: ", resp.GetUnitId(), resp.GetLogIndex())
	}
	fmt.Fprintf(env.Stdout, "  %s  %s%s\n", code, where, auditReceiptWords[resp.GetStatus()])

	cp := resp.GetCheckpoint()
	vkey, err := note.NewEd25519VerifierKey(cp.GetOrigin(), pub)
	if err != nil {
		return fmt.Errorf("the server's checkpoint names log %q, which cannot be a key name: %w", cp.GetOrigin(), err)
	}
	tree, err := ballotlog.VerifyCheckpoint(cp, vkey)
	if err != nil {
		return fmt.Errorf("the server's answer is not backed by a valid signed checkpoint: %w", err)
	}
	fmt.Fprintf(env.Stdout, "  Signed checkpoint: %d entries, root %v, server key %s", tree.N, tree.Hash, fp)
	if fingerprint == "" {
		fmt.Fprintf(env.Stdout, " (compare it with the fingerprint the committee announced, or pass --fingerprint)")
	}
	fmt.Fprintln(env.Stdout)
	if resp.GetStatus() == doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND {
		return nil
	}
	proof := make(tlog.RecordProof, len(resp.GetInclusionProof()))
	for i, h := range resp.GetInclusionProof() {
		if len(h) != tlog.HashSize {
			return fmt.Errorf("the server's inclusion proof holds a %d-byte hash; it is malformed", len(h))
		}
		copy(proof[i][:], h)
	}
	if entryAt == nil {
		var leaf tlog.Hash
		if len(resp.GetLeafHash()) != tlog.HashSize {
			return fmt.Errorf("the server's answer has no leaf hash to check its inclusion proof against")
		}
		copy(leaf[:], resp.GetLeafHash())
		if err := tlog.CheckRecord(proof, tree.N, tree.Hash, int64(resp.GetLogIndex()), leaf); err != nil {
			return fmt.Errorf("the server's inclusion proof does not prove entry %d in its signed log: do not trust its answer: %w", resp.GetLogIndex(), err)
		}
		fmt.Fprintf(env.Stdout, "  Inclusion proof checked: entry %d is in the server's signed log. With --record DIR it is also checked to be this ballot's entry.\n", resp.GetLogIndex())
		return nil
	}
	entry, err := entryAt(int64(resp.GetLogIndex()))
	if err != nil {
		return fmt.Errorf("the server names log entry %d, which the election record does not hold: %w", resp.GetLogIndex(), err)
	}
	if err := ballotlog.CheckInclusion(entry, int64(resp.GetLogIndex()), tree, proof); err != nil {
		return fmt.Errorf("the server's inclusion proof does not prove the record's entry %d in its signed log: %w", resp.GetLogIndex(), err)
	}
	fmt.Fprintf(env.Stdout, "  Inclusion proof checked: entry %d of the election record is in the server's signed log.\n", resp.GetLogIndex())
	return nil
}
