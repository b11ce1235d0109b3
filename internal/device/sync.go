package device

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// SyncOptions tune sync. Zero values pick the defaults in withDefaults.
type SyncOptions struct {
	// BatchSize and BatchBytes bound one PushRecords call.
	BatchSize  int
	BatchBytes int
	// CallTimeout is the deadline of every call to the server.
	CallTimeout time.Duration
	// PageSize is the ListUnitStatus page size.
	PageSize int32
	// BackoffBase and BackoffMax bound the wait between failed attempts:
	// attempt n waits a random time between half and all of
	// min(BackoffMax, BackoffBase·2ⁿ).
	BackoffBase time.Duration
	BackoffMax  time.Duration
	// Jitter draws the random part of each wait; seeded from the clock
	// when nil. Tests pass a fixed seed.
	Jitter *mathrand.Rand
	// Sleep waits between attempts of Sync, returning early with the
	// context's error; a timer when nil. Tests pass one that records the
	// waits and returns at once.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (o SyncOptions) withDefaults() SyncOptions {
	if o.BatchSize <= 0 {
		o.BatchSize = 500
	}
	if o.BatchBytes <= 0 {
		// Half the message limit leaves room for the envelope.
		o.BatchBytes = signed.MaxMessageBytes / 2
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 15 * time.Second
	}
	if o.PageSize <= 0 {
		o.PageSize = 1000
	}
	if o.BackoffBase <= 0 {
		o.BackoffBase = 500 * time.Millisecond
	}
	if o.BackoffMax <= 0 {
		o.BackoffMax = time.Minute
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	return o
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// maxStatusPages bounds one sync's ListUnitStatus loop against a server
// that never stops answering.
const maxStatusPages = 10_000

// ErrServerKeyChanged means the server no longer has the key it had when
// the device joined.
var ErrServerKeyChanged = errors.New("the server's key is not the one this device joined with: this may not be the committee's server; do not sync and tell the election committee")

// ErrSplitView means the server showed this device a ballot log that does
// not extend the one it showed before: it cannot prove that its new signed
// checkpoint grows from the one the device holds. A server that shows two
// histories may be showing the committee or auditors a different count.
// Sync refuses to go on: nothing is sent, every record stays on the device
// and the checkpoint held before is kept as evidence. It wraps
// ballotlog.ErrSplitView.
var ErrSplitView error = splitViewError{}

type splitViewError struct{}

func (splitViewError) Error() string {
	return "the server showed a different history of the ballot log than before: do not trust it; tell the election committee"
}

func (splitViewError) Unwrap() error { return ballotlog.ErrSplitView }

// ErrBadCheckpoint means the server sent a ballot log checkpoint that the
// key this device joined with did not sign, or that does not say what its
// signed text says. Sync refuses it and stops.
var ErrBadCheckpoint = errors.New("the server sent a ballot log checkpoint its key did not sign: this may not be the committee's server; do not sync and tell the election committee")

// SyncReport says what one Sync did.
type SyncReport struct {
	// Attempts is how many passes Sync made.
	Attempts int
	// Pushed is how many records were sent; Answered how many got an
	// answer, counted by status in Statuses.
	Pushed   int
	Answered int
	Statuses map[doorstepv1.RecordStatus]int
	// Rejected lists this sync's rejections with the server's reasons.
	Rejected []Answer
	// Pending is the outbox after the sync.
	Pending int
	// ServerHighSeq is the highest author_seq the server held, with no
	// gap, before the push.
	ServerHighSeq uint64
	// CommitteeRecords is how many new committee records arrived.
	CommitteeRecords int
	// UnitsUpdated is how many unit statuses arrived.
	UnitsUpdated int
	// Checkpoint is the latest signed checkpoint of the ballot log this
	// sync verified and kept.
	Checkpoint *doorstepv1.Checkpoint
	// Warnings are things worth a person's attention that did not stop the
	// sync (an answer for a record not sent).
	Warnings    []string
	ClockOffset time.Duration
}

func (r *SyncReport) add(res *doorstepv1.RecordResult, seq uint64) {
	if r.Statuses == nil {
		r.Statuses = make(map[doorstepv1.RecordStatus]int)
	}
	r.Answered++
	r.Statuses[res.GetStatus()]++
	if res.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
		r.Rejected = append(r.Rejected, Answer{Seq: seq, Result: res})
	}
}

// Sync talks to the server until everything is pushed and the walk list is
// fresh, retrying failures with jittered exponential backoff. attempts
// bounds the passes (0: until ctx ends). It returns the last pass's error,
// a *client.UnreachableError when the server could not be reached or did
// not answer in time (client.Unreachable says so); everything recorded
// stays on the device and a later sync resumes. Nothing leaves
// the outbox before the server answers for it, so a failed or interrupted
// sync costs at most a resend.
func (d *Device) Sync(ctx context.Context, attempts int) (SyncReport, error) {
	d.syncMu.Lock()
	defer d.syncMu.Unlock()
	var rep SyncReport
	step := 0 // the backoff's step: back to the start after a pass that got answers
	for n := 0; ; n++ {
		rep.Attempts++
		d.reconnectNow()
		answered := rep.Answered
		err := d.syncOnce(ctx, &rep)
		d.noteAttempt(err)
		if err == nil || !client.Retryable(ctx, err) || (attempts > 0 && n+1 >= attempts) {
			d.finishReport(&rep)
			return rep, err
		}
		if rep.Answered > answered {
			step = 0 // the link works at times: retry soon, not after a minute
		}
		wait := d.backoff(step)
		step++
		d.log.Info("sync failed; retrying", "err", err, "wait", wait)
		if serr := d.sopt.Sleep(ctx, wait); serr != nil {
			d.finishReport(&rep)
			return rep, err
		}
	}
}

// reconnectNow makes the next call try to connect at once: gRPC's own
// reconnect backoff would otherwise fail calls fast for up to two minutes
// after the link came back, and this package already waited its own.
func (d *Device) reconnectNow() {
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.conn != nil {
		d.conn.ResetConnectBackoff()
	}
}

// RunSync syncs in the background until ctx ends: at once, whenever kick
// receives (a record was saved), every interval, and after failures with
// backoff. report, if not nil, is called from this goroutine after each
// pass. The caller owns the goroutine that runs RunSync and stops it by
// cancelling ctx.
func (d *Device) RunSync(ctx context.Context, interval time.Duration, kick <-chan struct{}, report func(SyncReport, error)) {
	failures := 0
	for {
		rep, err := d.Sync(ctx, 1)
		if ctx.Err() != nil {
			return
		}
		if report != nil {
			report(rep, err)
		}
		wait := interval
		switch {
		case err == nil:
			failures = 0
		case client.Retryable(ctx, err):
			wait = min(d.backoff(failures), interval)
			failures++
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-kick:
		case <-t.C:
		}
		t.Stop()
	}
}

// backoff is the wait after the nth failure (from 0): a random time between
// half and all of min(BackoffMax, BackoffBase·2ⁿ).
func (d *Device) backoff(n int) time.Duration {
	ceiling := d.sopt.BackoffMax
	if n < 62 && d.sopt.BackoffBase <= ceiling>>n {
		ceiling = d.sopt.BackoffBase << n
	}
	half := ceiling / 2
	d.jitterMu.Lock()
	defer d.jitterMu.Unlock()
	return half + time.Duration(d.jitter.Int64N(int64(ceiling-half)+1))
}

// callErr turns a failed call's error into one for people: a
// *client.UnreachableError when the server could not be reached in time,
// else the server's own message, keeping the status for errors.As.
func callErr(ctx context.Context, server, what string, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if client.Unreachable(err) {
		return &client.UnreachableError{Server: server, Err: err}
	}
	return &callError{what: what, err: err}
}

type callError struct {
	what string
	err  error
}

func (e *callError) Error() string {
	s := status.Convert(e.err)
	return fmt.Sprintf("%s: the server says (%s): %s", e.what, s.Code(), s.Message())
}

func (e *callError) Unwrap() error { return e.err }

// callCtx bounds one call to the server.
func (d *Device) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.sopt.CallTimeout)
}

