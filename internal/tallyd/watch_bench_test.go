package tallyd_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

var (
	watchRuns     = flag.Int("watch.runs", 9, "runs of BenchmarkWatch's pair of ingests (without and with watchers), each against fresh servers; the figures are their medians")
	watchWatchers = flag.Int("watch.watchers", 1000, "concurrent WatchTally watchers in BenchmarkWatch")
	watchInterval = flag.Duration("watch.interval", 0, "the servers' least time between two overviews (tallyd.Config.WatchInterval); 0 for the default")
)

// seen is one overview as a watcher received it.
type seen struct {
	At   int64  // wall-clock nanoseconds: the watchers are another process
	Size uint64 // its checkpoint's size
}

// pushAck is one push's answer as its device received it.
type pushAck struct {
	at   int64 // wall-clock nanoseconds
	size uint64
}

// The watchers of BenchmarkWatch run in a process of their own, as they
// would on the committee's and auditors' machines: the server's scheduler
// then holds only the server's goroutines, and the benchmark can tell the
// server's CPU time from the watchers'. The process is this test binary
// run again with watchProcEnv set to "ADDR PIN N RESULTS": it attaches N
// watchers to the server at ADDR, says "ready" on stdout, and on a line
// "drain SIZE" on stdin waits until every watcher has seen checkpoint
// SIZE, writes what they saw to the file RESULTS (watchResults as JSON)
// and exits.
const watchProcEnv = "DOORSTEP_BENCH_WATCHERS"

// watchResults is what the watchers' process reports.
type watchResults struct {
	Seen  [][]seen // [watcher] in arrival order
	CPU   int64    // the process's CPU time in nanoseconds from ready to drain
	Bytes int      // the largest overview message
	Errs  []string // one per watcher that failed
}

// watchersMain is the watchers' process; it returns the exit code.
func watchersMain(args string) int {
	fail := func(err error) int {
		fmt.Fprintf(os.Stderr, "watchers: %v\n", err)
		return 1
	}
	f := strings.Fields(args)
	if len(f) != 4 {
		return fail(fmt.Errorf("%s=%q: want ADDR PIN N RESULTS", watchProcEnv, args))
	}
	n, err := strconv.Atoi(f[2])
	if err != nil || n < 1 {
		return fail(fmt.Errorf("%s: bad watcher count %q", watchProcEnv, f[2]))
	}
	w := newWatchers(n)
	if err := w.attach(f[0], client.ForPin(f[1])); err != nil {
		return fail(err)
	}
	fmt.Println("ready")
	cpu0 := processCPU()
	in := bufio.NewScanner(os.Stdin)
	var final uint64
	if !in.Scan() {
		return fail(errors.New("stdin closed before drain"))
	}
	if _, err := fmt.Sscanf(in.Text(), "drain %d", &final); err != nil {
		return fail(fmt.Errorf("want \"drain SIZE\", got %q", in.Text()))
	}
	cpu := processCPU() - cpu0
	res := w.drain(final)
	res.CPU = cpu.Nanoseconds()
	out, err := json.Marshal(res)
	if err == nil {
		err = os.WriteFile(f[3], out, 0o600)
	}
	if err != nil {
		return fail(err)
	}
	return 0
}

// watchers are n WatchTally streams, each on its own connection as a
// committee member's or auditor's machine would be, signed by the
// committee key, recording when each overview arrives and at which
// checkpoint. They decode only the checkpoint's size (sizeCodec), so the
// figures are the server's, not the watchers' own decoding.
type watchers struct {
	n      int
	conns  []*grpc.ClientConn
	cancel context.CancelFunc
	wg     sync.WaitGroup
	seen   [][]seen
	latest []atomic.Uint64
	errs   []error
	bytes  atomic.Int64 // the largest overview message seen
}

func newWatchers(n int) *watchers {
	return &watchers{n: n, seen: make([][]seen, n), latest: make([]atomic.Uint64, n), errs: make([]error, n)}
}

