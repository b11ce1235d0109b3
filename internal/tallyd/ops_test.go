package tallyd_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	mathrand "math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/proctest"
	"github.com/doorstep-vote/doorstep/internal/server"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// logBuffer is a slog destination tests read while the server writes.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// scrape reads addr's /metrics in Prometheus's text format: each series
// as printed (name{labels}) to its value.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("scrape: bad line %q", line)
		}
		out[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// family sums the series of a metric family (name, or name{…).
func family(m map[string]float64, name string) (sum float64, ok bool) {
	for k, v := range m {
		if k == name || strings.HasPrefix(k, name+"{") {
			sum, ok = sum+v, true
		}
	}
	return sum, ok
}

// newDevice opens a device that retries quickly and joins e on server;
// it returns the device and its id.
func newDevice(t *testing.T, e *crashElection, server, fingerprint, pin, label string, seed uint64) (*device.Device, string) {
	t.Helper()
	d, err := device.Open(filepath.Join(t.TempDir(), label), device.Options{Sync: device.SyncOptions{
		BatchSize:   25,
		CallTimeout: 5 * time.Second,
		BackoffBase: 20 * time.Millisecond,
		BackoffMax:  200 * time.Millisecond,
		Jitter:      mathrand.New(mathrand.NewPCG(seed, 2)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	enr, err := d.Join(ctx(t), enrollcode.Code{Server: server, ElectionID: testElection, Token: e.token, Fingerprint: fingerprint, TLS: pin}, label)
	if err != nil {
		t.Fatalf("join: %v", err)
	}
	return d, enr.DeviceID
}

// record makes n records on d offline.
func record(t *testing.T, d *device.Device, e *crashElection, n int, seed uint64) {
	t.Helper()
	if err := canvass(ctx(t), d, e.units, n, 0, mathrand.New(mathrand.NewPCG(seed, 3)), make(chan struct{}, 1)); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsScrape serves metrics on loopback, pushes records of every
// kind, scrapes /metrics over HTTP and checks that every family is there
// and that the counters moved.
func TestMetricsScrape(t *testing.T) {
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebListen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := newCrashElection(t, 30)
	ec := e.setUp(t, srv.Client(), srv.Addr(), srv.OperatorToken())
	d, _ := newDevice(t, e, srv.Addr(), srv.Fingerprint(), srv.Pin(), "phone", 1)
	record(t, d, e, 20, 1)
	if _, err := d.Sync(ctx(t), 3); err != nil {
		t.Fatalf("sync: %v", err)
	}
	// A second device pushes a record that is not one: refused at the door.
	if _, err := ec.SubmitCommitteeRecords(ctx(t), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection,
		Records: []*doorstepv1.SignedRecord{e.committee.Committee(t, signedtest.Grant("probe", "probe"))}}); err != nil {
		t.Fatal(err)
	}
	sc := doorstepv1.NewSyncServiceClient(mustDial(t, srv.Client(), srv.Addr()))
	probe := signedtest.NewAuthor(testElection, "", "metrics probe", time.Now())
	enr, err := sc.Enroll(ctx(t), &doorstepv1.EnrollRequest{ElectionId: testElection, EnrollmentToken: signedtest.Token("probe"), DevicePublicKey: probe.Public(), Label: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := sc.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: []*doorstepv1.SignedRecord{{Body: []byte("junk"), Signature: make([]byte, 64)}}},
		signedCall(testElection, enr.GetDeviceId(), probe.Key, time.Now))
	if err != nil || !resp.GetResults()[0].GetRefused() {
		t.Fatalf("junk push: %v %v", resp, err)
	}
	// And a call no one signed.
	if _, err := sc.PushRecords(ctx(t), &doorstepv1.PushRecordsRequest{ElectionId: testElection}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("unsigned push: %v", err)
	}

	// The committee watches the overview while the scrape runs.
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	watch, err := ec.WatchTally(wctx, &doorstepv1.WatchTallyRequest{ElectionId: testElection},
		signedCall(testElection, e.committee.ID, e.committee.Key, time.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatalf("watch: %v", err)
	}

	m := scrape(t, srv.MetricsAddr())
	for _, f := range []string{
		"doorstep_records_total", "doorstep_records_replayed_total", "doorstep_records_refused_total",
		"doorstep_commit_records_bucket", "doorstep_commit_duration_seconds_bucket", "doorstep_commit_fsync_duration_seconds_bucket",
		"doorstep_commits_failed_total", "doorstep_disk_full_total", "doorstep_log_entries", "doorstep_store_file_bytes",
		"doorstep_connections_open", "doorstep_connections_refused_total", "doorstep_grpc_streams_open", "doorstep_watchers", "doorstep_calls_refused_total",
		"go_goroutines", "process_open_fds",
	} {
		if _, ok := family(m, f); !ok {
			t.Errorf("/metrics has no %s", f)
		}
	}
	if _, ok := m[`doorstep_connections_open{listener="web"}`]; !ok {
		t.Error("/metrics has no connection gauge for the web port")
	}
	for _, c := range []struct {
		series string
		min    float64
	}{
		{`doorstep_records_total{reason="none",status="accepted"}`, 1},
		{`doorstep_commit_records_count`, 1},
		{`doorstep_commit_records_sum`, 20},
		{`doorstep_commit_fsync_duration_seconds_count`, 1},
		{`doorstep_log_entries{election="` + testElection + `"}`, 25}, // 5 committee records and 20 of the device
		{`doorstep_connections_open{listener="grpc"}`, 1},
		{`doorstep_store_file_bytes`, 1},
		{`doorstep_records_refused_total{reason="malformed"}`, 1},
		{`doorstep_calls_refused_total{code="Unauthenticated"}`, 1},
		{`doorstep_watchers`, 1},
		{`doorstep_grpc_streams_open`, 1}, // the watch
	} {
		if got := m[c.series]; got < c.min {
			t.Errorf("%s = %v, want at least %v", c.series, got, c.min)
		}
	}
	if got, _ := family(m, "doorstep_records_total"); got < 20 {
		t.Errorf("doorstep_records_total sums to %v; the device's 20 records were decided", got)
	}
	if got := m[`doorstep_disk_full_total`]; got != 0 {
		t.Errorf("doorstep_disk_full_total = %v with room on the disk", got)
	}
}

// fullDisk fails the store's commits as a full disk does while it is set.
type fullDisk struct{ full atomic.Bool }

func (f *fullDisk) fault() error {
	if f.full.Load() {
		return &fs.PathError{Op: "write", Path: tallyd.DBFile, Err: syscall.ENOSPC}
	}
	return nil
}

const diskFullWords = "the server is out of disk space; your ballots are kept on this device and will be sent again"

// TestDiskFull fills the disk under a device that syncs through real
// gRPC: it is told in words a canvasser understands, keeps every record
// and retries with backoff; the operator's log says it once for the
// burst; metrics count it; once there is room again the device finishes
// by itself and the server holds every record once.
func TestDiskFull(t *testing.T) {
	var logs logBuffer
	var disk fullDisk
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(&logs, nil)), CommitFault: disk.fault, MetricsListen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := newCrashElection(t, 40)
	ec := e.setUp(t, srv.Client(), srv.Addr(), srv.OperatorToken())
	d, id := newDevice(t, e, srv.Addr(), srv.Fingerprint(), srv.Pin(), "phone", 2)
	record(t, d, e, 30, 2)
	before, err := srv.Store().LogSize(ctx(t), testElection)
	if err != nil {
		t.Fatal(err)
	}

	disk.full.Store(true)
	_, err = d.Sync(ctx(t), 1)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), diskFullWords) {
		t.Fatalf("sync to a full disk: %v; want ResourceExhausted saying %q", err, diskFullWords)
	}
	st, err := d.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Pending != 30 || !strings.Contains(st.LastError, "out of disk space") {
		t.Fatalf("after the refused sync: %d of 30 records pending, last error %q", st.Pending, st.LastError)
	}

	// The device keeps trying, with backoff, while the disk stays full.
	bg, stop := context.WithCancel(context.Background())
	defer stop()
	synced := make(chan error, 1)
	go func() {
		_, err := d.Sync(bg, 0)
		synced <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for scrape(t, srv.MetricsAddr())["doorstep_disk_full_total"] < 4 {
		if time.Now().After(deadline) {
			t.Fatal("the device did not retry against the full disk")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := strings.Count(logs.String(), "out of disk space: writes fail"); n != 1 {
		t.Errorf("the log says the disk is full %d times in one burst; want once:\n%s", n, logs.String())
	}
	if n, _ := srv.Store().LogSize(ctx(t), testElection); n != before {
		t.Errorf("the log grew from %d to %d entries while the disk was full", before, n)
	}

	disk.full.Store(false)
	select {
	case err := <-synced:
		if err != nil {
			t.Fatalf("sync once there is room: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the device did not finish once there was room")
	}
	if st, _ := d.Status(); st.Pending != 0 {
		t.Errorf("%d records still pending", st.Pending)
	}
	if !strings.Contains(logs.String(), "writes work again") {
		t.Errorf("the log does not say writes work again:\n%s", logs.String())
	}
	all := deviceRecords(t, d)
	held := loggedIDs(t, srv.Store(), id)
	for i, sr := range all {
		if rid := signedtest.RecordID(t, sr); held[rid] != 1 {
			t.Errorf("record %d (%s) is in the log %d times; want once", i+1, rid, held[rid])
		}
	}
	if got, want := e.tallyJSON(t, ec), cleanReplay(t, e, []pushedBy{{d.PublicKey(), all}}); !bytes.Equal(got, want) {
		t.Errorf("tally after the full disk differs from a clean replay:\ngot  %s\nwant %s", got, want)
	}
}

// TestDiskFullTmpfs fills a real disk under a real tallyd process: a small
// tmpfs holding its data folder. It needs root on Linux (CI runs so) and
// is skipped where mounting is not permitted.
func TestDiskFullTmpfs(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root on Linux")
	}
	mnt := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(mnt, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=8m,mode=0700"); err != nil {
		t.Skipf("cannot mount a tmpfs here: %v", err)
	}
	// Registered before the process starts, so it runs after the process
	// is stopped; t.TempDir's removal runs after it.
	t.Cleanup(func() {
		if err := syscall.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount the tmpfs: %v", err)
		}
	})
	srv := &tallydProc{t: t, bin: proctest.Build(t, proctest.Tallyd), dir: filepath.Join(mnt, "data"), addr: freeAddr(t)}
	srv.start()
	e := newCrashElection(t, 200)
	ec := e.setUp(t, srv.client(), srv.addr, srv.operatorToken())
	info, err := doorstepv1.NewSyncServiceClient(mustDial(t, srv.client(), srv.addr)).GetServerInfo(ctx(t), &doorstepv1.GetServerInfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	d, id := newDevice(t, e, srv.addr, info.GetFingerprint(), srv.client().Pin, "phone", 3)
	record(t, d, e, 150, 3)

	// Fill what is left of the tmpfs.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill the tmpfs: %v", err)
			}
			break
		}
	}
	f.Close()

	_, err = d.Sync(ctx(t), 1)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), diskFullWords) {
		t.Fatalf("sync to a full tmpfs: %v; want ResourceExhausted saying %q", err, diskFullWords)
	}
	if st, _ := d.Status(); st.Pending == 0 {
		t.Fatal("nothing pending after the refused sync")
	}
	if !strings.Contains(srv.p.Stderr(), "out of disk space") {
		t.Errorf("tallyd's log does not say the disk is full:\n%s", srv.p.Stderr())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := d.Sync(c, 0); err != nil {
		t.Fatalf("sync once there is room: %v", err)
	}
	if st, _ := d.Status(); st.Pending != 0 {
		t.Fatalf("%d records pending once there is room", st.Pending)
	}
	got := e.tallyJSON(t, ec)
	all := deviceRecords(t, d)
	srv.stop()
	if !strings.Contains(srv.p.Stderr(), "writes work again") {
		t.Errorf("tallyd's log does not say writes work again:\n%s", srv.p.Stderr())
	}
	st := openStore(t, srv.dir)
	held := loggedIDs(t, st, id)
	st.Close()
	for i, sr := range all {
		if rid := signedtest.RecordID(t, sr); held[rid] != 1 {
			t.Errorf("record %d (%s) is in the log %d times; want once", i+1, rid, held[rid])
		}
	}
	if want := cleanReplay(t, e, []pushedBy{{d.PublicKey(), all}}); !bytes.Equal(got, want) {
		t.Errorf("tally after the full tmpfs differs from a clean replay:\ngot  %s\nwant %s", got, want)
	}
}

// TestRefusalLogLines: every refusal gets a log line naming a request id
// that the caller gets in a header, and a flood is cut to the burst.
func TestRefusalLogLines(t *testing.T) {
	var logs logBuffer
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	e := newCrashElection(t, 10)
	ec := e.setUp(t, srv.Client(), srv.Addr(), srv.OperatorToken())
	if _, err := ec.SubmitCommitteeRecords(ctx(t), &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection,
		Records: []*doorstepv1.SignedRecord{e.committee.Committee(t, signedtest.Grant("probe", "probe"))}}); err != nil {
		t.Fatal(err)
	}
	sc := doorstepv1.NewSyncServiceClient(mustDial(t, srv.Client(), srv.Addr()))
	probe := signedtest.NewAuthor(testElection, "", "refusal probe", time.Now())
	enr, err := sc.Enroll(ctx(t), &doorstepv1.EnrollRequest{ElectionId: testElection, EnrollmentToken: signedtest.Token("probe"), DevicePublicKey: probe.Public(), Label: "probe"})
	if err != nil {
		t.Fatal(err)
	}
	junk := func(n int) *doorstepv1.PushRecordsRequest {
		r := &doorstepv1.PushRecordsRequest{ElectionId: testElection}
		for range n {
			r.Records = append(r.Records, &doorstepv1.SignedRecord{Body: []byte("junk"), Signature: make([]byte, 64)})
		}
		return r
	}
	requestID := func(t *testing.T, md metadata.MD) string {
		t.Helper()
		v := md.Get(server.RequestIDKey)
		if len(v) != 1 || len(v[0]) != 16 {
			t.Fatalf("header %s: %q; want one request id", server.RequestIDKey, v)
		}
		return v[0]
	}

	t.Run("a call refused", func(t *testing.T) {
		var md metadata.MD
		_, err := sc.PushRecords(ctx(t), junk(1), grpc.Header(&md)) // not signed
		if status.Code(err) != codes.Unauthenticated {
			t.Fatalf("unsigned push: %v", err)
		}
		id := requestID(t, md)
		if !strings.Contains(logs.String(), `msg="refused a call" request_id=`+id+" method=PushRecords") {
			t.Errorf("no log line for request %s:\n%s", id, logs.String())
		}
	})
	t.Run("records refused at the door, a flood cut to the burst", func(t *testing.T) {
		var md metadata.MD
		resp, err := sc.PushRecords(ctx(t), junk(100), grpc.Header(&md), signedCall(testElection, enr.GetDeviceId(), probe.Key, time.Now))
		if err != nil || len(resp.GetResults()) != 100 {
			t.Fatalf("junk push: %v", err)
		}
		id := requestID(t, md)
		if n := strings.Count(logs.String(), `msg="refused a record at the door" request_id=`+id); n != server.RefusalLogBurst {
			t.Errorf("%d log lines for 100 records refused at the door; want the burst, %d:\n%s", n, server.RefusalLogBurst, logs.String())
		}
	})
	t.Run("an answered call has no request id", func(t *testing.T) {
		var md metadata.MD
		if _, err := sc.GetServerInfo(ctx(t), &doorstepv1.GetServerInfoRequest{}, grpc.Header(&md)); err != nil {
			t.Fatal(err)
		}
		if v := md.Get(server.RequestIDKey); len(v) != 0 {
			t.Errorf("request id %q on an answered call", v)
		}
	})
}
