package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// errQuit ends the walk at the canvasser's request or at the end of input.
var errQuit = errors.New("quit")

// errCancel abandons the ballot or visit being entered.
var errCancel = errors.New("cancelled")

func runCanvassWalk(ctx context.Context, env *Env, args []string) error {
	fs, f := newCvFlags(env, "walk", "[--buildings 1,2 | --units U1,U2] [flags]",
		"Walk a route door to door. Shows the next unit not yet done, records its ballot item by item\n"+
			"or why there was none, shows the household's receipt code, and syncs in the background\n"+
			"whenever the server is reachable. Reads answers line by line from standard input.")
	buildings := &cvList{split: true}
	units := &cvList{split: true}
	fs.Var(buildings, "buildings", "buildings to walk, e.g. 1,2 (default: the whole roster)")
	fs.Var(units, "units", "units to walk, in this order, e.g. 3-2-501,3-2-502")
	every := fs.Duration("sync-every", 30*time.Second, "how often to sync in the background while the server is reachable")
	offline := fs.Bool("offline", false, "do not try to reach the server during this walk")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return cvUsage(env, "doorstep canvass walk: unexpected argument %q (use --buildings or --units)", fs.Arg(0))
	}
	if len(buildings.vals) > 0 && len(units.vals) > 0 {
		return cvUsage(env, "doorstep canvass walk: give --buildings or --units, not both")
	}
	if *every <= 0 {
		return cvUsage(env, "doorstep canvass walk: --sync-every must be positive")
	}
	d, err := f.open(env)
	if err != nil {
		return err
	}
	defer d.Close()
	def, roster, err := d.Election()
	if err != nil {
		return err
	}
	if roster == nil {
		return device.ErrNoRoster
	}
	w := &walker{
		env:     env,
		d:       d,
		def:     def,
		in:      bufio.NewScanner(env.Stdin),
		route:   device.Route{Buildings: buildings.vals, Units: units.vals},
		skipped: make(map[string]bool),
		kick:    make(chan struct{}, 1),
		offline: *offline,
	}
	w.in.Buffer(make([]byte, 0, 4096), election.MaxTextLen*4)
	if _, err := d.Walk(w.route); err != nil {
		return err
	}

	// The background sync belongs to this command: it starts here and is
	// stopped and waited for before the command returns.
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	if !w.offline {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d.RunSync(bg, *every, w.kick, w.onSync)
		}()
	}
	err = w.loop(ctx)
	stop()
	wg.Wait()
	if err != nil && !errors.Is(err, errQuit) {
		return err
	}
	return w.finish(ctx)
}

type walker struct {
	env     *Env
	d       *device.Device
	def     *election.Definition
	in      *bufio.Scanner
	route   device.Route
	skipped map[string]bool // units passed over in this walk
	kick    chan struct{}
	offline bool
	saved   int

	mu       sync.Mutex
	synced   time.Time // guarded by mu: when the last background sync succeeded
	syncErr  error     // guarded by mu: how the last background sync ended
	attempts int       // guarded by mu
}

// onSync is called by the background sync after each pass.
func (w *walker) onSync(_ device.SyncReport, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	w.syncErr = err
	if err == nil {
		w.synced = w.env.Now()
	}
}

func (w *walker) say(format string, args ...any) { fmt.Fprintf(w.env.Stdout, format+"\n", args...) }

// ask prints a prompt and reads one line. End of input quits the walk.
func (w *walker) ask(format string, args ...any) (string, error) {
	fmt.Fprintf(w.env.Stdout, format+"\n> ", args...)
	if !w.in.Scan() {
		fmt.Fprintln(w.env.Stdout)
		if err := w.in.Err(); err != nil {
			return "", fmt.Errorf("read answers: %w", err)
		}
		return "", errQuit
	}
	line := strings.TrimSpace(w.in.Text())
	if line == "cancel" {
		return "", errCancel
	}
	return line, nil
}

func (w *walker) loop(ctx context.Context) error {
	for first := true; ; first = false {
		if err := ctx.Err(); err != nil {
			return err
		}
		walk, err := w.d.Walk(w.route)
		if err != nil {
			return err
		}
		if first {
			w.say("Route: %d units. Type cancel while entering a ballot to go back.", len(walk))
			w.progress(walk)
		}
		var next *device.UnitProgress
		for i := range walk {
			if !walk[i].Finished() && !w.skipped[walk[i].Unit.ID] {
				next = &walk[i]
				break
			}
		}
		if next == nil {
			if len(w.skipped) > 0 {
				w.say("No more units to visit on this route in this walk; %d passed over (no ballot yet) for another day.", len(w.skipped))
			} else {
				w.say("Every unit on this route is done.")
			}
			return nil
		}
		if err := w.visitUnit(ctx, *next); err != nil {
			return err
		}
	}
}

