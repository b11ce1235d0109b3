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

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/dial"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// Defaults of the committee's commands.
const (
	defaultServer      = "127.0.0.1:7070"
	defaultCallTimeout = 30 * time.Second
	// cmBatchRecords and cmBatchBytes keep one SubmitCommitteeRecords call
	// within tallyd's batch limit (1,000 records) and well inside the
	// message limit (dial.MaxMessageBytes).
	cmBatchRecords = 1000
	cmBatchBytes   = dial.MaxMessageBytes * 3 / 4
)

// cmFlags are the flags every committee command shares.
type cmFlags struct {
	name     string // "election create", for messages
	dir      string
	server   string
	election string
	timeout  time.Duration
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
		fs.DurationVar(&f.timeout, "timeout", defaultCallTimeout, "how long to wait for each call to the server")
	}
	if withElection {
		fs.StringVar(&f.election, "election", "", "the election id (required)")
	}
	return fs, f
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
	env    *Env
	f      *cmFlags
	signer *committee.Signer
	conn   *grpc.ClientConn
	elec   doorstepv1.ElectionServiceClient
	sync   doorstepv1.SyncServiceClient
	// checkpoint is the log state of the server's latest answer.
	checkpoint *doorstepv1.Checkpoint
}

// openCmSession opens the chain of electionID and a client for f.server.
func openCmSession(env *Env, f *cmFlags, electionID string) (*cmSession, error) {
	signer, err := committee.Open(f.dir, electionID, env.Now, env.Logger)
	if err != nil {
		return nil, err
	}
	creds := &callauth.Credentials{ElectionID: electionID, KeyID: election.CommitteeAuthor, Key: signer.Key(), Now: env.Now, Insecure: true}
	conn, err := dial.New(f.server, grpc.WithPerRPCCredentials(creds))
	if err != nil {
		signer.Close()
		return nil, fmt.Errorf("server address %q: %w", f.server, err)
	}
	return &cmSession{env: env, f: f, signer: signer, conn: conn,
		elec: doorstepv1.NewElectionServiceClient(conn), sync: doorstepv1.NewSyncServiceClient(conn)}, nil
}

func (s *cmSession) Close() {
	s.conn.Close()
	s.signer.Close()
}

func (s *cmSession) electionID() string { return s.signer.State().ElectionID }

// call returns a context bounded by --timeout for one call.
func (s *cmSession) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.f.timeout)
}

// rpcError explains a failed call in terms of what to do next.
func (s *cmSession) rpcError(what string, err error) error {
	return cmRPCError(what, s.f.server, s.f.timeout, s.electionID(), err)
}

func cmRPCError(what, server string, timeout time.Duration, electionID string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	switch st.Code() {
	case codes.Unavailable:
		return fmt.Errorf("%s: cannot reach the tally server at %s (%s): check --server or DOORSTEP_SERVER and that tallyd is running; anything signed is kept and sent next time: %w", what, server, st.Message(), err)
	case codes.DeadlineExceeded:
		return fmt.Errorf("%s: the tally server at %s did not answer within %s; run the command again (retrying is safe) or raise --timeout: %w", what, server, timeout, err)
	case codes.Unauthenticated, codes.PermissionDenied:
		return fmt.Errorf("%s: the server at %s does not accept this committee key for election %s (%s): check --election, --server and --committee-dir: %w", what, server, electionID, st.Message(), err)
	case codes.NotFound:
		return fmt.Errorf("%s: %s: check --election and --server: %w", what, st.Message(), err)
	}
	return fmt.Errorf("%s: %s: %w", what, st.Message(), err)
}

// transient reports whether a call may have failed on the way: the server
// may or may not have acted, and sending the same bytes again is the fix.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.ResourceExhausted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

// catchUp compares the chain with the server's (GetCommitteeState) and
// sends the records signed earlier that the server has not answered, in
// order. It returns their answers by record id.
func (s *cmSession) catchUp(ctx context.Context) (map[string]*doorstepv1.RecordResult, error) {
	id := s.electionID()
	c, cancel := s.call(ctx)
	resp, err := s.elec.GetCommitteeState(c, &doorstepv1.GetCommitteeStateRequest{ElectionId: id})
	cancel()
	if err != nil {
		// tallyd knows the committee key only from the election's
		// definition, so for an unknown election it answers NotFound or
		// "not enrolled"; any other refusal is explained as usual.
		if code := status.Code(err); code == codes.NotFound || code == codes.Unauthenticated && strings.Contains(status.Convert(err).Message(), "not enrolled") {
			return nil, fmt.Errorf("election %s is not on the server at %s (%s): create it with 'doorstep election create', or check --election and --server: %w", id, s.f.server, status.Convert(err).Message(), err)
		}
		return nil, s.rpcError("ask the server for the committee's records", err)
	}
	if err := s.signer.Reconcile(resp.GetHighSeq(), resp.GetHighHash()); err != nil {
		return nil, err
	}
	pending := s.signer.Pending()
	if len(pending) == 0 {
		return map[string]*doorstepv1.RecordResult{}, nil
	}
	if pending[0].Kind == committee.KindDefine {
		return nil, fmt.Errorf("election %s was never created on the server: run 'doorstep election create' again", id)
	}
	fmt.Fprintf(s.env.Stderr, "Sending %d committee record(s) signed earlier that the server has not answered yet.\n", len(pending))
	return s.send(ctx, pending)
}

