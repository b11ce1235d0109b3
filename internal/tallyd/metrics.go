package tallyd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// DefaultMetricsListen is the address the README suggests for --metrics:
// Prometheus's usual range, on loopback.
const DefaultMetricsListen = "127.0.0.1:9464"

// metrics is what the Server tells Prometheus: one registry of its own
// (not the process-wide default), filled by the store's hooks, the
// listeners' counts and a gRPC stats handler.
type metrics struct {
	reg *prometheus.Registry

	records       *prometheus.CounterVec
	replayed      prometheus.Counter
	commitRecords prometheus.Histogram
	commitSeconds prometheus.Histogram
	writeSeconds  prometheus.Histogram
	commitsFailed prometheus.Counter
	diskFull      prometheus.Counter
	logEntries    *prometheus.GaugeVec
	streams       prometheus.Gauge
	callsRefused  *prometheus.CounterVec
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.records = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "doorstep_records_total",
		Help: "Records decided and logged, by the store's status (accepted, duplicate, superseded, contested, rejected) and reason (none when accepted; after_sync_deadline for a late ballot...). Replays and door refusals are counted apart.",
	}, []string{"status", "reason"})
	m.replayed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "doorstep_records_replayed_total",
		Help: "Records sent again and answered with their first decision (a device retrying after a lost answer).",
	})
	m.commitRecords = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "doorstep_commit_records",
		Help:    "Records per group commit (one write transaction and fsync).",
		Buckets: prometheus.ExponentialBuckets(1, 4, 8), // 1 … 16384
	})
	m.commitSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "doorstep_commit_duration_seconds",
		Help:    "Time of a group commit, from the start of its write transaction to its commit on disk.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5 ms … 4 s
	})
	m.writeSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "doorstep_commit_fsync_duration_seconds",
		Help:    "Time a group commit spent writing its pages and syncing them to disk (fdatasync of the pages and of the meta page).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
	})
	m.commitsFailed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "doorstep_commits_failed_total",
		Help: "Group commits that failed, disk full included; their callers were told and nothing of them was stored.",
	})
	m.diskFull = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "doorstep_disk_full_total",
		Help: "Group commits that failed because the disk or the quota was full (ENOSPC, EDQUOT).",
	})
	m.logEntries = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "doorstep_log_entries",
		Help: "Entries in an election's ballot log, as of its last commit since tallyd started.",
	}, []string{"election"})
	m.streams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "doorstep_grpc_streams_open",
		Help: "gRPC calls in flight (each is an HTTP/2 stream), WatchTally's included.",
	})
	m.callsRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "doorstep_calls_refused_total",
		Help: "Calls refused, by gRPC code (PermissionDenied, Unauthenticated, InvalidArgument, ResourceExhausted...): every one, where the log names the first 20 of a kind a minute.",
	}, []string{"code"})
	m.reg.MustRegister(m.callsRefused, m.records, m.replayed, m.commitRecords, m.commitSeconds, m.writeSeconds, m.commitsFailed, m.diskFull, m.logEntries, m.streams,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// callRefused counts a refused call.
func (m *metrics) callRefused(c codes.Code) { m.callsRefused.WithLabelValues(c.String()).Inc() }

// hooks are the store's hooks that fill m.
func (m *metrics) hooks() store.Hooks {
	return store.Hooks{
		Commit: func(c store.CommitStats) {
			if c.Err != nil {
				m.commitsFailed.Inc()
				if c.DiskFull {
					m.diskFull.Inc()
				}
				return
			}
			m.commitRecords.Observe(float64(c.Records))
			m.commitSeconds.Observe(c.Took.Seconds())
			m.writeSeconds.Observe(c.Write.Seconds())
		},
		Answered: func(results []*doorstepv1.RecordResult) {
			for _, r := range results {
				switch {
				case r == nil || r.GetRefused():
					// Door refusals: the store counts them (refusedCollector).
				case r.GetReplayed():
					m.replayed.Inc()
				default:
					m.records.WithLabelValues(statusLabel(r.GetStatus()), reasonLabel(r.GetReason())).Inc()
				}
			}
		},
		LogSize: func(electionID string, size int64) {
			m.logEntries.WithLabelValues(electionID).Set(float64(size))
		},
	}
}

func statusLabel(s doorstepv1.RecordStatus) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "RECORD_STATUS_"))
}