func (w *walker) visitUnit(ctx context.Context, p device.UnitProgress) error {
	w.say("")
	head := fmt.Sprintf("Unit %s (building %s, %s m²)", p.Unit.ID, p.Building, election.FormatArea(p.Unit.Area))
	if p.Progress == device.Visited {
		head += fmt.Sprintf(" — visited before: %s", cvOutcomeLabel(p.LastVisit))
	}
	w.say("%s", head)
	for {
		ans, err := w.ask("[b] ballot  [v] no ballot: visit outcome  [s] skip  [q] quit")
		if errors.Is(err, errCancel) {
			continue
		}
		if err != nil {
			return err
		}
		visit := false
		switch strings.ToLower(ans) {
		case "b", "ballot":
			err = w.ballot(ctx, p.Unit.ID)
		case "v", "visit":
			visit = true
			err = w.visit(ctx, p.Unit.ID)
		case "s", "skip":
			w.skipped[p.Unit.ID] = true
			return nil
		case "q", "quit":
			return errQuit
		default:
			w.say("Type b, v, s or q.")
			continue
		}
		if errors.Is(err, errCancel) {
			w.say("Nothing saved for %s.", p.Unit.ID)
			continue
		}
		var de *election.Error
		if errors.As(err, &de) {
			w.say("Not saved: %v", err)
			continue
		}
		if err != nil {
			return err
		}
		w.saved++
		select {
		case w.kick <- struct{}{}:
		default:
		}
		if visit {
			// A visit without a ballot leaves the unit to come back to, but
			// not in this walk.
			w.skipped[p.Unit.ID] = true
		}
		walk, err := w.d.Walk(w.route)
		if err != nil {
			return err
		}
		w.progress(walk)
		return nil
	}
}

func (w *walker) ballot(ctx context.Context, unit string) error {
	b := device.Ballot{UnitID: unit}
	var summary []string
	for i := range w.def.Items {
		it := &w.def.Items[i]
		sel, text, err := w.askItem(i, it)
		if err != nil {
			return err
		}
		if sel != nil {
			b.Selections = append(b.Selections, *sel)
		}
		summary = append(summary, fmt.Sprintf("  %s: %s", it.Title, text))
	}
	if len(b.Selections) == 0 {
		for {
			ans, err := w.ask("No item is answered. Save it as a blank ballot (the owner returned the sheet blank)? [y/n]")
			if err != nil {
				return err
			}
			if a := strings.ToLower(ans); a == "y" || a == "yes" {
				b.Blank = true
				break
			} else if a == "n" || a == "no" {
				return errCancel
			}
		}
	}
	for {
		ans, err := w.ask("Who signed? owner / co-owner / proxy [owner]")
		if err != nil {
			return err
		}
		if ans == "" {
			ans = "owner"
		}
		if b.Signer, err = cvSigner(ans); err == nil {
			break
		}
		w.say("%v", err)
	}
	if b.Signer == doorstepv1.SignerKind_SIGNER_KIND_PROXY {
		for b.ProxyRef == "" {
			ref, err := w.ask("The proxy document's reference (cancel discards this ballot):")
			if err != nil {
				return err
			}
			b.ProxyRef = ref
		}
	}
	var err error
	if b.SignerName, err = w.ask("Signer's name (Enter to leave out; cancel discards this ballot):"); err != nil {
		return err
	}
	if b.Comment, err = w.ask("The resident's comments or suggestions, one line (Enter for none; everything typed here is kept as text, cancel discards this ballot):"); err != nil {
		return err
	}
	signer := cvEnum(b.Signer.String(), "SIGNER_KIND_")
	if b.SignerName != "" {
		signer += " (" + b.SignerName + ")"
	}
	if b.ProxyRef != "" {
		signer += ", proxy document " + b.ProxyRef
	}
	summary = append(summary, "  signed by: "+signer)
	if b.Comment != "" {
		summary = append(summary, "  comment: "+b.Comment)
	}
	w.say("Ballot for %s:\n%s", unit, strings.Join(summary, "\n"))
	for {
		ans, err := w.ask("Save this ballot? [y/n]")
		if err != nil {
			return err
		}
		switch strings.ToLower(ans) {
		case "y", "yes":
			s, err := w.d.RecordBallot(ctx, b)
			if err != nil {
				return err
			}
			w.say("Saved on this device. Receipt code: %s", s.Receipt)
			for _, item := range s.InvalidItems {
				w.say("Note: item %s has more picks than seats, so it is invalid on this ballot; the rest counts.", item)
			}
			for _, warn := range s.Warnings {
				w.say("Warning: %s", warn)
			}
			return nil
		case "n", "no":
			return errCancel
		}
	}
}

