package device_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/flakynet"
)

// faultSeed fixes the ballots, the chaos cuts and the flapping.
const faultSeed = 20261121

// canvassRandomly records n records on d for units drawn from units, so
// that devices overlap: double visits, contested units, revisions of the
// device's own ballots and visits with no ballot.
func canvassRandomly(t *testing.T, d *device.Device, units []election.Unit, n int, rng *rand.Rand) {
	t.Helper()
	ctx := context.Background()
	for range n {
		u := units[rng.IntN(len(units))].ID
		sels := []election.Selection{
			{ItemID: "rules", Choice: []election.Choice{election.ChoiceYes, election.ChoiceNo, election.ChoiceAbstain}[rng.IntN(3)]},
			{ItemID: "board", Candidates: [][]string{{"c1"}, {"c2"}, {"c1", "c3"}, {"c1", "c2", "c3"}, nil}[rng.IntN(5)]},
		}
		b := device.Ballot{UnitID: u, Selections: sels, Signer: doorstepv1.SignerKind_SIGNER_KIND_OWNER}
		var err error
		switch r := rng.IntN(10); {
		case r == 0:
			_, err = d.RecordVisit(ctx, device.Visit{UnitID: u, Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_REFUSED})
		default:
			// A device keeps one ballot per unit: a second is a revision.
			if _, ok, lerr := d.LatestBallot(u); lerr == nil && ok {
				_, err = d.ReviseBallot(ctx, b)
			} else {
				_, err = d.RecordBallot(ctx, b)
			}
		}
		if err != nil {
			t.Fatalf("record at %s: %v", u, err)
		}
	}
}

// flap brings a link that is down up and takes it down again at random
// until ctx ends, counting the times it went down; it leaves the link up.
func flap(ctx context.Context, p *flakynet.Proxy, rng *rand.Rand, downs *atomic.Int64) {
	defer p.SetUp(true)
	for {
		down := time.Duration(10+rng.IntN(120)) * time.Millisecond
		up := time.Duration(30+rng.IntN(250)) * time.Millisecond
		select {
		case <-ctx.Done():
			return
		case <-time.After(down):
		}
		p.SetUp(true)
		select {
		case <-ctx.Done():
			return
		case <-time.After(up):
		}
		p.SetUp(false)
		downs.Add(1)
	}
}

// TestFaultInjectionConvergence: several devices sync at once, each over
// its own link that drops connections after random byte counts and goes
// down and up at random. Once every device has synced, the server's tally
// is byte for byte the tally of a server that got the same records over
// a perfect link, and it holds each record exactly once.
func TestFaultInjectionConvergence(t *testing.T) {
	devices, perDevice := 4, 60
	if testing.Short() {
		devices, perDevice = 3, 25
	}
	units := manyUnits(80)
	f := newFixtureUnits(t, units)
	t.Logf("seed %d", faultSeed)

	type phone struct {
		d     *device.Device
		proxy *flakynet.Proxy
		enr   device.Enrollment
	}
	phones := make([]phone, devices)
	for i := range phones {
		p, err := flakynet.Listen(f.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		d := openDevice(t, filepath.Join(t.TempDir(), "phone"), device.Options{Sync: device.SyncOptions{
			BatchSize:   5,
			CallTimeout: 3 * time.Second,
			BackoffBase: 10 * time.Millisecond,
			BackoffMax:  200 * time.Millisecond,
			Jitter:      rand.New(rand.NewPCG(faultSeed, uint64(i))),
		}})
		code := f.code(fmt.Sprintf("phone-%d", i))
		code.Server = p.Addr()
		enr, err := d.Join(context.Background(), code, code.Token[:8])
		if err != nil {
			t.Fatalf("join through the proxy: %v", err)
		}
		canvassRandomly(t, d, units, perDevice, rand.New(rand.NewPCG(faultSeed, uint64(100+i))))
		phones[i] = phone{d: d, proxy: p, enr: enr}
	}

	// Faults from the first byte: every link starts down, and drops each
	// connection after a random number of bytes up to 32 KiB each way.
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bg, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	var downs, passes, failures atomic.Int64
	synced := make([]chan struct{}, devices)
	for i, ph := range phones {
		ph.proxy.SetUp(false)
		ph.proxy.SetChaos(rand.New(rand.NewPCG(faultSeed, uint64(200+i))), 32<<10)
		synced[i] = make(chan struct{})
		var once sync.Once
		wg.Add(2)
		go func() {
			defer wg.Done()
			flap(bg, ph.proxy, rand.New(rand.NewPCG(faultSeed, uint64(300+i))), &downs)
		}()
		go func() {
			defer wg.Done()
			ph.d.RunSync(bg, 50*time.Millisecond, nil, func(rep device.SyncReport, err error) {
				passes.Add(1)
				if err != nil {
					failures.Add(1)
					return
				}
				if rep.Pending == 0 {
					once.Do(func() { close(synced[i]) })
				}
			})
		}()
	}
	for i, ch := range synced {
		select {
		case <-ch:
		case <-ctx.Done():
			st := statusOf(t, phones[i].d)
			t.Fatalf("device %d never finished syncing through faults: %d of %d pending; last error %q", i, st.Pending, st.Records, st.LastError)
		}
	}
	stop()
	wg.Wait()
	cuts := 0
	for _, ph := range phones {
		cuts += ph.proxy.Cuts()
	}
	t.Logf("%d sync passes, %d failed; %d connections cut by chaos; links went down %d times", passes.Load(), failures.Load(), cuts, downs.Load())
	if failures.Load() == 0 && cuts == 0 {
		t.Error("no sync failed and no connection was cut: the faults never reached the devices")
	}

	res, _, err := f.srv.Store().Tally(context.Background(), electionID)
	if err != nil {
		t.Fatal(err)
	}
	got := res.CanonicalJSON()
	for i, ph := range phones {
		facts := checkDeviceChain(t, ph.d)
		checkServerHoldsOnce(t, f.srv.Store(), ph.enr.DeviceID, facts)
		st := statusOf(t, ph.d)
		if st.Pending != 0 || st.Answered[doorstepv1.RecordStatus_RECORD_STATUS_REJECTED] != 0 {
			t.Errorf("device %d: %d pending, answers %v", i, st.Pending, st.Answered)
		}
	}

	// The same records over a perfect link, device by device.
	clean := newFixtureUnits(t, units)
	for i, ph := range phones {
		code := clean.code(fmt.Sprintf("phone-%d", i))
		if id := enrollOn(t, clean.addr, code, ph.d.PublicKey()); id != ph.enr.DeviceID {
			t.Fatalf("device %d is %s on the clean server, %s on the first", i, id, ph.enr.DeviceID)
		}
		var recs []*doorstepv1.SignedRecord
		for seq := uint64(1); seq <= uint64(statusOf(t, ph.d).Records); seq++ {
			sr, _, err := ph.d.Record(seq)
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, sr)
		}
		if _, _, err := clean.srv.Store().Push(context.Background(), electionID, recs); err != nil {
			t.Fatal(err)
		}
	}
	cres, _, err := clean.srv.Store().Tally(context.Background(), electionID)
	if err != nil {
		t.Fatal(err)
	}
	want := cres.CanonicalJSON()
	if !bytes.Equal(got, want) {
		t.Errorf("tally after faults differs from the tally over a perfect link:\ngot  %s\nwant %s", got, want)
	}
	if cres.UnitsCounted+cres.UnitsContested == 0 {
		t.Error("the clean tally counts nothing: the comparison proves little")
	}
}
