package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
)

// auditSource reads an election for record.Export over gRPC. Its calls
// carry the committee's call signature (set on the connection).
type auditSource struct {
	audit      doorstepv1.AuditServiceClient
	elections  doorstepv1.ElectionServiceClient
	electionID string
	// live exports the live tally (committee only) instead of the
	// published one, before the election is closed.
	live bool
	// timeout bounds each unary call; streamTimeout the whole log stream.
	timeout, streamTimeout time.Duration
	// retries is how many times in a row a broken log stream is resumed;
	// resumeWait is the wait before the first resume, doubling after each
	// one that brought nothing.
	retries    int
	resumeWait time.Duration
}

func (s *auditSource) Tally(ctx context.Context) ([]byte, *doorstepv1.Checkpoint, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if s.live {
		resp, err := s.elections.GetTally(ctx, &doorstepv1.GetTallyRequest{ElectionId: s.electionID})
		if err != nil {
			return nil, nil, fmt.Errorf("live tally: %w", err)
		}
		return resp.GetTally().GetCanonicalJson(), resp.GetTally().GetCheckpoint(), nil
	}
	resp, err := s.audit.GetPublishedTally(ctx, &doorstepv1.GetPublishedTallyRequest{ElectionId: s.electionID})
	if status.Code(err) == codes.FailedPrecondition {
		return nil, nil, fmt.Errorf("%s (to export the record as it stands now, add --live)", status.Convert(err).Message())
	}
	if err != nil {
		return nil, nil, err
	}
	return resp.GetTally().GetCanonicalJson(), resp.GetTally().GetCheckpoint(), nil
}

func (s *auditSource) VerifierKey(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	resp, err := s.audit.GetCheckpoint(ctx, &doorstepv1.GetCheckpointRequest{ElectionId: s.electionID})
	if err != nil {
		return "", err
	}
	return resp.GetVerifierKey(), nil
}

// LogEntries streams the entries, resuming after the last one received
// when the stream breaks in a way worth retrying (client.Retryable: a
// dropped link costs a reconnect, not the whole download).
func (s *auditSource) LogEntries(ctx context.Context, start, end int64, fn func(idx int64, entry []byte) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.streamTimeout)
	defer cancel()
	next := start
	for failures := 0; next < end; failures++ {
		before := next
		err := s.stream(ctx, &next, end, fn)
		if err == nil {
			break
		}
		if next > before {
			failures = 0 // progress: the link is flaky, not down
		}
		if !client.Retryable(ctx, err) || failures >= s.retries {
			return err
		}
		if s.pause(ctx, failures) != nil {
			return err
		}
	}
	if next != end {
		return fmt.Errorf("the server ended the log at entry %d; %d were asked for", next, end)
	}
	return nil
}

// pause waits before a resume after failures failures in a row (from 0):
// resumeWait·2^failures, at most 32 times resumeWait, or until ctx ends.
func (s *auditSource) pause(ctx context.Context, failures int) error {
	t := time.NewTimer(s.resumeWait << min(failures, 5))
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *auditSource) stream(ctx context.Context, next *int64, end int64, fn func(int64, []byte) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := s.audit.StreamLogEntries(ctx, &doorstepv1.StreamLogEntriesRequest{ElectionId: s.electionID, Start: uint64(*next), End: uint64(end)})
	if err != nil {
		return err
	}
	for {
		m, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if m.GetIndex() != uint64(*next) {
			return fmt.Errorf("the server sent entry %d where entry %d belongs", m.GetIndex(), *next)
		}
		if err := fn(*next, m.GetEntry()); err != nil {
			return err
		}
		*next++
	}
}
