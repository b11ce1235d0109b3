package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/watchview"
)

// barWidth is how many cells a terminal bar has.
const barWidth = 30

func runTallyWatch(ctx context.Context, env *Env, args []string) error {
	fs, f := newCmFlags(env, "tally watch", "--election ID [--lang zh|en] [flags]",
		"help.tally_watch", true, true)
	f.withLang(fs, "help.flag.lang_view")
	l, r, err := f.openRead(ctx, env, fs, args)
	if err != nil {
		return err
	}
	defer r.Close()
	var def *election.Definition
	if p := r.definition(); p != nil {
		def, _ = rules.Definition(p)
	}
	tty := isTerminal(env.Stdout)
	loc := env.Now().Location()
	var buf bytes.Buffer
	d := &drawer{draw: func(ov *doorstepv1.ElectionOverview) error {
		buf.Reset()
		if tty {
			buf.WriteString("\x1b[H\x1b[2J") // home, clear: redraw in place
		}
		writeWatch(&buf, watchview.Build(ov, def, l), l, loc)
		if !tty {
			buf.WriteString("\n")
		}
		_, err := env.Stdout.Write(buf.Bytes())
		return err
	}}
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // draws what came in too soon after a drawing
		defer wg.Done()
		d.trail(wctx)
	}()
	err = r.Watch(wctx, d.offer, func(err error, pause time.Duration) {
		fmt.Fprintln(env.Stderr, l.T("watch.retrying", r.rpcError("cli.call.watch", err), pause.Round(time.Second)))
	})
	stop()
	wg.Wait()
	if err != nil {
		return r.rpcError("cli.call.watch", err)
	}
	return d.err
}

// redrawEvery is the least time between two drawings: the server may
// send many overviews a second, which a person cannot read.
const redrawEvery = 250 * time.Millisecond

// drawer draws overviews at most once per redrawEvery, always ending on
// the latest.
type drawer struct {
	draw func(*doorstepv1.ElectionOverview) error

	mu      sync.Mutex
	last    time.Time                    // guarded by mu
	pending *doorstepv1.ElectionOverview // guarded by mu: not drawn yet
	err     error                        // guarded by mu: the first drawing that failed
}

// offer draws ov now, or keeps it for trail when a drawing was too recent.
func (d *drawer) offer(ov *doorstepv1.ElectionOverview) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	if time.Since(d.last) < redrawEvery {
		d.pending = ov
		return nil
	}
	d.pending, d.last = nil, time.Now()
	d.err = d.draw(ov)
	return d.err
}

// trail draws what offer kept, until ctx ends.
func (d *drawer) trail(ctx context.Context) {
	t := time.NewTicker(redrawEvery / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.mu.Lock()
		if d.pending != nil && d.err == nil && time.Since(d.last) >= redrawEvery {
			ov := d.pending
			d.pending, d.last = nil, time.Now()
			d.err = d.draw(ov)
		}
		d.mu.Unlock()
	}
}