// creds signs calls as the device. The signed time is the device's clock
// corrected by the last measured offset, so a phone whose clock drifted
// still falls within the server's window.
func (d *Device) creds(electionID, deviceID string, key ed25519.PrivateKey) *callauth.Signer {
	return &callauth.Signer{
		ElectionID: electionID,
		KeyID:      deviceID,
		Key:        key,
		Now:        func() time.Time { return d.now().Add(d.clockOffset()) },
	}
}

func (d *Device) clockOffset() time.Duration {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.offset
}

// measureOffset asks the server for its time and key, and stores the
// offset: the server's clock minus the device's at the middle of the call.
func (d *Device) measureOffset(ctx context.Context, cl doorstepv1.SyncServiceClient, enr Enrollment) (time.Duration, error) {
	cctx, cancel := d.callCtx(ctx)
	defer cancel()
	t0 := d.now()
	info, err := cl.GetServerInfo(cctx, &doorstepv1.GetServerInfoRequest{})
	t1 := d.now()
	if err != nil {
		return 0, callErr(ctx, enr.Server, "ask the server for its identity", err)
	}
	if !bytes.Equal(info.GetServerPublicKey(), enr.ServerKey) {
		return 0, ErrServerKeyChanged
	}
	if !info.GetServerTime().IsValid() {
		return 0, nil
	}
	server := info.GetServerTime().AsTime()
	offset := server.Sub(t0.Add(t1.Sub(t0) / 2)).Round(time.Millisecond)
	d.mu.Lock()
	d.offset = offset
	d.mu.Unlock()
	// Records made after this sort after the server's present, even if
	// this device's clock is behind.
	d.clock.Observe(uint64(server.UnixMilli()) << 16)
	err = d.st.write(func(w *wtx) error {
		si, err := w.syncInfo()
		if err != nil {
			return err
		}
		si.ClockOffsetMS, si.OffsetKnown = offset.Milliseconds(), true
		if err := w.putSyncInfo(si); err != nil {
			return err
		}
		return w.putHLC(d.clock.Last())
	})
	if err != nil {
		return 0, fmt.Errorf("save clock offset: %w", err)
	}
	return offset, nil
}

