package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/dial"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// This file is the committee's side of the day: the same records the
// committee commands make (internal/cli/committee*.go), signed with a key
// kept in the committee folder by internal/committee, sent straight to the
// server (the committee office has a wired line, not the canvassers' rain).

// rosterChunkUnits matches 'doorstep roster import'.
const rosterChunkUnits = 5000

// chair is the committee at work on one election. Its methods run on one
// goroutine, except tally, which only reads.
type chair struct {
	signer  *committee.Signer
	conn    *grpc.ClientConn
	elec    doorstepv1.ElectionServiceClient
	sync    doorstepv1.SyncServiceClient
	id      string
	now     func() time.Time
	timeout time.Duration
}

// newChair opens the election's chain in the committee folder dir (whose
// key committee.Init made) and a connection to the server at addr whose
// calls it signs.
func newChair(dir, electionID, addr string, now func() time.Time, log *slog.Logger) (*chair, error) {
	signer, err := committee.Open(dir, electionID, now, log)
	if err != nil {
		return nil, err
	}
	creds := &callauth.Credentials{ElectionID: electionID, KeyID: election.CommitteeAuthor, Key: signer.Key(), Now: now, Insecure: true}
	conn, err := dial.New(addr, grpc.WithPerRPCCredentials(creds))
	if err != nil {
		signer.Close()
		return nil, fmt.Errorf("connect to tallyd at %s: %w", addr, err)
	}
	return &chair{signer: signer, conn: conn, elec: doorstepv1.NewElectionServiceClient(conn), sync: doorstepv1.NewSyncServiceClient(conn),
		id: electionID, now: now, timeout: 30 * time.Second}, nil
}

func (c *chair) Close() error {
	return errors.Join(c.conn.Close(), c.signer.Close())
}

func (c *chair) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.timeout)
}

// create signs the definition as the chain's first record and creates the
// election.
func (c *chair) create(ctx context.Context, def *doorstepv1.ElectionDefinition) error {
	recs, err := c.signer.Sign(&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: def}})
	if err != nil {
		return err
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.elec.CreateElection(cctx, &doorstepv1.CreateElectionRequest{Record: recs[0]})
	if err != nil {
		return fmt.Errorf("create the election: %w", err)
	}
	if err := c.signer.Ack([]*doorstepv1.RecordResult{resp.GetResult()}); err != nil {
		return err
	}
	return accepted("create the election", resp.GetResult())
}

// importRoster signs the roster in chunks and sends them.
func (c *chair) importRoster(ctx context.Context, roster *election.Roster) error {
	var chunks []*doorstepv1.CommitteeAction
	all := roster.Units()
	for start := 0; start < len(all); start += rosterChunkUnits {
		part := all[start:min(start+rosterChunkUnits, len(all))]
		chunks = append(chunks, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Roster{Roster: &doorstepv1.RosterChunk{Units: signed.UnitsProto(part)}}})
	}
	h := roster.Hash()
	if _, err := c.signer.SignRoster(committee.Roster{SHA256: h[:], Units: len(all), AreaCenti: roster.TotalArea(), Owners: roster.Headcount()}, chunks...); err != nil {
		return err
	}
	_, err := c.send(ctx, "import the roster")
	return err
}

// submit signs actions after everything signed before and sends them.
func (c *chair) submit(ctx context.Context, what string, actions ...*doorstepv1.CommitteeAction) (*doorstepv1.Checkpoint, error) {
	if _, err := c.signer.Sign(actions...); err != nil {
		return nil, err
	}
	return c.send(ctx, what)
}

// send submits every pending record, records the answers, and fails
// unless the server accepted them all.
func (c *chair) send(ctx context.Context, what string) (*doorstepv1.Checkpoint, error) {
	pending := c.signer.Pending()
	recs := make([]*doorstepv1.SignedRecord, len(pending))
	for i, p := range pending {
		recs[i] = p.Signed()
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.elec.SubmitCommitteeRecords(cctx, &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: c.id, Records: recs})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if err := c.signer.Ack(resp.GetResults()); err != nil {
		return nil, err
	}
	for _, r := range resp.GetResults() {
		if err := accepted(what, r); err != nil {
			return nil, err
		}
	}
	return resp.GetCheckpoint(), nil
}