// isTerminal reports whether w is a terminal, where the view redraws in
// place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// writeWatch renders one overview for the terminal.
func writeWatch(w io.Writer, v *watchview.View, l i18n.Lang, loc *time.Location) {
	title := v.ElectionID
	if v.Title != "" {
		title += " " + v.Title
	}
	fmt.Fprintln(w, l.T("watch.title", title))
	state := v.State
	if !v.Since.IsZero() {
		state = l.T("watch.since", state, v.Since.In(loc).Format("2006-01-02 15:04"))
	}
	fmt.Fprintln(w, l.T("watch.state", state))
	fmt.Fprintln(w, l.T("watch.checkpoint", v.CheckpointSize, v.CheckpointRoot))
	fmt.Fprintln(w, l.T("watch.counted", v.UnitsCounted, v.RosterUnits))
	fmt.Fprintf(w, "  %s %s\n", termBar(v.Area), l.T("watch.area_of", v.Area.Part, v.Area.Whole, pct(v.Area.Pct)))

	for i, it := range v.Items {
		name := it.ID
		if it.Title != "" {
			name += " " + it.Title
		}
		fmt.Fprintf(w, "\n%d. %s (%s)\n", i+1, name, it.Rule)
		fmt.Fprintln(w, "  "+l.T("watch.quorum", pct(it.QuorumArea.Mark)))
		fmt.Fprintf(w, "    %-6s %s %s\n", l.T("watch.by_area"), termBar(it.QuorumArea), l.T("watch.area_of", it.QuorumArea.Part, it.QuorumArea.Whole, pct(it.QuorumArea.Pct)))
		fmt.Fprintf(w, "    %-6s %s %s\n", l.T("watch.by_head"), termBar(it.QuorumHead), l.T("watch.head_of", it.QuorumHead.Part, it.QuorumHead.Whole, pct(it.QuorumHead.Pct)))
		if it.Candidates {
			for _, c := range it.Ranked {
				name := c.ID
				if c.Name != "" {
					name += " " + c.Name
				}
				fmt.Fprintf(w, "  %s: %s\n", name, c.Status)
				fmt.Fprintf(w, "    %-6s %s %s\n", l.T("watch.by_area"), termBar(c.Area), l.T("watch.area_of", c.Area.Part, c.Area.Whole, pct(c.Area.Pct)))
				fmt.Fprintf(w, "    %-6s %s %s\n", l.T("watch.by_head"), termBar(c.Head), l.T("watch.head_of", c.Head.Part, c.Head.Whole, pct(c.Head.Pct)))
			}
		} else {
			fmt.Fprintln(w, "  "+l.T("watch.yes", pct(it.YesArea.Mark)))
			fmt.Fprintf(w, "    %-6s %s %s\n", l.T("watch.by_area"), termBar(it.YesArea), l.T("watch.area_of", it.YesArea.Part, it.YesArea.Whole, pct(it.YesArea.Pct)))
			fmt.Fprintf(w, "    %-6s %s %s\n", l.T("watch.by_head"), termBar(it.YesHead), l.T("watch.head_of", it.YesHead.Part, it.YesHead.Whole, pct(it.YesHead.Pct)))
		}
		if it.Held > 0 {
			fmt.Fprintln(w, "  "+l.T("watch.held", it.Held))
		}
		fmt.Fprintln(w, "  "+l.T("watch.outcome", it.Outcome))
	}

	fmt.Fprintln(w, "\n"+l.T("watch.buildings"))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", l.T("watch.col.building"), l.T("watch.col.units"), l.T("watch.col.area"), l.T("watch.col.held"), "")
	for _, b := range v.Buildings {
		fmt.Fprintf(tw, "  %s\t%d/%d\t%s/%s\t%d\t%s %s\n", b.Name, b.Counted, b.Units, b.AreaCounted.Part, b.AreaCounted.Whole, b.Held,
			termBar(b.UnitsBar), pct(b.UnitsBar.Pct))
	}
	tw.Flush()

	fmt.Fprintln(w, "\n"+l.T("watch.waiting", v.Contested, v.SplitOwners))

	fmt.Fprintln(w, "\n"+l.T("watch.devices"))
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", l.T("watch.col.device"), l.T("watch.col.last_sync"), l.T("watch.col.records"), l.T("watch.col.unsent"), "")
	for _, d := range v.Devices {
		label := d.Label
		if label == "" {
			label = d.ID
		}
		last := l.T("watch.never")
		if !d.LastSync.IsZero() {
			last = d.LastSync.In(loc).Format("01-02 15:04:05")
		}
		unsent := l.T("watch.not_said")
		if d.UnsentKnown {
			unsent = fmt.Sprint(d.Unsent)
		}
		var notes []string
		if d.Unsent > 0 {
			notes = append(notes, l.T("watch.must_sync"))
		}
		if d.Gaps > 0 {
			notes = append(notes, l.T("watch.gaps", d.Gaps))
		}
		if d.Revoked {
			notes = append(notes, l.T("watch.revoked"))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%s\n", label, last, d.RecordsHeld, unsent, strings.Join(notes, ", "))
	}
	if len(v.Devices) == 0 {
		fmt.Fprintf(tw, "  %s\n", l.T("watch.no_devices"))
	}
	tw.Flush()
}

// termBar draws a bar of barWidth cells with the mark on it.
func termBar(b watchview.Bar) string {
	filled, mark := b.Cells(barWidth)
	var sb strings.Builder
	sb.WriteByte('[')
	// barWidth cells and the mark between two of them.
	for i := range barWidth + 1 {
		if i == mark {
			sb.WriteByte('|')
		}
		switch {
		case i == barWidth:
		case i < filled:
			sb.WriteByte('#')
		default:
			sb.WriteByte('.')
		}
	}
	sb.WriteByte(']')
	if b.Met {
		sb.WriteString(" ✓")
	} else {
		sb.WriteString("  ")
	}
	return sb.String()
}

// pct renders a Percent figure with its sign; "-" for none.
func pct(p string) string {
	if p == "" {
		return "-"
	}
	return p + "%"
}