// attach starts the watchers on the server at addr and returns once each
// has its first overview.
func (w *watchers) attach(addr string, cc client.Config) error {
	com := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "committee", time.Now())
	signer := &callauth.Signer{ElectionID: testElection, KeyID: election.CommitteeAuthor, Key: com.Key}
	req := &doorstepv1.WatchTallyRequest{ElectionId: testElection}
	hash, err := callauth.RequestHash(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	w.conns = make([]*grpc.ClientConn, w.n)
	desc := &doorstepv1.ElectionService_ServiceDesc.Streams[0]
	if desc.StreamName != "WatchTally" {
		return fmt.Errorf("stream 0 of ElectionService is %s", desc.StreamName)
	}
	var started sync.WaitGroup
	sem := make(chan struct{}, 32) // handshakes at once
	for i := range w.n {
		// Dialed as the committee's client dials.
		conn, err := cc.New(addr, append([]grpc.DialOption{grpc.WithDefaultCallOptions(grpc.ForceCodecV2(sizeCodec{}))}, committee.DialOptions()...)...)
		if err != nil {
			return err
		}
		w.conns[i] = conn
		w.seen[i] = make([]seen, 0, 256)
		started.Add(1)
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			sem <- struct{}{}
			md, err := signer.Metadata(doorstepv1.ElectionService_WatchTally_FullMethodName, hash)
			var st grpc.ClientStream
			if err == nil {
				st, err = conn.NewStream(metadata.NewOutgoingContext(ctx, md), desc, doorstepv1.ElectionService_WatchTally_FullMethodName, grpc.WaitForReady(true))
			}
			if err == nil {
				err = st.SendMsg(req)
			}
			if err == nil {
				err = st.CloseSend()
			}
			var first overviewSize
			if err == nil {
				err = st.RecvMsg(&first)
			}
			<-sem
			started.Done()
			if err != nil {
				w.errs[i] = err
				return
			}
			w.record(i, first)
			for {
				var m overviewSize
				if err := st.RecvMsg(&m); err != nil {
					if ctx.Err() == nil {
						w.errs[i] = err
					}
					return
				}
				w.record(i, m)
			}
		}()
	}
	started.Wait()
	for i, err := range w.errs {
		if err != nil {
			return fmt.Errorf("watcher %d: %w", i, err)
		}
	}
	return nil
}

func (w *watchers) record(i int, m overviewSize) {
	w.seen[i] = append(w.seen[i], seen{time.Now().UnixNano(), m.size})
	w.latest[i].Store(m.size)
	if int64(m.bytes) > w.bytes.Load() {
		w.bytes.Store(int64(m.bytes)) // racy max; a figure for the log line only
	}
}