// syncOnce is one pass: check the server's key and that its ballot log
// extends the one it showed before, refresh the election, push what the
// server lacks, pull unit status.
func (d *Device) syncOnce(ctx context.Context, rep *SyncReport) error {
	cl, enr, err := d.client()
	if err != nil {
		return err
	}
	offset, err := d.measureOffset(ctx, cl, enr)
	if err != nil {
		return err
	}
	rep.ClockOffset = offset
	// Before anything else: a server that shows a different history is not
	// sent a single record.
	if err := d.checkLog(ctx, enr, rep); err != nil {
		return err
	}
	added, err := d.refreshElection(ctx, cl, enr)
	if err != nil {
		return err
	}
	rep.CommitteeRecords += added
	revoked, err := d.push(ctx, cl, enr, rep)
	if err != nil {
		return err
	}
	if err := d.pullStatus(ctx, cl, enr, rep); err != nil {
		return err
	}
	if revoked {
		return ErrRevoked
	}
	return nil
}

// refreshElection fetches the committee records and stores any new ones
// after checking them against what the device holds.
func (d *Device) refreshElection(ctx context.Context, cl doorstepv1.SyncServiceClient, enr Enrollment) (int, error) {
	cctx, cancel := d.callCtx(ctx)
	defer cancel()
	resp, err := cl.GetElection(cctx, &doorstepv1.GetElectionRequest{ElectionId: enr.ElectionID}, d.callOpts()...)
	if err != nil {
		return 0, callErr(ctx, enr.Server, "fetch the election", err)
	}
	d.mu.RLock()
	var pinned ed25519.PublicKey
	if d.def != nil {
		pinned = d.def.CommitteeKey
	}
	d.mu.RUnlock()
	v, err := verifyElection(enr.ElectionID, resp.GetCommitteeRecords(), pinned)
	if err != nil {
		return 0, err
	}
	var added int
	if err := d.st.write(func(w *wtx) error {
		added, err = w.storeElection(v)
		return err
	}); err != nil {
		return 0, fmt.Errorf("store the election: %w", err)
	}
	d.mu.Lock()
	d.def = v.def
	if v.roster != nil {
		d.roster = v.roster
	}
	d.mu.Unlock()
	return added, nil
}