func reasonLabel(r doorstepv1.ReasonCode) string {
	if r == doorstepv1.ReasonCode_REASON_CODE_UNSPECIFIED {
		return "none"
	}
	return strings.ToLower(strings.TrimPrefix(r.String(), "REASON_CODE_"))
}

// serving registers what is known once the server runs: the store's
// refusals and file, the listeners' connections, the watchers.
func (m *metrics) serving(st *store.Store, dbPath string, lis map[string]connCounter, watchers func() int64) {
	m.reg.MustRegister(&refusedCollector{st: st})
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "doorstep_store_file_bytes",
		Help: "Size of the data file (" + DBFile + ") on disk.",
	}, func() float64 {
		fi, err := os.Stat(dbPath)
		if err != nil {
			return 0
		}
		return float64(fi.Size())
	}))
	for name, l := range lis {
		labels := prometheus.Labels{"listener": name}
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "doorstep_connections_open", Help: "Connections held open by a listener (grpc: devices and the CLI; web: browsers).", ConstLabels: labels,
		}, func() float64 { return float64(l.Open()) }))
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "doorstep_connections_refused_total", Help: "Connections closed at once because the listener held as many as it allows (--max-conns).", ConstLabels: labels,
		}, func() float64 { return float64(l.Refused()) }))
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "doorstep_watchers",
		Help: "Live overviews open: WatchTally calls and dashboard pages.",
	}, func() float64 { return float64(watchers()) }))
}

// connCounter is what metrics reads of a connlimit.Listener.
type connCounter interface {
	Open() int
	Refused() uint64
}

// refusedCollector reports the store's count of records refused at the
// door, by reason, as it stands at each scrape.
type refusedCollector struct{ st *store.Store }

var refusedDesc = prometheus.NewDesc("doorstep_records_refused_total",
	"Records refused at the door, by reason: not signed by an enrolled key, malformed or too large; answered, never logged.",
	[]string{"reason"}, nil)

func (c *refusedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- refusedDesc }

func (c *refusedCollector) Collect(ch chan<- prometheus.Metric) {
	for reason, n := range c.st.Refused() {
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(n), reasonLabel(reason))
	}
}

// streamCounter is a gRPC stats handler that counts the calls in flight.
type streamCounter struct{ open prometheus.Gauge }

func (s streamCounter) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (s streamCounter) HandleRPC(_ context.Context, st stats.RPCStats) {
	switch st.(type) {
	case *stats.Begin:
		s.open.Inc()
	case *stats.End:
		s.open.Dec()
	}
}
func (s streamCounter) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (s streamCounter) HandleConn(context.Context, stats.ConnStats)                       {}

// metricsServer serves /metrics over plain HTTP on the operator's address.
type metricsServer struct {
	lis  net.Listener
	srv  *http.Server
	done chan struct{}
}

// checkMetricsAddr refuses a metrics address that is not loopback unless
// anyAddr: metrics say how busy the server is and name its elections, and
// are served without a login, so other addresses only when the operator
// allows them (a private network's scraper).
func checkMetricsAddr(addr string, anyAddr bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics address %q: %w", addr, err)
	}
	if !anyAddr && !loopback(host) {
		return fmt.Errorf("metrics are served over plain HTTP without a login, so only on a loopback address (such as %s), not %q: give --metrics-allow-remote to serve them on another address, behind a firewall", DefaultMetricsListen, addr)
	}
	return nil
}

// startMetrics serves m on addr.
func startMetrics(addr string, anyAddr bool, m *metrics, log *slog.Logger) (*metricsServer, error) {
	if err := checkMetricsAddr(addr, anyAddr); err != nil {
		return nil, err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for metrics on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}, Registry: m.reg}))
	ms := &metricsServer{lis: lis, done: make(chan struct{}), srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}}
	go func() {
		defer close(ms.done)
		if err := ms.srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return ms, nil
}

func (ms *metricsServer) stop() {
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := ms.srv.Shutdown(c); err != nil {
		ms.srv.Close()
	}
	<-ms.done
}

// slogPrinter is promhttp's error log.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("serving metrics", "err", fmt.Sprint(v...)) }
