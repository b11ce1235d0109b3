package demo_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/demo"
	"github.com/doorstep-vote/doorstep/internal/device"
)

// runDemo plays the day in fast mode, keeping its data in a folder of the
// test's, and returns the result, the data folder and the output.
func runDemo(t *testing.T, seed, netSeed uint64, recordDir string) (*demo.Result, string, string) {
	t.Helper()
	keep := filepath.Join(t.TempDir(), "data")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := demo.Run(ctx, demo.Config{Out: &out, Seed: seed, NetSeed: netSeed, Fast: true, KeepDir: keep, RecordDir: recordDir})
	if err != nil {
		t.Fatalf("demo (seed %d, net seed %d): %v\noutput:\n%s", seed, netSeed, err, out.String())
	}
	t.Logf("demo (seed %d, net seed %d) took %s: %d link drops, %d connections cut by chaos", seed, netSeed, res.Took, res.LinkDrops, res.ChaosCuts)
	return res, keep, out.String()
}

// wantOutcomesProto is wantOutcomes as the server reports it.
var wantOutcomesProto = map[string]doorstepv1.Outcome{
	"committee": doorstepv1.Outcome_OUTCOME_ELECTED,
	"rules":     doorstepv1.Outcome_OUTCOME_PASSED,
	"roof":      doorstepv1.Outcome_OUTCOME_PASSED,
	"fund":      doorstepv1.Outcome_OUTCOME_FAILED,
}

// TestDemo plays the day twice with the same ballots and different
// networks: the tallies must be identical, and each run must end with
// every unit visited, nothing contested, one adjudication, the outcomes the
// demo tells, and every device's outbox acknowledged.
func TestDemo(t *testing.T) {
	const seed = 278
	recordDir := filepath.Join(t.TempDir(), "record")
	first, keep, out := runDemo(t, seed, 1, recordDir)
	second, _, _ := runDemo(t, seed, 2, "")

	if a, b := first.Tally.GetCanonicalJson(), second.Tally.GetCanonicalJson(); !bytes.Equal(a, b) {
		t.Errorf("same ballots, different networks, different tallies:\n%s\n%s", a, b)
	}
	if !bytes.Equal(first.Tally.GetCanonicalJson(), first.Expected) {
		t.Errorf("server tally %s\ndiffers from the script's %s", first.Tally.GetCanonicalJson(), first.Expected)
	}

	tl := first.Tally
	if tl.GetUnitsContested() != 0 || first.Adjudications != 1 {
		t.Errorf("%d contested at the end after %d adjudications; want 0 after 1", tl.GetUnitsContested(), first.Adjudications)
	}
	if tl.GetUnitsDoubleVisited() != 1 {
		t.Errorf("%d double visits; want 1", tl.GetUnitsDoubleVisited())
	}
	if tl.GetCheckpoint().GetSize() == 0 {
		t.Errorf("the tally names no checkpoint")
	}
	for _, it := range tl.GetItems() {
		if !it.GetQuorumMet() || it.GetOutcome() != wantOutcomesProto[it.GetItemId()] {
			t.Errorf("item %s: quorum met %v, outcome %v; want quorum met, %v", it.GetItemId(), it.GetQuorumMet(), it.GetOutcome(), wantOutcomesProto[it.GetItemId()])
		}
		if it.GetItemId() == "committee" {
			elected := 0
			for _, c := range it.GetCandidates() {
				if c.GetElected() {
					elected++
				}
			}
			if elected != 7 {
				t.Errorf("%d elected; want 7", elected)
			}
		}
	}
	for _, want := range []string{"link down", "link back", "synced, sent", "waiting to sync", "committee: unit ", "closed the election", "Everything is kept in", "Election record exported"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output has no %q", want)
		}
	}

	// The device folders, opened afresh: every unit on each route was
	// called at by its canvasser, every record is acknowledged, none
	// rejected.
	script, err := demo.NewScript(seed)
	if err != nil {
		t.Fatal(err)
	}
	visited := 0
	for i, c := range script.Canvassers {
		d, err := device.Open(filepath.Join(keep, demo.DevicesDir, c.Slug), device.Options{})
		if err != nil {
			t.Fatal(err)
		}
		st, err := d.Status()
		if err != nil {
			t.Fatal(err)
		}
		answered := 0
		for _, n := range st.Answered {
			answered += n
		}
		if st.Records != len(c.Stops) || st.Pending != 0 || answered != st.Records || len(st.Rejected) != 0 {
			t.Errorf("%s: %d records for %d stops, %d pending, %d answered, %d rejected; want all answered, none rejected",
				c.Name, st.Records, len(c.Stops), st.Pending, answered, len(st.Rejected))
		}
		if r := first.Canvassers[i]; r.Pending != 0 || r.Records != st.Records {
			t.Errorf("result for %s: %+v; the device says %d records, %d pending", c.Name, r, st.Records, st.Pending)
		}
		units, err := d.Walk(device.Route{Buildings: c.Buildings})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range units {
			if u.Ballots+u.Visits == 0 {
				t.Errorf("%s never called at %s", c.Name, u.Unit.ID)
			}
			if u.Progress == device.ToVisit || u.Progress == device.Contested {
				t.Errorf("%s's walk list: %s is %v", c.Name, u.Unit.ID, u.Progress)
			}
		}
		visited += len(units)
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if visited != script.Units() {
		t.Errorf("%d units visited; the roster has %d", visited, script.Units())
	}

	// The exported record verifies on its own and holds the same tally.
	rep, err := audit.Verify(context.Background(), recordDir)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() || !rep.TallyMatches || !bytes.Equal(rep.Tally.CanonicalJSON(), first.Tally.GetCanonicalJson()) {
		t.Errorf("election record: ok %v, tally matches %v, discrepancies %v", rep.OK(), rep.TallyMatches, rep.Discrepancies)
	}
}

