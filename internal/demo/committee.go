package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
)

// This file is the committee's side of the day: the same records the
// committee commands make (internal/cli/committee*.go), signed and sent by
// the same committee.Session, straight to the server (the committee office
// has a wired line, not the canvassers' rain).

// chair is the committee at work on one election. Its methods run on one
// goroutine, except tally, which only reads.
type chair struct {
	*committee.Session
	now func() time.Time
}

// newChair opens the election's chain in the committee folder dir (whose
// key committee.Init made) and a connection to the server at addr whose
// calls it signs.
func newChair(ctx context.Context, dir, electionID, addr, pin string, now func() time.Time, log *slog.Logger) (*chair, error) {
	s, err := committee.OpenSession(ctx, dir, electionID, addr, pin, 30*time.Second, now, log)
	if err != nil {
		return nil, err
	}
	return &chair{Session: s, now: now}, nil
}

// create signs the definition as the chain's first record and creates the
// election.
func (c *chair) create(ctx context.Context, def *doorstepv1.ElectionDefinition, operatorToken string) error {
	recs, err := c.Signer().Sign(&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: def}})
	if err != nil {
		return err
	}
	if _, err := c.Create(ctx, recs[0], operatorToken); err != nil {
		return fmt.Errorf("create the election: %w", err)
	}
	return nil
}

// importRoster signs the roster in chunks and sends them.
func (c *chair) importRoster(ctx context.Context, roster *election.Roster) error {
	r, chunks := committee.RosterActions(roster)
	_, err := c.send(ctx, "import the roster", func() ([]*doorstepv1.SignedRecord, error) { return c.Signer().SignRoster(r, chunks...) })
	return err
}

// submit signs actions after everything signed before and sends them.
func (c *chair) submit(ctx context.Context, what string, actions ...*doorstepv1.CommitteeAction) (*doorstepv1.Checkpoint, error) {
	return c.send(ctx, what, func() ([]*doorstepv1.SignedRecord, error) { return c.Signer().Sign(actions...) })
}

// send signs with sign, submits every pending record, and fails unless
// the server accepted what sign made.
func (c *chair) send(ctx context.Context, what string, sign func() ([]*doorstepv1.SignedRecord, error)) (*doorstepv1.Checkpoint, error) {
	results, err := c.SignAndSend(ctx, sign)
	if err == nil {
		err = committee.CheckAccepted(results)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return c.Checkpoint(), nil
}

// open freezes the imported roster.
func (c *chair) open(ctx context.Context) (*doorstepv1.Checkpoint, error) {
	r := c.Signer().State().Roster
	if r == nil {
		return nil, errors.New("open the election: no roster imported")
	}
	return c.submit(ctx, "open the election", &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: r.SHA256}}})
}

// enrollmentCode grants a one-time token on the server, as 'doorstep
// device enroll' does, and returns the code a canvasser joins with. server
// is the address the device reaches (its own flaky link).
func (c *chair) enrollmentCode(ctx context.Context, label, server string) (enrollcode.Code, error) {
	info, err := c.ServerInfo(ctx)
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
	code := enrollcode.Code{Server: server, ElectionID: c.ElectionID(), Token: token, Fingerprint: info.GetFingerprint(), TLS: c.Pin()}
	if err := code.Validate(); err != nil {
		return enrollcode.Code{}, err
	}
	return code, nil
}

// contested lists the contested units and split owners.
func (c *chair) contested(ctx context.Context) ([]*doorstepv1.ContestedUnit, []*doorstepv1.SplitOwner, error) {
	units, owners, err := c.Contested(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("list contested units: %w", err)
	}
	return units, owners, nil
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
	t, err := c.Tally(ctx)
	if err != nil {
		return nil, fmt.Errorf("get the tally: %w", err)
	}
	return t, nil
}
