package committee

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// Limits of one SubmitCommitteeRecords call: tallyd's batch limit (1,000
// records), and well inside the message limit (signed.MaxMessageBytes).
const (
	batchRecords = 1000
	batchBytes   = signed.MaxMessageBytes * 3 / 4
)

// Client calls the tally server as the committee of one election: every
// call is signed with the committee key (package callauth) and bounded by
// its own deadline. It takes no lock on the election's chain, so a command
// that only reads needs no Signer.
//
// The errors of its calls are the calls' gRPC status errors, as they are,
// for the caller to explain in its own terms.
type Client struct {
	conn       *grpc.ClientConn
	elec       doorstepv1.ElectionServiceClient
	sync       doorstepv1.SyncServiceClient
	audit      doorstepv1.AuditServiceClient
	electionID string
	timeout    time.Duration
	pin        string
}

// DialOptions are the committee's own options for its connection: a
// fixed receive window, large for the committee's reads, which also stops
// gRPC's bandwidth probes. A watch is a steady stream of small overviews,
// and the probes and window updates would otherwise cost the server a
// read for every few it sends, a thousand watchers over.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{grpc.WithInitialWindowSize(1 << 20), grpc.WithInitialConnWindowSize(1 << 20)}
}

// Dial returns a Client of the server at addr (HOST:PORT) with the TLS pin
// pin (see ServerPin) for electionID, signing calls with key at the times
// now gives, each call bounded by timeout. It does not connect until the
// first call.
func Dial(addr, pin, electionID string, key ed25519.PrivateKey, timeout time.Duration, now func() time.Time) (*Client, error) {
	signer := &callauth.Signer{ElectionID: electionID, KeyID: election.CommitteeAuthor, Key: key, Now: now}
	conn, err := client.ForPin(pin).New(addr, append([]grpc.DialOption{grpc.WithDefaultCallOptions(signer.CallOption())}, DialOptions()...)...)
	if err != nil {
		return nil, fmt.Errorf("server address %q: %w", addr, err)
	}
	return &Client{conn: conn, elec: doorstepv1.NewElectionServiceClient(conn), sync: doorstepv1.NewSyncServiceClient(conn),
		audit: doorstepv1.NewAuditServiceClient(conn), electionID: electionID, timeout: timeout, pin: pin}, nil
}

// Pin is the TLS pin the client trusts the server by.
func (c *Client) Pin() string { return c.pin }

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// ElectionID is the election the client works on.
func (c *Client) ElectionID() string { return c.electionID }

func (c *Client) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// ServerInfo asks the server for its identity: its key, the key's
// fingerprint and the log origin.
func (c *Client) ServerInfo(ctx context.Context) (*doorstepv1.GetServerInfoResponse, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	return c.sync.GetServerInfo(cctx, &doorstepv1.GetServerInfoRequest{})
}

// CommitteeState asks which committee records of the election the server
// holds (the input of Signer.Reconcile).
func (c *Client) CommitteeState(ctx context.Context) (*doorstepv1.GetCommitteeStateResponse, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	return c.elec.GetCommitteeState(cctx, &doorstepv1.GetCommitteeStateRequest{ElectionId: c.electionID})
}

// Tally reads the election's live tally.
func (c *Client) Tally(ctx context.Context) (*doorstepv1.Tally, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.elec.GetTally(cctx, &doorstepv1.GetTallyRequest{ElectionId: c.electionID})
	if err != nil {
		return nil, err
	}
	return resp.GetTally(), nil
}

// TallyStatus reads the election's live tally and where the election
// stands (open, closed, certified, and since when).
func (c *Client) TallyStatus(ctx context.Context) (*doorstepv1.Tally, *doorstepv1.ElectionStatus, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.elec.GetTally(cctx, &doorstepv1.GetTallyRequest{ElectionId: c.electionID})
	if err != nil {
		return nil, nil, err
	}
	return resp.GetTally(), resp.GetStatus(), nil
}