// drain waits until every watcher has seen checkpoint final, then stops
// them and says what they saw.
func (w *watchers) drain(final uint64) *watchResults {
	deadline := time.Now().Add(30 * time.Second)
	res := &watchResults{}
	for i := range w.n {
		for w.latest[i].Load() < final {
			if time.Now().After(deadline) {
				res.Errs = append(res.Errs, fmt.Sprintf("watcher %d saw checkpoint %d at the end, want %d (error: %v)", i, w.latest[i].Load(), final, w.errs[i]))
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	w.cancel()
	w.wg.Wait()
	for _, c := range w.conns {
		c.Close()
	}
	for i, err := range w.errs {
		if err != nil {
			res.Errs = append(res.Errs, fmt.Sprintf("watcher %d: %v", i, err))
		}
	}
	res.Seen, res.Bytes = w.seen, int(w.bytes.Load())
	return res
}

// watcherProc is the watchers' process as BenchmarkWatch's runs see it.
type watcherProc struct {
	n     int
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   string // the results file
	acks  [][]pushAck
	res   *watchResults
}

func newWatcherProc(n, devices int) *watcherProc {
	return &watcherProc{n: n, acks: make([][]pushAck, devices)}
}

func (w *watcherProc) attach(b *testing.B, srv *tallyd.Server) {
	b.Helper()
	bin, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	w.out = filepath.Join(b.TempDir(), "watchers.json")
	w.cmd = exec.Command(bin)
	w.cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d %s", watchProcEnv, srv.Addr(), srv.Pin(), w.n, w.out))
	w.cmd.Stderr = os.Stderr
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		b.Fatal(err)
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		w.cmd.Process.Kill()
		w.cmd.Wait()
		b.Fatalf("the watchers' process did not get ready (%q, %v)", line, err)
	}
}

func (w *watcherProc) acked(d int, at time.Time, size uint64) {
	w.acks[d] = append(w.acks[d], pushAck{at.UnixNano(), size})
}

// drain has the watchers' process wait until every watcher has seen the
// last push's checkpoint, then reads what they saw.
func (w *watcherProc) drain(b *testing.B) {
	b.Helper()
	var final uint64
	for _, as := range w.acks {
		for _, a := range as {
			final = max(final, a.size)
		}
	}
	_, err := fmt.Fprintf(w.stdin, "drain %d\n", final)
	w.stdin.Close()
	if werr := w.cmd.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		b.Fatalf("the watchers' process: %v", err)
	}
	data, err := os.ReadFile(w.out)
	if err != nil {
		b.Fatal(err)
	}
	w.res = &watchResults{}
	if err := json.Unmarshal(data, w.res); err != nil {
		b.Fatal(err)
	}
	for _, e := range w.res.Errs {
		b.Error(e)
	}
	if len(w.res.Seen) != w.n {
		b.Fatalf("the watchers' process reported %d watchers, want %d", len(w.res.Seen), w.n)
	}
}

// latencies is, for every push and every watcher, the time from the push's
// answer to the watcher's first overview at or past its checkpoint (zero
// when the overview came first).
func (w *watcherProc) latencies() []time.Duration {
	var acks []pushAck
	for _, as := range w.acks {
		acks = append(acks, as...)
	}
	out := make([]time.Duration, 0, len(acks)*w.n)
	for _, ss := range w.res.Seen {
		for _, a := range acks {
			j := sort.Search(len(ss), func(j int) bool { return ss[j].Size >= a.size })
			if j == len(ss) {
				continue // drain reported it
			}
			out = append(out, max(time.Duration(ss[j].At-a.at), 0))
		}
	}
	slices.Sort(out)
	return out
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(int(q*float64(len(sorted))), len(sorted)-1)]
}

// overviewSize is what a benchmark watcher decodes of a WatchTallyResponse.
type overviewSize struct {
	size  uint64 // overview.tally.checkpoint.size
	bytes int    // the message's size
}

// sizeCodec sends requests as the proto codec does and decodes a
// WatchTallyResponse only as far as its checkpoint's size.
type sizeCodec struct{}

func (sizeCodec) Marshal(v any) (mem.BufferSlice, error) { return protoCodec.Marshal(v) }

func (sizeCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*overviewSize)
	if !ok {
		return protoCodec.Unmarshal(data, v)
	}
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData() // no copy: only read here
	} else {
		b = data.Materialize()
	}
	m.bytes = len(b)
	// WatchTallyResponse.overview (1) → ElectionOverview.tally (1) →
	// Tally.checkpoint (2) → Checkpoint.size (2).
	for _, field := range []protowire.Number{1, 1, 2} {
		var err error
		if b, err = subMessage(b, field); err != nil {
			return err
		}
	}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if num == 2 && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return protowire.ParseError(n)
			}
			m.size = v
			return nil
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil
}

func (sizeCodec) Name() string { return "proto" }