func TestRunRefusesUsedFolders(t *testing.T) {
	used := t.TempDir()
	if err := os.WriteFile(filepath.Join(used, "x"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  demo.Config
		want string
	}{
		{"keep", demo.Config{KeepDir: used}, "--keep"},
		{"record", demo.Config{RecordDir: used}, "--record"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.TempDir = t.TempDir()
			_, err := demo.Run(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "not empty") {
				t.Errorf("got %v; want an error naming %s and saying the folder is not empty", err, tc.want)
			}
		})
	}
}

// TestDemoMetrics scrapes tallyd's metrics while the demo runs: the
// families are there and the records the canvassers send are counted.
func TestDemoMetrics(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ran := make(chan error, 1)
	var out bytes.Buffer
	go func() {
		_, err := demo.Run(ctx, demo.Config{Out: &out, Seed: 278, NetSeed: 3, Fast: true, TempDir: t.TempDir(), MetricsListen: addr})
		ran <- err
	}()
	// The last scrape that answered, while the day went on.
	var last string
	for done := false; !done; {
		select {
		case err := <-ran:
			if err != nil {
				t.Fatalf("demo: %v\n%s", err, out.String())
			}
			done = true
		case <-time.After(20 * time.Millisecond):
			resp, err := http.Get("http://" + addr + "/metrics")
			if err != nil {
				continue // not serving yet, or no longer
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == http.StatusOK {
				last = string(b)
			}
		}
	}
	if last == "" {
		t.Fatal("no scrape of the metrics answered while the demo ran")
	}
	for _, f := range []string{"doorstep_records_total{", "doorstep_commit_duration_seconds_bucket", "doorstep_connections_open{listener=\"grpc\"}", "doorstep_log_entries{"} {
		if !strings.Contains(last, f) {
			t.Errorf("the metrics during the demo have no %s:\n%s", f, last)
		}
	}
	if !strings.Contains(out.String(), "tallyd's metrics: curl -s http://"+addr+"/metrics") {
		t.Errorf("the demo does not say where its metrics are:\n%s", out.String())
	}
}
