package committee

import (
	"context"
	"errors"
	"io"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
)

// Pauses between two WatchTally calls while they fail.
const (
	watchRetryFirst = time.Second
	watchRetryMax   = 30 * time.Second
)

// Watch follows the election's live overview: it calls fn with each
// overview the server's WatchTally stream sends. When the stream ends (the
// server ends each after a while so that the call is signed anew, or the
// connection drops), it calls again with a fresh signature, at once after
// a stream that delivered, after a pause that grows while calls fail, and
// tells retrying why. It returns nil when ctx ends, the server's refusal
// (a revoked key, a wrong election) as it came, or fn's error.
func (c *Client) Watch(ctx context.Context, fn func(*doorstepv1.ElectionOverview) error, retrying func(err error, pause time.Duration)) error {
	pause := watchRetryFirst
	for {
		got, err := c.watchOnce(ctx, fn)
		if ctx.Err() != nil {
			return nil
		}
		var fnErr fnError
		if errors.As(err, &fnErr) {
			return fnErr.error
		}
		if err != nil && client.Classify(ctx, err) == client.Permanent {
			return err
		}
		if got {
			pause = watchRetryFirst
			if err == nil {
				continue // the server's own end of a stream: sign a new call
			}
		}
		if err == nil {
			err = errors.New("the server ended the stream before sending anything")
		}
		if retrying != nil {
			retrying(err, pause)
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		pause = min(2*pause, watchRetryMax)
	}
}

// fnError is the error of Watch's fn, which ends the watch.
type fnError struct{ error }

// watchOnce runs one WatchTally call; got says whether it delivered.
func (c *Client) watchOnce(ctx context.Context, fn func(*doorstepv1.ElectionOverview) error) (got bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := c.elec.WatchTally(ctx, &doorstepv1.WatchTallyRequest{ElectionId: c.electionID})
	if err != nil {
		return false, err
	}
	var devices []*doorstepv1.DeviceSummary // the last device list the server sent
	for {
		resp, err := st.Recv()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = true
		ov := resp.GetOverview()
		if ov == nil {
			return got, errors.New("the server sent a reply with no overview")
		}
		if resp.GetDevicesUnchanged() {
			ov.Devices = devices
		} else {
			devices = ov.Devices
		}
		if err := fn(ov); err != nil {
			return got, fnError{err}
		}
	}
}
