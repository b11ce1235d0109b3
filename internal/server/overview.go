package server

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// The committee's day: the overview it watches, its devices and the
// residents' comments.

// DefaultWatchInterval is the least time between two overviews of an
// election: changes in between are coalesced into the next.
const DefaultWatchInterval = 50 * time.Millisecond

// DefaultDevicesInterval is the least time between two device lists of an
// election: newer rows wait for the next. Each device's row changes at
// each of its syncs, and on a busy day the list is most of an overview's
// bytes, while people read last sync times and counts on a scale of
// seconds, not of the tally's 50 ms.
const DefaultDevicesInterval = time.Second

// watchLimit ends a watch after a while, so that its signed call cannot
// outlive the caller's access for long; the watcher signs a new call.
const watchLimit = 10 * time.Minute

var electionStates = map[rules.State]doorstepv1.ElectionState{
	rules.StateDefined:   doorstepv1.ElectionState_ELECTION_STATE_DEFINED,
	rules.StateOpen:      doorstepv1.ElectionState_ELECTION_STATE_OPEN,
	rules.StateClosed:    doorstepv1.ElectionState_ELECTION_STATE_CLOSED,
	rules.StateCertified: doorstepv1.ElectionState_ELECTION_STATE_CERTIFIED,
}

func timeProto(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func statusProto(st store.Status) *doorstepv1.ElectionStatus {
	return &doorstepv1.ElectionStatus{
		State: electionStates[st.State], OpenedAt: timeProto(st.OpenedAt), ClosedAt: timeProto(st.ClosedAt),
		CertifiedAt: timeProto(st.CertifiedAt), SyncDeadline: timeProto(st.SyncDeadline), ObjectionEnds: timeProto(st.ObjectionEnds),
	}
}

func deviceProto(d store.Device) *doorstepv1.DeviceSummary {
	return &doorstepv1.DeviceSummary{
		DeviceId: d.ID, Label: d.Label, EnrolledAt: timeProto(d.EnrolledAt), LastSync: timeProto(d.LastSync),
		RecordsHeld: d.RecordsHeld, HighSeq: d.HighSeq, Gaps: d.Gaps, Revoked: d.Revoked,
		Unsent: d.Unsent, UnsentKnown: d.UnsentKnown, ClockOffsetMs: d.ClockOffset.Milliseconds(),
	}
}

func overviewProto(o *store.Overview) *doorstepv1.ElectionOverview {
	out := &doorstepv1.ElectionOverview{Tally: TallyProto(o.Tally, o.Checkpoint), Status: statusProto(o.Status), SplitOwners: uint64(o.SplitOwners)}
	for _, b := range o.Buildings {
		out.Buildings = append(out.Buildings, &doorstepv1.BuildingTurnout{Building: b.Name, Units: b.Units, Area: b.Area,
			UnitsCounted: b.Counted, AreaCounted: b.AreaCounted, UnitsHeld: b.Held})
	}
	for _, d := range o.Devices {
		out.Devices = append(out.Devices, deviceProto(d))
	}
	return out
}

// Overviews is the one source of the live overview for everyone who
// watches an election: the gRPC WatchTally stream and the browser
// dashboard. Per election watched, one goroutine (a feed) reads the
// overview after each change, at most once per Interval, and publishes
// it; every watcher sends the latest publication. A thousand watchers
// cost one read per change, not a thousand, and ingest never waits on a
// watcher: a commit only closes a channel. A feed runs while its election
// has watchers, and stops with the last.
//
// The device list is published at most once per DevicesInterval, and
// at most two intervals after it changed; in between, an overview
// carries the list last published, and a stream leaves it out of a reply
// when its watcher already has it.
type Overviews struct {
	store *store.Store
	// Interval is the least time between two overviews of an election:
	// changes in between are coalesced into the next.
	Interval time.Duration
	// DevicesInterval is the least time between two device lists of an
	// election.
	DevicesInterval time.Duration

	mu    sync.Mutex
	feeds map[string]*feed // guarded by mu

	open atomic.Int64 // watches running, of every election
}

// Open is the number of watches running now: WatchTally streams and
// dashboard pages, of every election.
func (o *Overviews) Open() int64 { return o.open.Load() }

// feed is one election's publisher.
type feed struct {
	// waiters are its watchers, guarded by Overviews.mu: replaced, never
	// modified, so that a round can range over them unlocked.
	waiters []*waiter
	cancel  context.CancelFunc
	done    chan struct{} // closed when the goroutine has ended
	ready   chan struct{} // closed at the first publication
	latest  atomic.Pointer[publication]
}

// waiter is one watcher as its feed wakes it.
type waiter struct {
	// wake holds the round that woke the watcher until the watcher takes
	// it: one at most, so a watcher still sending is not woken twice.
	wake chan *round
}

// A publication's watchers are woken sendWindow at a time: each, once it
// has sent, wakes the next. Woken all at once, a thousand of them (and
// the connection writer each send wakes) fill the runtime's run queues,
// and the store's commit goroutine, preempted in the middle of a group,
// waits behind the whole fan-out to run again. A round of a thousand
// then takes tens of milliseconds, so no single deadline tells a slow
// round from a stuck one (a watcher whose send is stuck, its
// connection's flow-control window full, holds its place in the window):
// every stallWait the round checks whether it has woken anyone since the
// last check, and if not wakes every watcher left at once. So does a
// watcher that leaves as it is woken.
const (
	sendWindow = 2
	stallWait  = 10 * time.Millisecond
)

// round is one publication's wake-up of its watchers.
type round struct {
	ws    []*waiter
	start int          // where in ws the round starts, so that no watcher is always the last
	next  atomic.Int64 // how many of ws the round has reached

	mu      sync.Mutex
	stall   *time.Timer // checks the round's progress every stallWait
	seen    int64       // next at the last check
	stopped bool
}

// wakeNext wakes the round's next watcher that is not still sending an
// older publication (which takes the latest when done), if any is left.
func (r *round) wakeNext() {
	for {
		i := int(r.next.Add(1)) - 1
		if i >= len(r.ws) {
			return
		}
		select {
		case r.ws[(r.start+i)%len(r.ws)].wake <- r:
			return
		default:
		}
	}
}

// check wakes every watcher the round has not reached if it has woken
// none since the last check, and else checks again after stallWait.
func (r *round) check() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if n := r.next.Load(); n == r.seen {
		for r.next.Load() < int64(len(r.ws)) {
			r.wakeNext()
		}
	} else {
		r.seen = n
	}
	if r.next.Load() < int64(len(r.ws)) {
		r.stall.Reset(stallWait)
	}
}