func accepted(what string, r *doorstepv1.RecordResult) error {
	if r.GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		return fmt.Errorf("%s: the server answered %v (%v): %s", what, r.GetStatus(), r.GetReason(), r.GetMessage())
	}
	return nil
}

// open freezes the imported roster.
func (c *chair) open(ctx context.Context) (*doorstepv1.Checkpoint, error) {
	r := c.signer.State().Roster
	if r == nil {
		return nil, errors.New("open the election: no roster imported")
	}
	return c.submit(ctx, "open the election", &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: r.SHA256}}})
}

// enrollmentCode grants a one-time token on the server, as 'doorstep
// device enroll' does, and returns the code a canvasser joins with. server
// is the address the device reaches (its own flaky link).
func (c *chair) enrollmentCode(ctx context.Context, label, server string) (enrollcode.Code, error) {
	cctx, cancel := c.call(ctx)
	info, err := c.sync.GetServerInfo(cctx, &doorstepv1.GetServerInfoRequest{})
	cancel()
	if err != nil {
		return enrollcode.Code{}, fmt.Errorf("ask the server who it is: %w", err)
	}
	token, err := enrollcode.NewToken(rand.Reader)
	if err != nil {
		return enrollcode.Code{}, err
	}
	hash, err := enrollcode.TokenHash(token)
	if err != nil {
		return enrollcode.Code{}, err
	}
	grant := &doorstepv1.EnrollmentGrant{TokenSha256: hash, Label: label, Expires: timestamppb.New(c.now().Add(time.Hour))}
	if _, err := c.submit(ctx, "enroll "+label, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Enrollment{Enrollment: grant}}); err != nil {
		return enrollcode.Code{}, err
	}
	code := enrollcode.Code{Server: server, ElectionID: c.id, Token: token, Fingerprint: info.GetFingerprint()}
	if err := code.Validate(); err != nil {
		return enrollcode.Code{}, err
	}
	return code, nil
}

// contested lists the contested units and split owners.
func (c *chair) contested(ctx context.Context) ([]*doorstepv1.ContestedUnit, []*doorstepv1.SplitOwner, error) {
	var units []*doorstepv1.ContestedUnit
	var owners []*doorstepv1.SplitOwner
	token := ""
	for {
		cctx, cancel := c.call(ctx)
		resp, err := c.elec.ListContestedUnits(cctx, &doorstepv1.ListContestedUnitsRequest{ElectionId: c.id, PageToken: token, PageSize: 500})
		cancel()
		if err != nil {
			return nil, nil, fmt.Errorf("list contested units: %w", err)
		}
		units = append(units, resp.GetUnits()...)
		owners = append(owners, resp.GetSplitOwners()...)
		if token = resp.GetNextPageToken(); token == "" {
			return units, owners, nil
		}
	}
}

// adjudicate counts one ballot of a contested unit.
func (c *chair) adjudicate(ctx context.Context, unit, recordID, reason string) (*doorstepv1.Checkpoint, error) {
	a := &doorstepv1.Adjudication{Subject: &doorstepv1.Adjudication_Unit{Unit: &doorstepv1.UnitDecision{UnitId: unit, CountedRecordId: recordID}}, Reason: reason}
	return c.submit(ctx, "adjudicate unit "+unit, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: a}})
}

// close closes the election now.
func (c *chair) close(ctx context.Context) (*doorstepv1.Checkpoint, error) {
	return c.submit(ctx, "close the election", &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Close{Close: &doorstepv1.CloseElection{ClosedAt: timestamppb.New(c.now())}}})
}

// tally reads the live tally.
func (c *chair) tally(ctx context.Context) (*doorstepv1.Tally, error) {
	cctx, cancel := c.call(ctx)
	defer cancel()
	resp, err := c.elec.GetTally(cctx, &doorstepv1.GetTallyRequest{ElectionId: c.id})
	if err != nil {
		return nil, fmt.Errorf("get the tally: %w", err)
	}
	return resp.GetTally(), nil
}
