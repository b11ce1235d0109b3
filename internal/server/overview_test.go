package server_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/server"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd/tallydtest"
)

// watchLog is what one watcher was given.
type watchLog struct {
	mu  sync.Mutex
	got []*doorstepv1.ElectionOverview
}

func (w *watchLog) add(ov *doorstepv1.ElectionOverview) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.got = append(w.got, ov)
}

func (w *watchLog) all() []*doorstepv1.ElectionOverview {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*doorstepv1.ElectionOverview(nil), w.got...)
}

func (w *watchLog) lastSize() uint64 {
	got := w.all()
	if len(got) == 0 {
		return 0
	}
	return got[len(got)-1].GetTally().GetCheckpoint().GetSize()
}

func waitUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startOverviews starts an election's server and the overviews of its
// store, coalescing changes for interval; ctx ends when the test does.
func startOverviews(t *testing.T, interval time.Duration) (*tallydtest.Run, *server.Overviews, context.Context) {
	t.Helper()
	run := tallydtest.Start(t, t.TempDir())
	ovs := server.NewOverviews(run.Store())
	ovs.Interval = interval
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return run, ovs, ctx
}

// TestOverviewsShared: watchers of one election are given the very same
// overview for each state (one read for all), changes are coalesced, and a
// watcher that is slow gets the latest overview when it is ready, not the
// ones it missed. There are more watchers than are woken at once, so each
// change reaches most of them by one waking the next.
func TestOverviewsShared(t *testing.T) {
	run, ovs, ctx := startOverviews(t, 20*time.Millisecond)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	watch := func(fn func(*doorstepv1.ElectionOverview) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := ovs.Watch(ctx, eid, fn); err != nil {
				t.Errorf("watch: %v", err)
			}
		}()
	}
	const n = 200
	fast := make([]*watchLog, n)
	for i := range fast {
		fast[i] = &watchLog{}
		watch(func(ov *doorstepv1.ElectionOverview) error { fast[i].add(ov); return nil })
	}
	slow := &watchLog{}
	release := make(chan struct{})
	watch(func(ov *doorstepv1.ElectionOverview) error {
		slow.add(ov)
		if len(slow.all()) == 1 {
			<-release
		}
		return nil
	})
	waitUntil(t, "every watcher's first overview", func() bool {
		for _, w := range append(fast, slow) {
			if len(w.all()) == 0 {
				return false
			}
		}
		return true
	})
	if got := ovs.Open(); got != n+1 {
		t.Errorf("Open = %d while %d watch, want %d", got, n+1, n+1)
	}

	const changes = 5
	for i := range changes {
		// Each record, accepted or not, is a new log entry: a change.
		recs := []*doorstepv1.SignedRecord{run.Committee.Committee(t, signedtest.Grant(fmt.Sprintf("late-%d", i), "late"))}
		if _, _, err := run.Store().SubmitCommittee(ctx, eid, recs); err != nil {
			t.Fatal(err)
		}
	}
	_, cp, err := run.Store().Tally(ctx, eid)
	if err != nil {
		t.Fatal(err)
	}
	final := cp.GetSize()
	waitUntil(t, "the fast watchers to see the last change", func() bool {
		for _, w := range fast {
			if w.lastSize() < final {
				return false
			}
		}
		return true
	})
	close(release)
	waitUntil(t, "the slow watcher to see the last change", func() bool { return slow.lastSize() >= final })
	cancel()
	wg.Wait()
	if got := ovs.Open(); got != 0 {
		t.Errorf("Open = %d after every watch ended, want 0", got)
	}

	if got := slow.all(); len(got) != 2 {
		t.Errorf("the slow watcher was given %d overviews, want 2: the first and the latest, not what it missed", len(got))
	}
	// Every watcher read its own overview, there would be at least one
	// each; shared, there is one per publication, a few per change at most.
	distinct := map[*doorstepv1.ElectionOverview]bool{}
	for i, w := range append(fast, slow) {
		got := w.all()
		if len(got) > 2*(1+changes) {
			t.Errorf("watcher %d was given %d overviews for %d changes", i, len(got), changes)
		}
		for _, ov := range got {
			distinct[ov] = true
		}
	}
	if len(distinct) > 2*(1+changes) {
		t.Errorf("%d watchers were given %d distinct overviews for %d changes: they should share one read each time", n+1, len(distinct), changes)
	}
}