// stop ends the round's checks; the watchers it has woken still wake the
// next.
func (r *round) stop() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	r.stall.Stop()
}

// wakeAll starts f's round number n, which wakes every watcher to send
// the latest publication, and returns it.
func (o *Overviews) wakeAll(f *feed, n int) *round {
	o.mu.Lock()
	r := &round{ws: f.waiters}
	o.mu.Unlock()
	if len(r.ws) == 0 {
		return nil
	}
	r.start = n % len(r.ws)
	r.mu.Lock()
	defer r.mu.Unlock()
	for range min(sendWindow, len(r.ws)) {
		r.wakeNext()
	}
	r.stall = time.AfterFunc(stallWait, r.check)
	return r
}

// publication is one overview as published, or the error reading it.
type publication struct {
	ov  *doorstepv1.ElectionOverview
	err error
	// devices numbers ov's device list: publications with the same number
	// carry the same list.
	devices uint64

	// The WatchTallyResponse in wire form, with the devices and without,
	// each encoded once for all streams.
	full, lite wireOnce
}

type wireOnce struct {
	once sync.Once
	wire *encoded
	err  error
}

func (w *wireOnce) encode(resp func() *doorstepv1.WatchTallyResponse) (*encoded, error) {
	w.once.Do(func() {
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(resp())
		w.wire, w.err = newEncoded(b), err
	})
	return w.wire, w.err
}