// push sends every record the server lacks, in batches, and stores each
// answer. It reports whether the committee has revoked the device.
func (d *Device) push(ctx context.Context, cl doorstepv1.SyncServiceClient, enr Enrollment, rep *SyncReport) (revoked bool, err error) {
	// The device says how much it holds unanswered, so that the committee
	// sees who must sync before the close.
	var pending uint64
	if err := d.st.read(func(r *rtx) error {
		ps, err := r.pendingSeqs()
		pending = uint64(len(ps))
		return err
	}); err != nil {
		return false, fmt.Errorf("read the outbox: %w", err)
	}
	cctx, cancel := d.callCtx(ctx)
	st, err := cl.GetDeviceState(cctx, &doorstepv1.GetDeviceStateRequest{ElectionId: enr.ElectionID, DeviceId: enr.DeviceID, Unsent: &pending}, d.callOpts()...)
	cancel()
	if err != nil {
		return false, callErr(ctx, enr.Server, "ask the server what it holds from this device", err)
	}
	rep.ServerHighSeq = st.GetHighSeq()
	var seqs []uint64
	err = d.st.read(func(r *rtx) error {
		var err error
		seqs, err = toSend(r, st)
		return err
	})
	if err != nil {
		return false, err
	}
	for len(seqs) > 0 {
		var batch []*doorstepv1.SignedRecord
		var batchSeqs []uint64
		err := d.st.read(func(r *rtx) error {
			size := 0
			for _, seq := range seqs {
				sr, ok, err := r.record(seq)
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("%w: record %d is missing", errCorrupt, seq)
				}
				n := len(sr.GetBody()) + len(sr.GetSignature()) + 16
				if len(batch) > 0 && (len(batch) >= d.sopt.BatchSize || size+n > d.sopt.BatchBytes) {
					break
				}
				batch, batchSeqs, size = append(batch, sr), append(batchSeqs, seq), size+n
			}
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("read the outbox: %w", err)
		}
		cctx, cancel := d.callCtx(ctx)
		after := uint64(len(seqs) - len(batch))
		resp, err := cl.PushRecords(cctx, &doorstepv1.PushRecordsRequest{
			ElectionId: enr.ElectionID,
			Records:    batch,
			DeviceTime: timestamppb.New(d.now()),
			Unsent:     &after,
		}, d.callOpts()...)
		cancel()
		if err != nil {
			return false, callErr(ctx, enr.Server, "send records", err)
		}
		rep.Pushed += len(batch)
		// An answer whose checkpoint does not extend the log held is no
		// acknowledgement: the batch stays in the outbox.
		if cp := resp.GetCheckpoint(); cp != nil {
			if err := d.verifyCheckpoint(ctx, enr, cp); err != nil {
				return false, err
			}
		}
		if err := d.storeAnswers(batchSeqs, batch, resp, rep); err != nil {
			return false, err
		}
		seqs = seqs[len(batch):]
	}
	return st.GetRevoked(), nil
}

// toSend lists, in chain order, the records to push: the outbox, the gaps
// the server reports, and everything after the highest seq the server
// holds (records it answered for before but has since lost). It refuses to
// push when the server's view of this device's chain is not a prefix of the
// device's own.
func toSend(r *rtx, st *doorstepv1.GetDeviceStateResponse) ([]uint64, error) {
	head, err := r.chain()
	if err != nil {
		return nil, err
	}
	high, held := st.GetHighSeq(), max(st.GetHighSeq(), st.GetMaxSeq())
	if held > head.Seq {
		return nil, fmt.Errorf("the server holds record %d but this device has made only %d: %w", held, head.Seq, ErrChainFork)
	}
	if high > 0 && len(st.GetHighHash()) > 0 {
		sr, ok, err := r.record(high)
		if err != nil {
			return nil, err
		}
		if h := signed.BodyHash(sr.GetBody()); !ok || !bytes.Equal(h[:], st.GetHighHash()) {
			return nil, fmt.Errorf("record %d: %w", high, ErrChainFork)
		}
	}
	seqs, err := r.pendingSeqs()
	if err != nil {
		return nil, err
	}
	for _, s := range st.GetMissingSeqs() {
		if s > 0 && s <= head.Seq {
			seqs = append(seqs, s)
		}
	}
	for s := held + 1; s <= head.Seq; s++ {
		seqs = append(seqs, s)
	}
	slices.Sort(seqs)
	return slices.Compact(seqs), nil
}