// submit catches up with the server, signs actions after everything
// signed before, sends them, and returns their answers in order.
func (s *cmSession) submit(ctx context.Context, actions ...*doorstepv1.CommitteeAction) ([]*doorstepv1.RecordResult, error) {
	earlier, err := s.catchUp(ctx)
	if err != nil {
		return nil, err
	}
	if err := cmRejections(earlier); err != nil {
		fmt.Fprintf(s.env.Stderr, "warning: %v\n", err)
	}
	return s.signAndSend(ctx, func() ([]*doorstepv1.SignedRecord, error) { return s.signer.Sign(actions...) })
}

// signAndSend signs with sign (which persists), sends every unanswered
// record, and returns the answers to the records sign made, in order.
func (s *cmSession) signAndSend(ctx context.Context, sign func() ([]*doorstepv1.SignedRecord, error)) ([]*doorstepv1.RecordResult, error) {
	recs, err := sign()
	if err != nil {
		return nil, err
	}
	answers, err := s.send(ctx, s.signer.Pending())
	if err != nil {
		return nil, err
	}
	out := make([]*doorstepv1.RecordResult, len(recs))
	for i, r := range recs {
		id, err := cmRecordID(r)
		if err != nil {
			return nil, err
		}
		out[i] = answers[id]
		if out[i] == nil {
			return nil, fmt.Errorf("the server did not answer committee record %s; run the command again to resend it", id)
		}
	}
	return out, nil
}

// send submits records in order, in batches the server takes, and records
// each batch's answers before sending the next.
func (s *cmSession) send(ctx context.Context, pending []committee.PendingRecord) (map[string]*doorstepv1.RecordResult, error) {
	answers := make(map[string]*doorstepv1.RecordResult, len(pending))
	for len(pending) > 0 {
		n, size := 0, 0
		for n < len(pending) && n < cmBatchRecords && (n == 0 || size+len(pending[n].Body) < cmBatchBytes) {
			size += len(pending[n].Body) + len(pending[n].Signature)
			n++
		}
		batch := make([]*doorstepv1.SignedRecord, n)
		for i := range n {
			batch[i] = pending[i].Signed()
		}
		c, cancel := s.call(ctx)
		resp, err := s.elec.SubmitCommitteeRecords(c, &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: s.electionID(), Records: batch})
		cancel()
		if err != nil {
			return nil, s.rpcError("send committee records", err)
		}
		if err := s.signer.Ack(resp.GetResults()); err != nil {
			return nil, err
		}
		if resp.GetCheckpoint() != nil {
			s.checkpoint = resp.GetCheckpoint()
		}
		for _, r := range resp.GetResults() {
			answers[r.GetRecordId()] = r
		}
		pending = pending[n:]
	}
	return answers, nil
}

// cmRejections turns rejected answers into one error naming each.
func cmRejections(answers map[string]*doorstepv1.RecordResult) error {
	var errs []error
	for _, r := range answers {
		if r.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			errs = append(errs, cmRejected(r))
		}
	}
	return errors.Join(errs...)
}

// cmRejected explains one rejected record.
func cmRejected(r *doorstepv1.RecordResult) error {
	return fmt.Errorf("the server rejected committee record %s (%s): %s", r.GetRecordId(), cmReason(r.GetReason()), r.GetMessage())
}

func cmReason(c doorstepv1.ReasonCode) string {
	return cmEnumName(c.String(), "REASON_CODE_")
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

// cmCheckAccepted returns an error for any answer that is not an
// acceptance.
func cmCheckAccepted(results []*doorstepv1.RecordResult) error {
	var errs []error
	for _, r := range results {
		if r.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
			errs = append(errs, cmRejected(r))
		}
	}
	return errors.Join(errs...)
}

func cmRecordID(sr *doorstepv1.SignedRecord) (string, error) {
	rec, err := signed.Decode(sr.GetBody())
	if err != nil {
		return "", err
	}
	return rec.GetRecordId(), nil
}

// cmPrintCheckpoint prints the log state an answer came with.
func cmPrintCheckpoint(env *Env, cp *doorstepv1.Checkpoint) {
	if cp == nil {
		return
	}
	fmt.Fprintf(env.Stdout, "Ballot log: %d entries, root %s\n", cp.GetSize(), base64.StdEncoding.EncodeToString(cp.GetRootHash()))
}