// Devices lists the election's devices as the server knows them.
func (c *Client) Devices(ctx context.Context) ([]*doorstepv1.DeviceSummary, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.elec.ListDevices(cctx, &doorstepv1.ListDevicesRequest{ElectionId: c.electionID})
	if err != nil {
		return nil, err
	}
	return resp.GetDevices(), nil
}

// Comments lists every resident's comment on an accepted ballot, page by
// page.
func (c *Client) Comments(ctx context.Context) ([]*doorstepv1.ResidentComment, error) {
	var out []*doorstepv1.ResidentComment
	token := ""
	for {
		cctx, cancel := c.call(ctx)
		resp, err := c.elec.ListComments(cctx, &doorstepv1.ListCommentsRequest{ElectionId: c.electionID, PageToken: token, PageSize: 500})
		cancel()
		if err != nil {
			return nil, err
		}
		out = append(out, resp.GetComments()...)
		if token = resp.GetNextPageToken(); token == "" {
			return out, nil
		}
	}
}

// LogEntries streams the ballot log's entries start … end-1 to fn, in
// order, each exactly as hashed into the log. The whole stream is bounded
// by a few call timeouts.
func (c *Client) LogEntries(ctx context.Context, start, end uint64, fn func(index uint64, entry []byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, 4*c.timeout)
	defer cancel()
	st, err := c.audit.StreamLogEntries(ctx, &doorstepv1.StreamLogEntriesRequest{ElectionId: c.electionID, Start: start, End: end})
	if err != nil {
		return err
	}
	next := start
	for next < end {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if m.GetIndex() != next {
			return fmt.Errorf("the server sent log entry %d where entry %d belongs", m.GetIndex(), next)
		}
		if err := fn(next, m.GetEntry()); err != nil {
			return err
		}
		next++
	}
	if next != end {
		return fmt.Errorf("the server ended the log at entry %d; %d were asked for", next, end)
	}
	return nil
}

// Contested lists every contested unit and split owner, page by page.
func (c *Client) Contested(ctx context.Context) ([]*doorstepv1.ContestedUnit, []*doorstepv1.SplitOwner, error) {
	var units []*doorstepv1.ContestedUnit
	var owners []*doorstepv1.SplitOwner
	token := ""
	for {
		cctx, cancel := c.call(ctx)
		resp, err := c.elec.ListContestedUnits(cctx, &doorstepv1.ListContestedUnitsRequest{ElectionId: c.electionID, PageToken: token, PageSize: 500})
		cancel()
		if err != nil {
			return nil, nil, err
		}
		units = append(units, resp.GetUnits()...)
		owners = append(owners, resp.GetSplitOwners()...)
		if token = resp.GetNextPageToken(); token == "" {
			return units, owners, nil
		}
	}
}

// Session is the committee at work on one election: its chain (a Signer,
// holding the election's lock) and a Client whose calls it signs. What it
// sends has been signed and persisted first, and each answer is recorded
// (Signer.Ack) as it arrives, so a crash or a dropped call costs a resend
// of the same bytes. A Session is not safe for concurrent use.
type Session struct {
	*Client
	signer *Signer
	// checkpoint is the log state of the server's latest answer.
	checkpoint *doorstepv1.Checkpoint
	// FirstContact is set when this machine learned the server's TLS pin
	// in opening the session: the person should compare it with the pin
	// tallyd printed.
	FirstContact bool
}

// OpenSession opens the chain of electionID in the committee folder dir
// (see Open) and a Client of the server at addr, trusted by its TLS pin
// (see ServerPin; pin is the one the operator gave, if any).
func OpenSession(ctx context.Context, dir, electionID, addr, pin string, timeout time.Duration, now func() time.Time, log *slog.Logger) (*Session, error) {
	signer, err := Open(dir, electionID, now, log)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	pin, learned, err := ServerPin(pctx, dir, addr, pin)
	cancel()
	if err != nil {
		signer.Close()
		return nil, err
	}
	c, err := Dial(addr, pin, electionID, signer.Key(), timeout, now)
	if err != nil {
		signer.Close()
		return nil, err
	}
	return &Session{Client: c, signer: signer, FirstContact: learned}, nil
}

// Signer is the session's chain.
func (s *Session) Signer() *Signer { return s.signer }

