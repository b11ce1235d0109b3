package demo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
)

// Config is what a run of the demo takes from its caller.
type Config struct {
	// Out receives the progress lines.
	Out    io.Writer
	Logger *slog.Logger
	Now    func() time.Time
	// Seed draws the script: the ballots and the day's events. The same
	// Seed always gives the same tally.
	Seed uint64
	// NetSeed draws the link drops, the chaos and the sync jitter.
	NetSeed uint64
	// Fast shortens every wait (tests): no pause at the doors, quick
	// retries, fewer progress lines.
	Fast bool
	// KeepDir, when set, is where all data is kept (it must not exist or
	// be empty): tallyd's data, the committee folder and the device
	// folders. Otherwise they go in a temporary folder, removed at the end.
	KeepDir string
	// TempDir is where the temporary folder is made ("" for os.TempDir).
	TempDir string
	// RecordDir, when set, receives the election record export (it must not
	// exist or be empty).
	RecordDir string
	// MetricsListen, when set, is where tallyd serves its Prometheus
	// metrics during the day (a loopback address).
	MetricsListen string
}

// Result is how the day ended.
type Result struct {
	ElectionID string
	// Definition is the election as the committee signed it.
	Definition *doorstepv1.ElectionDefinition
	// Tally is the final tally, read after the election closed, with the
	// checkpoint it was computed at.
	Tally *doorstepv1.Tally
	// Expected is the canonical tally JSON the script predicts; Run fails
	// when the server's differs.
	Expected []byte
	// Adjudications is how many decisions the committee made.
	Adjudications int
	Canvassers    []CanvasserResult
	// LinkDrops counts scheduled outages; ChaosCuts connections chaos cut.
	LinkDrops, ChaosCuts int
	// Record is the verification report of the exported election record,
	// nil unless Config.RecordDir was set.
	Record *audit.Report
	// DataDir is where the data was kept, "" when it was removed.
	DataDir string
	Took    time.Duration
}

// CanvasserResult is one device at the end of the day.
type CanvasserResult struct {
	Name, DeviceID string
	// Stops is how many calls the script had them make; Records how many
	// records the device holds; Pending how many the server has not
	// answered.
	Stops, Records, Pending int
	Answered                map[doorstepv1.RecordStatus]int
	Rejected                int
}

// Folders inside the data folder.
const (
	ServerDir    = "tallyd"
	CommitteeDir = "committee"
	DevicesDir   = "devices"
)

// timing is how long things take in one mode.
type timing struct {
	pace, progress, syncEvery, backoff, backoffMax, drainLimit time.Duration
}

func (c Config) timing() timing {
	if c.Fast {
		return timing{pace: 0, progress: time.Second, syncEvery: 100 * time.Millisecond,
			backoff: 20 * time.Millisecond, backoffMax: 200 * time.Millisecond, drainLimit: time.Minute}
	}
	return timing{pace: 110 * time.Millisecond, progress: 3 * time.Second, syncEvery: 1500 * time.Millisecond,
		backoff: 100 * time.Millisecond, backoffMax: time.Second, drainLimit: time.Minute}
}

// chaosBytes bounds how much one connection carries each way before chaos
// cuts it, while the rain lasts.
const chaosBytes = 48 << 10

// Run plays the day and returns how it ended. It stops every goroutine it
// started before it returns, and removes the temporary folder unless
// KeepDir is set.
func Run(ctx context.Context, cfg Config) (res *Result, err error) {
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	start := cfg.Now()
	script, err := NewScript(cfg.Seed)
	if err != nil {
		return nil, err
	}
	expected, err := script.Expected()
	if err != nil {
		return nil, err
	}
	if cfg.RecordDir != "" {
		if err := emptyOrMissing("--record", cfg.RecordDir); err != nil {
			return nil, err
		}
	}
	root := cfg.KeepDir
	if root != "" {
		if err := emptyOrMissing("--keep", root); err != nil {
			return nil, err
		}
	} else {
		if root, err = os.MkdirTemp(cfg.TempDir, "doorstep-demo-*"); err != nil {
			return nil, fmt.Errorf("temporary folder: %w", err)
		}
		defer func() {
			if rerr := os.RemoveAll(root); rerr != nil && err == nil {
				err = fmt.Errorf("remove the demo's temporary folder: %w", rerr)
			}
		}()
	}
	d := &day{cfg: cfg, t: cfg.timing(), script: script, expected: expected.CanonicalJSON(), root: root,
		p: &printer{w: cfg.Out, now: cfg.Now, start: start}}
	res, err = d.play(ctx)
	if err != nil {
		return nil, err
	}
	res.Expected = d.expected
	if cfg.KeepDir != "" {
		res.DataDir = cfg.KeepDir
		d.printKept(res)
	}
	res.Took = cfg.Now().Sub(start)
	d.p.plain("The day took %s.", res.Took.Round(10*time.Millisecond))
	return res, nil
}

// emptyOrMissing checks that dir can be made or is an empty folder.
func emptyOrMissing(flag, dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("%s %s: %w", flag, dir, err)
	case len(entries) > 0:
		return fmt.Errorf("%s %s: the folder is not empty; give a new folder", flag, dir)
	}
	return nil
}