// subMessage returns the bytes of field num, a message, in b.
func subMessage(b []byte, num protowire.Number) ([]byte, error) {
	for len(b) > 0 {
		n2, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
		if n2 == num && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			return v, nil
		}
		n = protowire.ConsumeFieldValue(n2, typ, b)
		if n < 0 {
			return nil, protowire.ParseError(n)
		}
		b = b[n:]
	}
	return nil, errors.New("no checkpoint in the overview")
}

// median is the median of xs, the mean of the middle two for an even
// count.
func median[T ~int64 | ~float64](xs []T) T {
	xs = slices.Clone(xs)
	slices.Sort(xs)
	return (xs[(len(xs)-1)/2] + xs[len(xs)/2]) / 2
}

// BenchmarkWatch measures what watching costs while a canvassing day is
// pushed (BenchmarkIngest's workload and machinery: 100 devices, each on
// its own connection, batches of 100, fsync before ack, TLS): each run
// ingests the day into a fresh server with no watcher, then into another
// with -watch.watchers WatchTally watchers attached, each on its own
// connection, in a process of their own (watchProcEnv) that shares the
// machine's cores with the server. For every push and
// every watcher it takes the time from the push's answer to the watcher's
// first overview at or past the answer's checkpoint. The last line has the
// median and p99 of those times over all runs, the median of each run's
// ratio of its ingest rates with and without watchers (its two ingests
// one after the other), the ratio of the median rates, and the CPU time
// of the server's process (with the devices) and of the watchers'.
// Each run also says how long the server process's goroutines waited for
// a processor (p90), milliseconds meaning the cores are full. The store's
// one commit goroutine is the ingest's bottleneck, busy about a core's
// worth, and the pushes' signature checks take most of the other core;
// the watchers' sends and the watchers' own process fill what is left,
// and the commit goroutine, preempted every 10 ms, then waits longer
// behind the checks to run again. That wait is what the ingest loses: in
// a runtime trace of one run it was runnable 0.25 s of its 3 s without
// watchers and 0.79 s with, its running time alike.
//
// The target is on each run's ratio: on a shared machine the rate of
// either ingest swings by a fifth from one run to the next as the
// neighbours' load comes and goes, and the two ingests of one run, a few
// seconds apart, see the same neighbours most often. The ratio of the
// medians pairs one run's bare ingest with another's watched one.
//
// A warm-up pair runs first and is printed but not counted: the first
// watched ingest in the process grows its heap by the watchers'
// connections and goroutines, faulting in and clearing fresh memory on
// the commit path, which a server running all day does once. Counted, it
// made the first run's ratio about 0.80 where the runs after it were
// about 0.90.
//
//	go test -run '^$' -bench BenchmarkWatch ./internal/tallyd/
func BenchmarkWatch(b *testing.B) {
	const devices, batch = 100, 100
	if *watchRuns < 1 || *watchWatchers < 1 {
		b.Fatal("-watch.runs and -watch.watchers must be at least 1")
	}
	// At least 50,000 records a run, so that a run lasts long enough for
	// its rate to mean something.
	perDevice := max(b.N, 50_000) / devices
	day := planCanvassDay(b, devices, perDevice, batch)
	b.ResetTimer()
	b.StopTimer()
	var bare, watched []ingestRun
	var all []time.Duration
	var msgBytes int64
	var watcherCPU, pairRatios []float64
	for i := -1; i < *watchRuns; i++ {
		// Every other run has the watched ingest first, so that neither
		// gains from going second; the warm-up (-1) has it second.
		var r, wr ingestRun
		w := newWatcherProc(*watchWatchers, devices)
		if i%2 != 1 {
			r = runIngest(b, day, false)
			wr = runIngestWatched(b, day, false, w)
		} else {
			wr = runIngestWatched(b, day, false, w)
			r = runIngest(b, day, false)
		}
		lat := w.latencies()
		overviews := 0
		checkpoints := map[uint64]bool{} // one per commit the watchers were sent
		for _, ss := range w.res.Seen {
			overviews += len(ss)
			for _, s := range ss {
				checkpoints[s.Size] = true
			}
		}
		wcpu := time.Duration(w.res.CPU)
		run := "warm-up (not counted)"
		if i >= 0 {
			run = fmt.Sprintf("%d/%d", i+1, *watchRuns)
			bare, watched = append(bare, r), append(watched, wr)
			pairRatios = append(pairRatios, wr.rate/r.rate)
			all = append(all, lat...)
			msgBytes = max(msgBytes, int64(w.res.Bytes))
			watcherCPU = append(watcherCPU, wcpu.Seconds())
		}
		perOverview := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(max(overviews, 1)) }
		fmt.Printf("watch run %s of %s records: %s records/s with no watcher, %s records/s with %d watchers (ratio %.2f); server's CPU %.2f s and %.2f s (ratio %.2f), watchers' %.2f s; %s overviews sent at %d checkpoints, each %.1f µs more of the server's CPU and %.1f µs of the watchers'; ack to watcher: median %s, p99 %s, max %s over %d samples; overview message %d bytes at most; the server process's goroutines waited for a processor %s (p90) without watchers, %s with\n",
			run, thousands(float64(day.records)), thousands(r.rate), thousands(wr.rate), *watchWatchers, wr.rate/r.rate,
			r.cpu.Seconds(), wr.cpu.Seconds(), r.cpu.Seconds()/wr.cpu.Seconds(), wcpu.Seconds(), thousands(float64(overviews)), len(checkpoints), perOverview(wr.cpu-r.cpu), perOverview(wcpu),
			quantile(lat, 0.5).Round(100*time.Microsecond), quantile(lat, 0.99).Round(100*time.Microsecond), quantile(lat, 1).Round(100*time.Microsecond), len(lat), w.res.Bytes,
			r.schedP90.Round(100*time.Microsecond), wr.schedP90.Round(100*time.Microsecond))
		runtime.GC()
	}
	var rateBare, rateWatched, cpuBare, cpuWatched []float64
	var waitBare, waitWatched []time.Duration
	for i := range bare {
		rateBare, rateWatched = append(rateBare, bare[i].rate), append(rateWatched, watched[i].rate)
		cpuBare, cpuWatched = append(cpuBare, bare[i].cpu.Seconds()), append(cpuWatched, watched[i].cpu.Seconds())
		waitBare, waitWatched = append(waitBare, bare[i].schedP90), append(waitWatched, watched[i].schedP90)
	}
	mb, mw := median(rateBare), median(rateWatched)
	cpuRatio := median(cpuBare) / median(cpuWatched)
	slices.Sort(all)
	p50, p99 := quantile(all, 0.5), quantile(all, 0.99)
	ratio := median(pairRatios)
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(ratio, "ingest-ratio")
	b.ReportMetric(mw/mb, "rate-ratio")
	b.ReportMetric(1e9/mw, "ns/op")
	b.ReportMetric(cpuRatio, "cpu-ratio")
	fmt.Printf("watch: ack to watcher median %s, p99 %s (%d watchers, %s samples over %d runs; target p99 < 100ms); ingest with watchers over without, median of each run's ratio %.2f (target ≥ 0.90; runs from %.2f to %.2f), median rates %s and %s records/s (ratio %.2f); server's CPU per run median %.2f s without watchers, %.2f s with, ratio %.2f; watchers' process %.2f s; server process's wait for a processor (p90) median %s without watchers, %s with; overview %d bytes at most\n",
		p50.Round(100*time.Microsecond), p99.Round(100*time.Microsecond), *watchWatchers, thousands(float64(len(all))), *watchRuns,
		ratio, slices.Min(pairRatios), slices.Max(pairRatios), thousands(mw), thousands(mb), mw/mb, median(cpuBare), median(cpuWatched), cpuRatio, median(watcherCPU),
		median(waitBare).Round(100*time.Microsecond), median(waitWatched).Round(100*time.Microsecond), msgBytes)
}