// Checkpoint is the log state the server's latest answer came with, or
// nil before any.
func (s *Session) Checkpoint() *doorstepv1.Checkpoint { return s.checkpoint }

// Close closes the connection and releases the chain's lock.
func (s *Session) Close() error {
	return errors.Join(s.Client.Close(), s.signer.Close())
}

// Create sends the election's definition record (the chain's first, signed
// before) and records the answer. Creating an election is the server
// operator's to allow: operatorToken is the token tallyd made. A refusal
// by the server is an error (see Rejected), after the answer is recorded.
func (s *Session) Create(ctx context.Context, def *doorstepv1.SignedRecord, operatorToken string) (*doorstepv1.CreateElectionResponse, error) {
	cctx, cancel := s.call(ctx)
	defer cancel()
	resp, err := s.elec.CreateElection(cctx, &doorstepv1.CreateElectionRequest{Record: def}, callauth.Operator(operatorToken))
	if err != nil {
		return nil, err
	}
	if err := s.signer.Ack([]*doorstepv1.RecordResult{resp.GetResult()}); err != nil {
		return nil, err
	}
	if resp.GetCheckpoint() != nil {
		s.checkpoint = resp.GetCheckpoint()
	}
	if resp.GetResult().GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		return nil, Rejected(resp.GetResult())
	}
	return resp, nil
}

// Send submits records in order, in batches the server takes, records
// each batch's answers before sending the next, and returns the answers
// by record id.
func (s *Session) Send(ctx context.Context, pending []PendingRecord) (map[string]*doorstepv1.RecordResult, error) {
	answers := make(map[string]*doorstepv1.RecordResult, len(pending))
	for len(pending) > 0 {
		n := nextBatch(pending)
		batch := make([]*doorstepv1.SignedRecord, n)
		for i := range n {
			batch[i] = pending[i].Signed()
		}
		cctx, cancel := s.call(ctx)
		resp, err := s.elec.SubmitCommitteeRecords(cctx, &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: s.electionID, Records: batch})
		cancel()
		if err != nil {
			return nil, err
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

// nextBatch says how many of pending (not empty) the next call carries:
// at least one, and within the server's limits.
func nextBatch(pending []PendingRecord) int {
	n, size := 0, 0
	for n < len(pending) && n < batchRecords && (n == 0 || size+len(pending[n].Body) < batchBytes) {
		size += len(pending[n].Body) + len(pending[n].Signature)
		n++
	}
	return n
}

// SignAndSend signs with sign (a Signer method, which persists), sends
// every record not yet answered, and returns the answers to the records
// sign made, in order.
func (s *Session) SignAndSend(ctx context.Context, sign func() ([]*doorstepv1.SignedRecord, error)) ([]*doorstepv1.RecordResult, error) {
	recs, err := sign()
	if err != nil {
		return nil, err
	}
	answers, err := s.Send(ctx, s.signer.Pending())
	if err != nil {
		return nil, err
	}
	out := make([]*doorstepv1.RecordResult, len(recs))
	for i, r := range recs {
		rec, err := signed.Decode(r.GetBody())
		if err != nil {
			return nil, err
		}
		id := rec.GetRecordId()
		if out[i] = answers[id]; out[i] == nil {
			return nil, fmt.Errorf("the server did not answer committee record %s; run the command again to resend it", id)
		}
	}
	return out, nil
}

// Rejected explains the server's refusal of one committee record.
func Rejected(r *doorstepv1.RecordResult) error {
	reason := strings.ToLower(strings.ReplaceAll(strings.TrimPrefix(r.GetReason().String(), "REASON_CODE_"), "_", " "))
	return fmt.Errorf("the server rejected committee record %s (%s): %s", r.GetRecordId(), reason, r.GetMessage())
}

// CheckAccepted returns an error naming every answer that is not an
// acceptance, or nil.
func CheckAccepted(results []*doorstepv1.RecordResult) error {
	var errs []error
	for _, r := range results {
		if r.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
			errs = append(errs, Rejected(r))
		}
	}
	return errors.Join(errs...)
}
