package tallyd_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/proctest"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// The fault suite's device processes are this test binary run again with
// crashDeviceEnv naming a device folder (joined by the test): each
// canvasses a share of the units, syncs in the background as the app
// does, prints the ids of the records the server answered as the answers
// are saved, and exits once everything is answered.
const (
	crashDeviceEnv = "DOORSTEP_CRASH_DEVICE"
	// crashDeviceArgs is "units from to seed": crashUnits(units)[from:to]
	// are the device's units. It canvasses until SIGINT, then syncs what
	// it holds and exits.
	crashDeviceArgs = "DOORSTEP_CRASH_DEVICE_ARGS"
)

// crashDeviceMain is a device process's main; it returns the exit code.
func crashDeviceMain(dir string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "crash device: %v\n", err)
		return 1
	}
	var n [4]int
	f := strings.Fields(os.Getenv(crashDeviceArgs))
	if len(f) != len(n) {
		return fail(fmt.Errorf("%s=%q: want units from to seed", crashDeviceArgs, os.Getenv(crashDeviceArgs)))
	}
	for i := range n {
		v, err := strconv.Atoi(f[i])
		if err != nil {
			return fail(err)
		}
		n[i] = v
	}
	units, seed := crashUnits(n[0])[n[1]:n[2]], uint64(n[3])
	d, err := device.Open(dir, device.Options{Sync: device.SyncOptions{
		BatchSize:   25,
		CallTimeout: 5 * time.Second,
		BackoffBase: 20 * time.Millisecond,
		BackoffMax:  300 * time.Millisecond,
		Jitter:      mathrand.New(mathrand.NewPCG(seed, 2)),
	}})
	if err != nil {
		return fail(err)
	}
	defer d.Close()
	pr := &ackPrinter{d: d, printed: map[uint64]bool{}, low: 1}
	bg, stop := context.WithCancel(context.Background())
	defer stop()
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		d.RunSync(bg, 100*time.Millisecond, kick, func(device.SyncReport, error) { pr.print() })
	}()
	day, endDay := signal.NotifyContext(bg, os.Interrupt)
	defer endDay()
	if err := canvass(day, d, units, math.MaxInt, 10*time.Millisecond, mathrand.New(mathrand.NewPCG(seed, 3)), kick); !errors.Is(err, context.Canceled) {
		stop()
		wg.Wait()
		return fail(fmt.Errorf("canvassing: %v", err))
	}
	for {
		st, err := d.Status()
		if err != nil {
			stop()
			wg.Wait()
			return fail(err)
		}
		if st.Pending == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	wg.Wait()
	if err := pr.print(); err != nil {
		return fail(err)
	}
	fmt.Println("done")
	return 0
}

// ackPrinter prints, one line per sync pass, the ids of the records
// answered since the last line. A printed id was answered and saved.
type ackPrinter struct {
	d       *device.Device
	printed map[uint64]bool
	low     uint64 // every seq below it is printed
}

func (p *ackPrinter) print() error {
	st, err := p.d.Status()
	if err != nil {
		return err
	}
	var ids []string
	for seq := p.low; seq <= uint64(st.Records); seq++ {
		if p.printed[seq] {
			continue
		}
		sr, res, err := p.d.Record(seq)
		if err != nil {
			return err
		}
		if res == nil {
			continue
		}
		rec, err := signed.Decode(sr.GetBody())
		if err != nil {
			return err
		}
		ids = append(ids, rec.GetRecordId())
		p.printed[seq] = true
	}
	for p.printed[p.low] {
		delete(p.printed, p.low)
		p.low++
	}
	if len(ids) > 0 {
		fmt.Println("acked " + strings.Join(ids, " "))
	}
	return nil
}

// crashDevice is a device process of the fault suite.
type crashDevice struct {
	dir, id string
	p       *proctest.Proc
}

// acked is what the process has printed as answered so far.
func (c *crashDevice) acked() map[string]bool {
	out := map[string]bool{}
	s := c.p.Stdout()
	s = s[:strings.LastIndexByte(s, '\n')+1] // whole lines only
	for _, line := range strings.Split(s, "\n") {
		if ids, ok := strings.CutPrefix(line, "acked "); ok {
			for _, id := range strings.Fields(ids) {
				out[id] = true
			}
		}
	}
	return out
}