// response is the publication as a WatchTallyResponse in wire form, for a
// stream whose watcher has the device list numbered has (0 for none).
func (p *publication) response(has uint64) (*encoded, error) {
	if has == p.devices {
		return p.lite.encode(func() *doorstepv1.WatchTallyResponse {
			ov := proto.Clone(p.ov).(*doorstepv1.ElectionOverview)
			ov.Devices = nil
			return &doorstepv1.WatchTallyResponse{Overview: ov, DevicesUnchanged: true}
		})
	}
	return p.full.encode(func() *doorstepv1.WatchTallyResponse { return &doorstepv1.WatchTallyResponse{Overview: p.ov} })
}

// NewOverviews returns the overviews of st's elections.
func NewOverviews(st *store.Store) *Overviews {
	return &Overviews{store: st, Interval: DefaultWatchInterval, DevicesInterval: DefaultDevicesInterval}
}

// join adds w to the watchers of electionID's feed, started if it was
// not running, and returns the feed.
func (o *Overviews) join(electionID string, w *waiter) *feed {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.feeds == nil {
		o.feeds = make(map[string]*feed)
	}
	f := o.feeds[electionID]
	if f == nil {
		ctx, cancel := context.WithCancel(context.Background())
		f = &feed{cancel: cancel, done: make(chan struct{}), ready: make(chan struct{})}
		o.feeds[electionID] = f
		go o.publish(ctx, electionID, f)
	}
	f.waiters = append(slices.Clip(f.waiters), w)
	return f
}

// leave takes w from f's watchers, and stops f when w was the last and
// waits for it.
func (o *Overviews) leave(electionID string, f *feed, w *waiter) {
	o.mu.Lock()
	if i := slices.Index(f.waiters, w); i >= 0 {
		f.waiters = slices.Delete(slices.Clone(f.waiters), i, i+1)
	}
	last := len(f.waiters) == 0
	if last {
		delete(o.feeds, electionID)
	}
	o.mu.Unlock()
	if last {
		f.cancel()
		<-f.done
	}
}

// publish reads and publishes the overview now and after each change, at
// most once per Interval, until ctx ends.
func (o *Overviews) publish(ctx context.Context, electionID string, f *feed) {
	defer close(f.done)
	var latest *round
	rounds := 0
	defer func() { latest.stop() }()
	var devs deviceList
	for {
		// Take the change signal before reading, so that a change during
		// the read is not missed.
		changed := o.store.Changed(electionID)
		p := &publication{}
		read := time.Now()
		if ov, err := o.store.Overview(ctx, electionID); err != nil {
			p.err = err
		} else {
			p.ov = overviewProto(ov)
			p.ov.Devices, p.devices = devs.publish(p.ov.Devices, read, o.DevicesInterval)
		}
		if old := f.latest.Swap(p); old != nil {
			latest.stop()
			latest = o.wakeAll(f, rounds)
			rounds++
		} else {
			close(f.ready)
		}
		// Newer device rows held back go out with the first change after
		// their interval is up; if none comes, on their own an interval
		// after that. On a busy day a thousand watchers are then sent one
		// message per change, not one more for each device list.
		var due <-chan time.Time
		var held *time.Timer
		if devs.held {
			held = time.NewTimer(time.Until(devs.at.Add(2 * o.DevicesInterval)))
			due = held.C
		}
		select {
		case <-changed:
		case <-due:
		case <-ctx.Done():
			return
		}
		if held != nil {
			held.Stop()
		}
		// Coalesce: whatever else changes until the interval is up goes
		// into the next overview.
		if wait := o.Interval - time.Since(read); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
	}
}

// deviceList is the device list a feed last published.
type deviceList struct {
	rows []*doorstepv1.DeviceSummary
	n    uint64    // its number; 0 before the first
	at   time.Time // when it was published
	held bool      // newer rows are waiting for the interval
}

// publish returns the device list to publish with an overview read at now
// whose rows are fresh, and its number: fresh if it differs from the last
// list and the last is at least interval old, else the last.
func (l *deviceList) publish(fresh []*doorstepv1.DeviceSummary, now time.Time, interval time.Duration) ([]*doorstepv1.DeviceSummary, uint64) {
	l.held = false
	switch {
	case l.n > 0 && slices.EqualFunc(l.rows, fresh, func(a, b *doorstepv1.DeviceSummary) bool { return proto.Equal(a, b) }):
	case l.n == 0 || now.Sub(l.at) >= interval:
		l.rows, l.at = fresh, now
		l.n++
	default:
		l.held = true
	}
	return l.rows, l.n
}