// TestOverviewsStuckWatchers: watchers whose sends are stuck, more of
// them than are woken at once, do not keep the others from the latest
// overview.
func TestOverviewsStuckWatchers(t *testing.T) {
	run, ovs, ctx := startOverviews(t, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	const n, stuck = 300, 150
	release := make(chan struct{})
	logs := make([]*watchLog, n)
	var wg sync.WaitGroup
	for i := range logs {
		logs[i] = &watchLog{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := ovs.Watch(ctx, eid, func(ov *doorstepv1.ElectionOverview) error {
				logs[i].add(ov)
				if i < stuck && len(logs[i].all()) == 2 {
					<-release // stuck on its second overview, as on a connection that stopped reading
				}
				return nil
			})
			if err != nil {
				t.Errorf("watch %d: %v", i, err)
			}
		}()
	}
	waitUntil(t, "every watcher's first overview", func() bool {
		for _, w := range logs {
			if len(w.all()) == 0 {
				return false
			}
		}
		return true
	})
	var final uint64
	for i := range 3 {
		_, cp, err := run.Store().SubmitCommittee(ctx, eid, []*doorstepv1.SignedRecord{run.Committee.Committee(t, signedtest.Grant(fmt.Sprintf("stuck-%d", i), "stuck"))})
		if err != nil {
			t.Fatal(err)
		}
		final = cp.GetSize()
	}
	waitUntil(t, "the watchers that are not stuck to see the last change", func() bool {
		for _, w := range logs[stuck:] {
			if w.lastSize() < final {
				return false
			}
		}
		return true
	})
	close(release)
	waitUntil(t, "the stuck watchers, released, to see the last change", func() bool {
		for _, w := range logs[:stuck] {
			if w.lastSize() < final {
				return false
			}
		}
		return true
	})
	cancel()
	wg.Wait()
}

// TestOverviewsDevicesRide: a device row held back for its interval goes
// out with the first change after the interval is up, not in a message
// of its own just before it, so that a busy day sends every watcher one
// message per change.
func TestOverviewsDevicesRide(t *testing.T) {
	run, ovs, ctx := startOverviews(t, 10*time.Millisecond)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st := run.Store()
	ovs.DevicesInterval = time.Second
	log := &watchLog{}
	done := make(chan error, 1)
	go func() {
		done <- ovs.Watch(ctx, eid, func(ov *doorstepv1.ElectionOverview) error { log.add(ov); return nil })
	}()
	waitUntil(t, "the first overview", func() bool { return len(log.all()) > 0 })
	dev := run.Devices[0].ID
	unsent := func(ov *doorstepv1.ElectionOverview) int64 {
		for _, d := range ov.GetDevices() {
			if d.GetDeviceId() == dev && d.GetUnsentKnown() {
				return int64(d.GetUnsent())
			}
		}
		return -1
	}
	// A row change an interval after the first list goes out at once;
	// the next, right after, is held.
	time.Sleep(ovs.DevicesInterval)
	if err := st.NoteSync(ctx, eid, dev, 5); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the first row change", func() bool { got := log.all(); return unsent(got[len(got)-1]) == 5 })
	start := time.Now()
	if err := st.NoteSync(ctx, eid, dev, 7); err != nil {
		t.Fatal(err)
	}
	held := len(log.all())
	time.Sleep(ovs.DevicesInterval + 200*time.Millisecond)
	_, cp, err := st.SubmitCommittee(ctx, eid, []*doorstepv1.SignedRecord{run.Committee.Committee(t, signedtest.Grant("ride", "ride"))})
	if err != nil {
		t.Fatal(err)
	}
	size := cp.GetSize()
	waitUntil(t, "the grant's overview", func() bool { return log.lastSize() >= size })
	if time.Since(start) >= 2*ovs.DevicesInterval {
		t.Skip("the machine was too slow to tell riding from going alone")
	}
	got := log.all()
	for _, ov := range got[held:] {
		if unsent(ov) == 7 && ov.GetTally().GetCheckpoint().GetSize() < size {
			t.Errorf("the held row went out alone at checkpoint %d, before the change at %d", ov.GetTally().GetCheckpoint().GetSize(), size)
		}
	}
	if last := got[len(got)-1]; unsent(last) != 7 {
		t.Errorf("the grant's overview carries unsent %d, want the held row's 7", unsent(last))
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch: %v", err)
	}
}