// storeAnswers records the server's answers for one batch, and the batch's
// checkpoint once push has verified it, in one transaction: each answered
// record leaves the outbox as its answer is stored. A record with no answer
// stays in the outbox.
func (d *Device) storeAnswers(seqs []uint64, batch []*doorstepv1.SignedRecord, resp *doorstepv1.PushRecordsResponse, rep *SyncReport) error {
	bySeq := make(map[string]uint64, len(batch))
	for i, sr := range batch {
		rec, err := signed.Decode(sr.GetBody())
		if err != nil {
			return fmt.Errorf("record %d: %w: %w", seqs[i], errCorrupt, err)
		}
		bySeq[rec.GetRecordId()] = seqs[i]
	}
	var warnings []string
	err := d.st.write(func(w *wtx) error {
		for _, res := range resp.GetResults() {
			seq, ok := bySeq[res.GetRecordId()]
			if !ok || res.GetStatus() == doorstepv1.RecordStatus_RECORD_STATUS_UNSPECIFIED {
				warnings = append(warnings, fmt.Sprintf("the server answered for record %q, which this device did not send in that batch; ignored", res.GetRecordId()))
				continue
			}
			if err := w.ack(seq, res); err != nil {
				return err
			}
			rep.add(res, seq)
		}
		if cp := resp.GetCheckpoint(); cp != nil {
			// push verified cp against the held checkpoint already.
			return keepCheckpoint(w, cp, rep)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store the server's answers: %w", err)
	}
	for _, msg := range warnings {
		d.log.Warn(msg)
	}
	rep.Warnings = append(rep.Warnings, warnings...)
	return nil
}

// checkLog fetches the server's latest checkpoint and keeps it once
// verifyCheckpoint has shown that it extends the one held.
func (d *Device) checkLog(ctx context.Context, enr Enrollment, rep *SyncReport) error {
	ac, err := d.auditClient()
	if err != nil {
		return err
	}
	cctx, cancel := d.callCtx(ctx)
	resp, err := ac.GetCheckpoint(cctx, &doorstepv1.GetCheckpointRequest{ElectionId: enr.ElectionID}, d.callOpts()...)
	cancel()
	if err != nil {
		return callErr(ctx, enr.Server, "fetch the ballot log checkpoint", err)
	}
	cp := resp.GetCheckpoint()
	if err := d.verifyCheckpoint(ctx, enr, cp); err != nil {
		return err
	}
	if err := d.st.write(func(w *wtx) error { return keepCheckpoint(w, cp, rep) }); err != nil {
		return fmt.Errorf("store the ballot log checkpoint: %w", err)
	}
	return nil
}

// keepCheckpoint stores a verified checkpoint when it is larger than the
// one held; one of the same size is the same log, as verification showed.
func keepCheckpoint(w *wtx, cp *doorstepv1.Checkpoint, rep *SyncReport) error {
	held, err := w.checkpoint()
	if err != nil {
		return err
	}
	if held != nil && cp.GetSize() <= held.GetSize() {
		rep.Checkpoint = held
		return nil
	}
	rep.Checkpoint = cp
	return w.putCheckpoint(cp)
}

// verifyCheckpoint checks that cp is signed by the server key pinned at
// join for this election's log, and that the log it describes extends the
// one in the checkpoint the device holds, with a consistency proof from
// the server. The first checkpoint a device sees is trusted once its
// signature checks. It returns an error wrapping ErrSplitView when the two
// checkpoints describe different histories, ErrBadCheckpoint when cp does
// not verify, and the call's error when the server gives no proof. It
// writes nothing.
func (d *Device) verifyCheckpoint(ctx context.Context, enr Enrollment, cp *doorstepv1.Checkpoint) error {
	vkey, err := logVerifierKey(enr, cp)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	newer, err := ballotlog.VerifyCheckpoint(cp, vkey)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadCheckpoint, err)
	}
	var held *doorstepv1.Checkpoint
	if err := d.st.read(func(r *rtx) error {
		held, err = r.checkpoint()
		return err
	}); err != nil {
		return fmt.Errorf("read the ballot log checkpoint held: %w", err)
	}
	if held == nil {
		return nil
	}
	older, err := ballotlog.VerifyCheckpoint(held, vkey)
	if err != nil {
		// The device stored it; only a damaged file or an old checkpoint
		// from before verification lands here.
		return fmt.Errorf("the ballot log checkpoint this device holds does not verify with the server key it joined with: %w: %w", errCorrupt, err)
	}
	var proof tlog.TreeProof
	if older.N > 0 && older.N < newer.N {
		if proof, err = d.consistencyProof(ctx, enr, older.N, newer.N); err != nil {
			return err
		}
	}
	if err := ballotlog.CheckConsistency(older, newer, proof); err != nil {
		if !errors.Is(err, ballotlog.ErrSplitView) {
			return err
		}
		d.log.Error("the server's ballot log does not extend the one it showed this device before; refusing to sync",
			"server", enr.Server, "held_size", older.N, "held_root", older.Hash, "shown_size", newer.N, "shown_root", newer.Hash, "err", err)
		return fmt.Errorf("%w (this device keeps the server's signed checkpoint of %d entries, root %v; the server now shows %d entries, root %v)",
			ErrSplitView, older.N, older.Hash, newer.N, newer.Hash)
	}
	return nil
}

