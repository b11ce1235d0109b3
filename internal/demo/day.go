package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/flakynet"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// day is one run's state. Everything but the fields' own locked parts is
// used from the goroutine running play.
type day struct {
	cfg    Config
	t      timing
	script *Script
	// expected is the canonical tally JSON the script predicts.
	expected []byte
	root     string
	p        *printer

	srv    *tallyd.Server
	chair  *chair
	fields []*field
}

// play runs the day in the data folder and closes everything it opened.
func (d *day) play(ctx context.Context) (res *Result, err error) {
	p := d.p
	p.plain("Doorstep demo: a rainy canvassing day at 翠湖苑, door to door (seed %d).", d.cfg.Seed)
	srv, err := tallyd.Start(ctx, tallyd.Config{DataDir: filepath.Join(d.root, ServerDir), Listen: "127.0.0.1:0", Logger: d.cfg.Logger, Now: d.cfg.Now, MetricsListen: d.cfg.MetricsListen})
	if err != nil {
		return nil, fmt.Errorf("start tallyd: %w", err)
	}
	d.srv = srv
	// Closed in reverse: devices and links, the committee, then tallyd.
	defer func() {
		if cerr := srv.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("stop tallyd: %w", cerr)
		}
	}()
	defer func() {
		if d.chair != nil {
			if cerr := d.chair.Close(); cerr != nil && err == nil {
				err = fmt.Errorf("committee: %w", cerr)
			}
		}
	}()
	defer func() {
		if cerr := d.closeFields(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	p.say("tallyd is serving on %s, key fingerprint %s", srv.Addr(), srv.Fingerprint())
	if a := srv.MetricsAddr(); a != "" {
		p.say("tallyd's metrics: curl -s http://%s/metrics | grep ^doorstep_", a)
	}

	if res, err = d.committeeSetUp(ctx); err != nil {
		return nil, err
	}
	if err := d.enroll(ctx); err != nil {
		return nil, err
	}
	if err := d.walkTheDay(ctx); err != nil {
		return nil, err
	}
	if err := d.settle(ctx, res); err != nil {
		return nil, err
	}
	for _, f := range d.fields {
		st, err := f.dev.Status()
		if err != nil {
			return nil, err
		}
		f.mu.Lock()
		res.LinkDrops += f.drops
		f.mu.Unlock()
		res.ChaosCuts += f.proxy.Cuts()
		res.Canvassers = append(res.Canvassers, CanvasserResult{Name: f.plan.Name, DeviceID: st.Enrollment.DeviceID, Stops: len(f.plan.Stops),
			Records: st.Records, Pending: st.Pending, Answered: st.Answered, Rejected: len(st.Rejected)})
		p.say("%s's device: %d records made, %d answered by the server (%s), %d waiting",
			f.plan.Name, st.Records, st.Records-st.Pending, statusCounts(st.Answered), st.Pending)
		if len(st.Rejected) > 0 {
			return nil, fmt.Errorf("the server rejected %d of %s's records (printed above)", len(st.Rejected), f.plan.Name)
		}
	}
	p.say("the links dropped %d times and chaos cut %d connections; nothing was lost", res.LinkDrops, res.ChaosCuts)
	if res.Tally, err = d.chair.tally(ctx); err != nil {
		return nil, err
	}
	if !bytes.Equal(res.Tally.GetCanonicalJson(), d.expected) {
		return nil, fmt.Errorf("the server's tally differs from the ballots the canvassers collected:\nserver:  %s\nballots: %s", res.Tally.GetCanonicalJson(), d.expected)
	}
	p.plain("Check: the server's tally equals the count of the ballots as collected at the doors: nothing lost, nothing counted twice.")
	if d.cfg.RecordDir != "" {
		if res.Record, err = d.export(ctx); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// committeeSetUp makes the committee's key, creates the example election
// with a sync deadline a day from now (the example's own date would go
// stale), imports the roster and opens the election.
func (d *day) committeeSetUp(ctx context.Context) (*Result, error) {
	dir := filepath.Join(d.root, CommitteeDir)
	pub, err := committee.Init(dir, rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("committee key: %w", err)
	}
	def, units, err := Example(pub)
	if err != nil {
		return nil, err
	}
	def.SyncDeadline = timestamppb.New(d.cfg.Now().Add(24 * time.Hour))
	if d.chair, err = newChair(ctx, dir, def.GetElectionId(), d.srv.Addr(), d.srv.Pin(), d.cfg.Now, d.cfg.Logger); err != nil {
		return nil, err
	}
	if err := d.chair.create(ctx, def, d.srv.OperatorToken()); err != nil {
		return nil, err
	}
	d.p.say("committee: created election %s, %s: %d items on the ballot sheet, sync deadline %s",
		def.GetElectionId(), def.GetTitle(), len(def.GetItems()), def.GetSyncDeadline().AsTime().In(time.Local).Format("2006-01-02 15:04"))
	roster, err := election.NewRoster(units)
	if err != nil {
		return nil, fmt.Errorf("the example roster: %w", err)
	}
	if err := d.chair.importRoster(ctx, roster); err != nil {
		return nil, err
	}
	cp, err := d.chair.open(ctx)
	if err != nil {
		return nil, err
	}
	d.p.say("committee: imported the roster (%d units, %s m², %d owners) and opened the election; the ballot log has %d entries",
		len(roster.Units()), election.FormatArea(roster.TotalArea()), roster.Headcount(), cp.GetSize())
	return &Result{ElectionID: def.GetElectionId(), Definition: def}, nil
}

// enroll starts each canvasser's link, grants a code naming it, and joins
// the canvasser's device with the code, through the link.
func (d *day) enroll(ctx context.Context) error {
	for i, c := range d.script.Canvassers {
		f := &field{plan: c, kick: make(chan struct{}, 1), p: d.p,
			outages: linkPlan(mathrand.New(mathrand.NewPCG(d.cfg.NetSeed, uint64(i))), len(c.Stops))}
		d.fields = append(d.fields, f)
		var err error
		if f.proxy, err = flakynet.Listen(d.srv.Addr()); err != nil {
			return fmt.Errorf("%s's link: %w", c.Name, err)
		}
		label := fmt.Sprintf("%s, buildings %s", c.Name, strings.Join(c.Buildings, ", "))
		code, err := d.chair.enrollmentCode(ctx, label, f.proxy.Addr())
		if err != nil {
			return err
		}
		f.dev, err = device.Open(filepath.Join(d.root, DevicesDir, c.Slug), device.Options{
			Logger: d.cfg.Logger,
			Now:    d.cfg.Now,
			Sync: device.SyncOptions{
				BatchSize:   25,
				CallTimeout: 5 * time.Second,
				BackoffBase: d.t.backoff,
				BackoffMax:  d.t.backoffMax,
				Jitter:      mathrand.New(mathrand.NewPCG(d.cfg.NetSeed, 100+uint64(i))),
			},
		})
		if err != nil {
			return fmt.Errorf("%s's device: %w", c.Name, err)
		}
		enr, err := f.dev.Join(ctx, code, label)
		if err != nil {
			return fmt.Errorf("%s's device: %w", c.Name, err)
		}
		d.p.say("committee: enrolled %s (%d calls to make); device %s joined with its one-time code through its own link %s",
			label, len(c.Stops), enr.DeviceID, f.proxy.Addr())
	}
	return nil
}

// walkTheDay runs the four walks at once, each device syncing in the
// background, the links dropping on schedule and chaos cutting
// connections, and returns once every record on every device is
// acknowledged. Every goroutine it starts has stopped when it returns.
func (d *day) walkTheDay(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	syncCtx, stopSync := context.WithCancel(ctx)
	var syncs sync.WaitGroup
	for _, f := range d.fields {
		syncs.Add(1)
		go func() {
			defer syncs.Done()
			f.dev.RunSync(syncCtx, d.t.syncEvery, f.kick, f.onSync)
		}()
	}
	defer func() { stopSync(); syncs.Wait() }()

	watchCtx, stopWatch := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		d.watch(watchCtx)
	}()
	defer func() { stopWatch(); watcher.Wait() }()

	for i, f := range d.fields {
		f.proxy.SetChaos(mathrand.New(mathrand.NewPCG(d.cfg.NetSeed, 200+uint64(i))), chaosBytes)
	}
	d.p.say("heavy rain: the four canvassers set off, each to their own buildings")
	errs := make([]error, len(d.fields))
	var walkers sync.WaitGroup
	for i, f := range d.fields {
		walkers.Add(1)
		go func() {
			defer walkers.Done()
			if err := f.walk(ctx, d.t.pace); err != nil {
				errs[i] = err
				cancel()
				return
			}
			d.p.say("%s has made every call on the list and heads back to the community office", f.plan.Name)
		}()
	}
	walkers.Wait()
	if err := firstError(errs); err != nil {
		return err
	}
	d.p.say("the rain stops; back at the office every link is up and the devices sync what is left")
	for _, f := range d.fields {
		f.proxy.SetChaos(nil, 0)
		f.linkBack("back at the office")
	}
	if err := d.drain(ctx); err != nil {
		return err
	}
	for _, f := range d.fields {
		f.progress()
	}
	return nil
}

// firstError returns the first error that is not a cancellation caused by
// another, or the first error.
func firstError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if !errors.Is(err, context.Canceled) {
			return err
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// watch prints, every so often, where each canvasser is and how their walk
// list stands, and the live tally the committee sees.
func (d *day) watch(ctx context.Context) {
	t := time.NewTicker(d.t.progress)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, f := range d.fields {
			f.progress()
		}
		if tl, err := d.chair.tally(ctx); err == nil {
			d.p.say("committee: live tally at log checkpoint %d: %d units counted, %d contested (held for the committee), %d double visit(s) counted once",
				tl.GetCheckpoint().GetSize(), tl.GetUnitsCounted(), tl.GetUnitsContested(), tl.GetUnitsDoubleVisited())
		}
	}
}

// drain waits until no device has a record the server has not answered.
func (d *day) drain(ctx context.Context) error {
	limit := time.NewTimer(d.t.drainLimit)
	defer limit.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		var waiting []string
		for _, f := range d.fields {
			st, err := f.dev.Status()
			if err != nil {
				return err
			}
			if st.Pending > 0 {
				waiting = append(waiting, fmt.Sprintf("%s %d", f.plan.Name, st.Pending))
				f.syncNow()
			}
		}
		if len(waiting) == 0 {
			d.p.say("every record on every device is acknowledged by the server")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-limit.C:
			return fmt.Errorf("records still wait to sync after %s: %s", d.t.drainLimit, strings.Join(waiting, ", "))
		case <-poll.C:
		}
	}
}

// settle has the committee settle the contested door, close the election,
// and the devices sync once more to see it.
func (d *day) settle(ctx context.Context, res *Result) error {
	units, owners, err := d.chair.contested(ctx)
	if err != nil {
		return err
	}
	d.p.say("committee: %d contested unit(s), %d split owner(s) to settle", len(units), len(owners))
	door := d.script.Contested
	ownerDevice := ""
	names := map[string]string{}
	for i, f := range d.fields {
		enr, err := f.dev.Enrollment()
		if err != nil {
			return err
		}
		names[enr.DeviceID] = f.plan.Name
		if i == door.Owner {
			ownerDevice = enr.DeviceID
		}
	}
	for _, u := range units {
		counted := ""
		for _, b := range u.GetBallots() {
			d.p.say("  unit %s: ballot %s from %s's device: %s", u.GetUnitId(), b.GetRecordId(), names[b.GetDeviceId()], selections(b.GetSelections()))
			if b.GetDeviceId() == ownerDevice {
				counted = b.GetRecordId()
			}
		}
		if u.GetUnitId() != door.Unit || counted == "" {
			return fmt.Errorf("unit %s is contested, but the day's script contested only %s (collected by %s)", u.GetUnitId(), door.Unit, d.fields[door.Owner].plan.Name)
		}
		cp, err := d.chair.adjudicate(ctx, u.GetUnitId(), counted, door.Reason)
		if err != nil {
			return err
		}
		res.Adjudications++
		d.p.say("committee: unit %s settled: the ballot the owner signed (%s, collected by %s) counts; reason: %s; log at %d entries",
			u.GetUnitId(), counted, names[ownerDevice], door.Reason, cp.GetSize())
	}
	if len(units) == 0 {
		return fmt.Errorf("unit %s should be contested (two canvassers collected differing ballots there), but the server lists no contested unit", door.Unit)
	}
	if len(owners) > 0 {
		return fmt.Errorf("%d owners are split, but every owner in the day's script answers the same at each of their units", len(owners))
	}
	cp, err := d.chair.close(ctx)
	if err != nil {
		return err
	}
	d.p.say("committee: closed the election; the ballot log has %d entries", cp.GetSize())
	for _, f := range d.fields {
		if _, err := f.dev.Sync(ctx, 5); err != nil {
			return fmt.Errorf("%s's last sync: %w", f.plan.Name, err)
		}
	}
	d.p.say("every device synced once more: each sees the close and the committee's decision")
	return nil
}

// selections renders a ballot's answers on one line.
func selections(sels []*doorstepv1.Selection) string {
	parts := make([]string, 0, len(sels))
	for _, s := range sels {
		switch {
		case len(s.GetCandidateIds()) > 0:
			parts = append(parts, s.GetItemId()+" "+strings.Join(s.GetCandidateIds(), ","))
		case s.GetChoice() == doorstepv1.Choice_CHOICE_UNSPECIFIED:
			parts = append(parts, s.GetItemId()+" blank")
		default:
			parts = append(parts, s.GetItemId()+" "+strings.ToLower(strings.TrimPrefix(s.GetChoice().String(), "CHOICE_")))
		}
	}
	return strings.Join(parts, "; ")
}

// export writes the election record and checks that it verifies.
func (d *day) export(ctx context.Context) (*audit.Report, error) {
	rep, err := audit.Export(ctx, d.srv.Store().RecordSource(d.chair.ElectionID()), d.cfg.RecordDir)
	if err != nil {
		return nil, fmt.Errorf("export the election record: %w", err)
	}
	if !rep.OK() {
		return rep, fmt.Errorf("the exported election record does not verify: %d discrepancies, the first: %v", len(rep.Discrepancies)+rep.Omitted, rep.Discrepancies)
	}
	d.p.plain("Election record exported to %s: %d log entries (%d signed records, %d ballots counted) up to the signed checkpoint.",
		d.cfg.RecordDir, rep.Stats.Entries, rep.Stats.Records, rep.Stats.Ballots)
	d.p.plain("It verifies from its files alone: every signature, every device chain, the Merkle root, and the tally recomputed byte for byte.")
	d.p.plain("Check it yourself: doorstep audit verify %s", d.cfg.RecordDir)
	return rep, nil
}

// printKept tells where the kept data is and how to look at it.
func (d *day) printKept(res *Result) {
	dir := d.cfg.KeepDir
	d.p.plain("Everything is kept in %s. To look at it:", dir)
	d.p.plain("  serve tallyd's data again:   go run ./cmd/tallyd --data %s", filepath.Join(dir, ServerDir))
	d.p.plain("  then see what the committee sees: doorstep tally show --election %s --committee-dir %s", res.ElectionID, filepath.Join(dir, CommitteeDir))
	d.p.plain("  a canvasser's device:        doorstep canvass status --device-dir %s", filepath.Join(dir, DevicesDir, d.script.Canvassers[0].Slug))
}

// closeFields closes every device and link opened so far. The background
// syncs must have stopped.
func (d *day) closeFields() error {
	var errs []error
	for _, f := range d.fields {
		if f.dev != nil {
			errs = append(errs, f.dev.Close())
		}
		if f.proxy != nil {
			errs = append(errs, f.proxy.Close())
		}
	}
	return errors.Join(errs...)
}