// askItem asks one item and returns its selection (nil for blank) and how
// to show it.
func (w *walker) askItem(i int, it *election.Item) (*election.Selection, string, error) {
	n := len(w.def.Items)
	if it.Kind == election.KindMotion {
		for {
			ans, err := w.ask("Item %d/%d, %s: yes / no / abstain (Enter: blank)", i+1, n, it.Title)
			if err != nil {
				return nil, "", err
			}
			if ans == "" {
				return nil, "blank", nil
			}
			if c, ok := cvChoice(ans); ok {
				return &election.Selection{ItemID: it.ID, Choice: c}, strings.ToLower(cvChoiceName(c)), nil
			}
			w.say("Answer yes, no or abstain, or press Enter to leave it blank (cancel discards this ballot).")
		}
	}
	var list strings.Builder
	for j, c := range it.Candidates {
		fmt.Fprintf(&list, "\n  %d) %s [%s]", j+1, c.Name, c.ID)
	}
	for {
		ans, err := w.ask("Item %d/%d, %s: pick at most %d of %d%s\nNumbers, ids or names separated by commas (Enter: none)",
			i+1, n, it.Title, it.Seats, len(it.Candidates), list.String())
		if err != nil {
			return nil, "", err
		}
		if ans == "" {
			return nil, "no picks", nil
		}
		ids, names, err := cvParsePicks(it, ans)
		if err != nil {
			w.say("%v", err)
			continue
		}
		if len(ids) > it.Seats {
			ok, err := w.ask("That is %d picks for %d seats: the item will be invalid on this ballot. Keep it? [y/n]", len(ids), it.Seats)
			if err != nil {
				return nil, "", err
			}
			if strings.ToLower(ok) != "y" && strings.ToLower(ok) != "yes" {
				continue
			}
		}
		return &election.Selection{ItemID: it.ID, Candidates: ids}, strings.Join(names, ", "), nil
	}
}

func cvChoiceName(c election.Choice) string {
	switch c {
	case election.ChoiceYes:
		return "yes"
	case election.ChoiceNo:
		return "no"
	}
	return "abstain"
}

// cvParsePicks reads candidates by number (1-based), id or name.
func cvParsePicks(it *election.Item, ans string) (ids, names []string, err error) {
	seen := map[int]bool{}
	for tok := range strings.FieldsFuncSeq(ans, func(r rune) bool { return r == ',' || r == ' ' || r == '，' }) {
		idx := -1
		if n, err := strconv.Atoi(tok); err == nil && n >= 1 && n <= len(it.Candidates) {
			idx = n - 1
		} else if j, named := cvFindCandidate(it, tok); named > 1 {
			return nil, nil, fmt.Errorf("%d candidates are named %q: give the number or the id", named, tok)
		} else {
			idx = j
		}
		if idx < 0 {
			return nil, nil, fmt.Errorf("%q is not a candidate of this item: give a number from 1 to %d, a candidate id or a name", tok, len(it.Candidates))
		}
		if seen[idx] {
			return nil, nil, fmt.Errorf("%s is picked twice", it.Candidates[idx].Name)
		}
		seen[idx] = true
		ids = append(ids, it.Candidates[idx].ID)
		names = append(names, it.Candidates[idx].Name)
	}
	return ids, names, nil
}

func (w *walker) visit(ctx context.Context, unit string) error {
	var outcome doorstepv1.VisitOutcome
	for {
		ans, err := w.ask("What happened? 1) not home  2) refused  3) ballot left  4) moved")
		if err != nil {
			return err
		}
		var ok bool
		if outcome, ok = cvOutcome(ans); ok {
			break
		}
		w.say("Type 1 to 4, or not-home, refused, ballot-left or moved.")
	}
	note, err := w.ask("A note (Enter for none):")
	if err != nil {
		return err
	}
	if _, err := w.d.RecordVisit(ctx, device.Visit{UnitID: unit, Outcome: outcome, Note: note}); err != nil {
		return err
	}
	w.say("Saved on this device: %s.", cvOutcomeLabel(outcome))
	return nil
}

// progress shows done / left / waiting to sync, and how the server stands.
func (w *walker) progress(walk []device.UnitProgress) {
	done := 0
	for _, p := range walk {
		if p.Finished() {
			done++
		}
	}
	pending := 0
	if st, err := w.d.Status(); err == nil {
		pending = st.Pending
	}
	w.mu.Lock()
	synced, syncErr, attempts := w.synced, w.syncErr, w.attempts
	w.mu.Unlock()
	var server string
	switch {
	case w.offline:
		server = "offline walk"
	case syncErr != nil && client.Unreachable(syncErr):
		server = "server unreachable: " + canvassOffline
	case syncErr != nil:
		server = "sync failed: " + syncErr.Error()
	case !synced.IsZero():
		server = "last sync " + synced.In(time.Local).Format("15:04:05")
	case attempts == 0:
		server = "syncing"
	}
	w.say("Progress: %d done / %d left / %d waiting to sync (%s)", done, len(walk)-done, pending, server)
}

// finish tries one last sync so the walk's records leave the device if
// they can, and says where they stand.
func (w *walker) finish(ctx context.Context) error {
	st, err := w.d.Status()
	if err != nil {
		return err
	}
	if st.Pending > 0 && !w.offline {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		rep, err := w.d.Sync(sctx, 1)
		cancel()
		switch {
		case err == nil:
			st.Pending = rep.Pending
		case client.Unreachable(err) || errors.Is(err, context.DeadlineExceeded):
		default:
			w.say("Sync failed: %v", err)
		}
	}
	w.say("Walk ended: %d records saved in this walk.", w.saved)
	if st.Pending > 0 {
		w.say("%d waiting to sync: %s.", st.Pending, canvassOffline)
	} else {
		w.say("Everything is synced.")
	}
	return nil
}