// consistencyProof asks the server to prove that its log of oldSize
// entries is a prefix of its log of newSize entries.
func (d *Device) consistencyProof(ctx context.Context, enr Enrollment, oldSize, newSize int64) (tlog.TreeProof, error) {
	ac, err := d.auditClient()
	if err != nil {
		return nil, err
	}
	cctx, cancel := d.callCtx(ctx)
	resp, err := ac.GetConsistencyProof(cctx, &doorstepv1.GetConsistencyProofRequest{
		ElectionId: enr.ElectionID, OldSize: uint64(oldSize), NewSize: uint64(newSize),
	}, d.callOpts()...)
	cancel()
	if err != nil {
		return nil, callErr(ctx, enr.Server, "ask the server to prove its ballot log grew from the one it showed before", err)
	}
	proof := make(tlog.TreeProof, len(resp.GetProof()))
	for i, h := range resp.GetProof() {
		if len(h) != len(proof[i]) {
			// Not a proof of anything: CheckConsistency then reports the
			// split view with both checkpoints.
			return tlog.TreeProof{}, nil
		}
		copy(proof[i][:], h)
	}
	return proof, nil
}

// logVerifierKey is the note verifier key for this election's log built
// from the server key pinned at join, never from what the server sends now.
// A device enrolled before Enroll named the log origin takes the origin
// from the checkpoint; the pinned key must still have signed it.
func logVerifierKey(enr Enrollment, cp *doorstepv1.Checkpoint) (string, error) {
	origin := enr.LogOrigin
	if origin == "" {
		origin = cp.GetOrigin()
	}
	vkey, err := note.NewEd25519VerifierKey(origin, ed25519.PublicKey(enr.ServerKey))
	if err != nil {
		return "", fmt.Errorf("verifier key for log %q: %w", origin, err)
	}
	return vkey, nil
}

// auditClient returns the AuditService client on the connection client
// opened.
func (d *Device) auditClient() (doorstepv1.AuditServiceClient, error) {
	if _, _, err := d.client(); err != nil {
		return nil, err
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.conn == nil {
		return nil, ErrClosed
	}
	return doorstepv1.NewAuditServiceClient(d.conn), nil
}

// pullStatus reads unit status changed after the stored cursor, page by
// page, storing each page and the cursor after it in one transaction.
func (d *Device) pullStatus(ctx context.Context, cl doorstepv1.SyncServiceClient, enr Enrollment, rep *SyncReport) error {
	var token string
	if err := d.st.read(func(r *rtx) error { token = r.cursor(); return nil }); err != nil {
		return err
	}
	for range maxStatusPages {
		cctx, cancel := d.callCtx(ctx)
		resp, err := cl.ListUnitStatus(cctx, &doorstepv1.ListUnitStatusRequest{
			ElectionId: enr.ElectionID, PageToken: token, PageSize: d.sopt.PageSize,
		}, d.callOpts()...)
		cancel()
		if err != nil {
			return callErr(ctx, enr.Server, "fetch the walk list", err)
		}
		next := resp.GetNextPageToken()
		err = d.st.write(func(w *wtx) error {
			for _, u := range resp.GetUnits() {
				if election.CheckID("unit_id", u.GetUnitId()) != nil {
					continue
				}
				if err := w.putUnitStatus(u); err != nil {
					return err
				}
			}
			if next == "" {
				return nil
			}
			return w.putCursor(next)
		})
		if err != nil {
			return fmt.Errorf("store the walk list: %w", err)
		}
		rep.UnitsUpdated += len(resp.GetUnits())
		if len(resp.GetUnits()) == 0 || next == "" || next == token {
			return nil
		}
		token = next
	}
	return nil
}

// noteAttempt records when sync last ran and how it ended.
func (d *Device) noteAttempt(syncErr error) {
	now := d.now()
	err := d.st.write(func(w *wtx) error {
		si, err := w.syncInfo()
		if err != nil {
			return err
		}
		si.LastAttempt = now
		si.LastError = ""
		if syncErr != nil {
			si.LastError = syncErr.Error()
		} else {
			si.LastSync = now
		}
		return w.putSyncInfo(si)
	})
	if err != nil {
		d.log.Warn("could not note the sync attempt", "err", err)
	}
}

func (d *Device) finishReport(rep *SyncReport) {
	_ = d.st.read(func(r *rtx) error {
		rep.Pending = r.pendingCount()
		return nil
	})
}
