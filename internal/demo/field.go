package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/flakynet"
)

// outage is a stretch of the walk with no signal: the link drops before
// stop from and returns before stop to.
type outage struct{ from, to int }

// linkPlan draws two outages for a walk of n stops, one in each half.
func linkPlan(r *rand.Rand, n int) []outage {
	var out []outage
	half := n / 2
	for _, lo := range []int{0, half} {
		from := lo + 2 + r.IntN(max(1, half-12))
		out = append(out, outage{from: from, to: min(from+4+r.IntN(10), n)})
	}
	return out
}

// field is one canvasser out in the rain: the plan, the device, and the
// link the device reaches the server through.
type field struct {
	plan    Canvasser
	dev     *device.Device
	proxy   *flakynet.Proxy
	kick    chan struct{} // buffered 1: a sync is wanted now
	outages []outage
	p       *printer

	mu      sync.Mutex
	where   string // guarded by mu: the unit at hand, "" before and after the walk
	drops   int    // guarded by mu: how many times the link dropped
	failing bool   // guarded by mu: the last background sync failed
}

// syncNow asks the background sync to run at once.
func (f *field) syncNow() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

func (f *field) at() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.where
}

// link applies the outages at stop i of the walk.
func (f *field) link(i int) {
	for _, o := range f.outages {
		switch i {
		case o.from:
			if f.proxy.Up() {
				f.proxy.SetUp(false)
				f.mu.Lock()
				f.drops++
				f.mu.Unlock()
				f.p.say("%s: link down (no signal in the stairwell of %s); ballots are saved on the device", f.plan.Name, f.plan.Stops[i].Unit)
			}
		case o.to:
			f.linkBack("signal again")
		}
	}
}

func (f *field) linkBack(why string) {
	if f.proxy.Up() {
		return
	}
	f.proxy.SetUp(true)
	f.p.say("%s: link back (%s); syncing", f.plan.Name, why)
	f.syncNow()
}

// walk makes every stop of the plan in order, pace apart.
func (f *field) walk(ctx context.Context, pace time.Duration) error {
	for i, st := range f.plan.Stops {
		f.link(i)
		f.mu.Lock()
		f.where = st.Unit
		f.mu.Unlock()
		if err := pause(ctx, pace); err != nil {
			return err
		}
		var saved device.Saved
		var err error
		switch st.Kind {
		case StopBallot:
			saved, err = f.dev.RecordBallot(ctx, st.Ballot)
		case StopRevise:
			saved, err = f.dev.ReviseBallot(ctx, st.Ballot)
		case StopVisit:
			saved, err = f.dev.RecordVisit(ctx, st.Visit)
		}
		if err != nil {
			return fmt.Errorf("%s at %s: %w", f.plan.Name, st.Unit, err)
		}
		if st.Story != "" {
			f.p.say("%s at %s: %s (receipt %s)", f.plan.Name, st.Unit, st.Story, saved.Receipt)
		}
	}
	f.mu.Lock()
	f.where = ""
	f.mu.Unlock()
	return nil
}

func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onSync is called by the background sync after each pass. It prints what
// changed: records sent and their answers, the first failure of a run of
// them, the first success after one.
func (f *field) onSync(rep device.SyncReport, err error) {
	f.mu.Lock()
	wasFailing := f.failing
	f.failing = err != nil
	f.mu.Unlock()
	if err != nil {
		if !wasFailing {
			why := err.Error()
			switch {
			case !client.Unreachable(err):
			case f.proxy.Up():
				why = "the connection dropped"
			default:
				why = "no signal"
			}
			f.p.say("%s: sync failed (%s); %d waiting on the device, nothing lost, will retry", f.plan.Name, why, rep.Pending)
		}
		return
	}
	for _, a := range rep.Rejected {
		f.p.say("%s: REJECTED record #%d: %v: %s", f.plan.Name, a.Seq, a.Result.GetReason(), a.Result.GetMessage())
	}
	if rep.Pushed == 0 && !wasFailing {
		return
	}
	cp := ""
	if rep.Checkpoint != nil {
		cp = fmt.Sprintf("; log checkpoint %d", rep.Checkpoint.GetSize())
	}
	f.p.say("%s: synced, sent %d (%s); %d waiting%s", f.plan.Name, rep.Pushed, statusCounts(rep.Statuses), rep.Pending, cp)
}

// statusCounts renders answers by status, e.g. "12 accepted, 1 contested".
func statusCounts(m map[doorstepv1.RecordStatus]int) string {
	if len(m) == 0 {
		return "no answers"
	}
	keys := make([]doorstepv1.RecordStatus, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", m[k], strings.ToLower(strings.TrimPrefix(k.String(), "RECORD_STATUS_")))
	}
	return strings.Join(parts, ", ")
}

// progress prints where the canvasser is and how the walk list stands.
func (f *field) progress() {
	units, err := f.dev.Walk(device.Route{Buildings: f.plan.Buildings})
	if err != nil {
		f.p.say("%s: walk list: %v", f.plan.Name, err)
		return
	}
	var done, visited, left int
	for _, u := range units {
		switch u.Progress {
		case device.Done, device.Contested:
			done++
		case device.Visited:
			visited++
		default:
			left++
		}
	}
	st, err := f.dev.Status()
	if err != nil {
		f.p.say("%s: status: %v", f.plan.Name, err)
		return
	}
	where := "at the community office"
	if u := f.at(); u != "" {
		where = "at " + u
	}
	link := "link up"
	if !f.proxy.Up() {
		link = "LINK DOWN"
	}
	f.p.say("%-4s %-16s %3d done, %2d visited without a ballot, %3d to go; %3d waiting to sync; %s",
		f.plan.Name, where, done, visited, left, st.Pending, link)
}