// Watch calls fn with the election's latest overview at once, then again
// with each newer one, until ctx ends (it returns nil) or fn or a read
// fails (it returns that error). While fn runs, newer overviews replace
// each other: a slow watcher gets the latest, never a backlog. fn must
// not modify the overview, which its watchers share.
func (o *Overviews) Watch(ctx context.Context, electionID string, fn func(*doorstepv1.ElectionOverview) error) error {
	return o.watch(ctx, electionID, func(p *publication) error { return fn(p.ov) })
}

func (o *Overviews) watch(ctx context.Context, electionID string, fn func(*publication) error) error {
	o.open.Add(1)
	defer o.open.Add(-1)
	w := &waiter{wake: make(chan *round, 1)}
	f := o.join(electionID, w)
	// The round that woke this watcher goes on to the next once this one
	// has sent, or has stopped.
	var woke *round
	defer func() {
		if woke != nil {
			woke.wakeNext()
		}
		o.leave(electionID, f, w)
		// So does a round that woke it as it left. (One that reaches it
		// after this waits for its next check to find it stalled.)
		select {
		case r := <-w.wake:
			r.wakeNext()
		default:
		}
	}()
	select {
	case <-f.ready:
	case <-ctx.Done():
		return nil
	}
	var last *publication
	for {
		// A wake may come for a publication this watcher has sent
		// already, if it joined or finished sending in between.
		if p := f.latest.Load(); p != last {
			if p.err != nil {
				return p.err
			}
			if err := fn(p); err != nil {
				return err
			}
			last = p
		}
		if woke != nil {
			woke.wakeNext()
			woke = nil
		}
		select {
		case woke = <-w.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

func (x *electionService) WatchTally(req *doorstepv1.WatchTallyRequest, stream doorstepv1.ElectionService_WatchTallyServer) error {
	// The watcher signs a new call to go on after watchLimit.
	ctx, cancel := context.WithTimeout(stream.Context(), watchLimit)
	defer cancel()
	id := req.GetElectionId()
	c, _ := callerFrom(ctx)
	first := true
	var has uint64 // the device list this watcher has
	return x.s.overviews.watch(ctx, id, func(p *publication) error {
		if !first {
			if err := x.s.ReadAccess(id, c.KeyID); err != nil {
				return err
			}
		}
		first = false
		msg, err := p.response(has)
		if err != nil {
			return err
		}
		has = p.devices
		// Encoded once for every watcher (wireCodec sends it as it is).
		return stream.SendMsg(msg)
	})
}

func (x *electionService) ListDevices(ctx context.Context, req *doorstepv1.ListDevicesRequest) (*doorstepv1.ListDevicesResponse, error) {
	ds, err := x.s.store.Devices(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	out := &doorstepv1.ListDevicesResponse{}
	for _, d := range ds {
		out.Devices = append(out.Devices, deviceProto(d))
	}
	return out, nil
}

func (x *electionService) ListComments(ctx context.Context, req *doorstepv1.ListCommentsRequest) (*doorstepv1.ListCommentsResponse, error) {
	after := int64(-1)
	if tok := req.GetPageToken(); tok != "" {
		pos, err := decodeToken("m", tok)
		if err != nil {
			return nil, err
		}
		n, err := parseUint(pos)
		if err != nil {
			return nil, err
		}
		after = int64(n)
	}
	cs, next, err := x.s.store.Comments(ctx, req.GetElectionId(), after, pageSize(req.GetPageSize(), 200, 1000))
	if err != nil {
		return nil, err
	}
	out := &doorstepv1.ListCommentsResponse{}
	for _, c := range cs {
		out.Comments = append(out.Comments, &doorstepv1.ResidentComment{UnitId: c.UnitID, Building: c.Building, Comment: c.Text,
			AuthorTime: timeProto(c.AuthorTime), DeviceId: c.DeviceID, DeviceLabel: c.DeviceLabel, RecordId: c.RecordID})
	}
	if next >= 0 {
		out.NextPageToken = encodeToken("m", strconv.FormatInt(next, 10))
	}
	return out, nil
}
