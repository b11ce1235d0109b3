package tallyd

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/doorstep-vote/doorstep/internal/dashboard"
	"github.com/doorstep-vote/doorstep/internal/server"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// Main runs the tallyd command line and returns the process exit code: 0
// when done, 1 when the command failed (or a check found problems), 2 for
// a command line it does not know. cmd/tallyd only wires it to the
// process; serve runs until ctx ends.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name, rest := "serve", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, rest = args[0], args[1:]
	}
	switch name {
	case "serve":
		return runServe(ctx, rest, stdout, stderr)
	case "backup":
		return runBackup(ctx, rest, stdout, stderr)
	case "check":
		return runCheck(rest, stdout, stderr)
	case "help":
		printUsage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "tallyd: unknown command %q\n\n", name)
	printUsage(stderr)
	return 2
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: tallyd [serve] [flags]
       tallyd backup --out FILE [--data DIR]
       tallyd check [--data DIR | --file FILE]

Doorstep's tally server: stores signed ballots from canvassers' devices,
enforces one vote per unit, keeps the live tally and the signed ballot log.

Commands:
  serve    serve gRPC (what tallyd does with no command)
  backup   copy the data file, consistently, while tallyd serves or not
  check    check a stopped server's data file: pages, log, tally, chains

Run 'tallyd COMMAND --help' for a command's flags.
`)
}

// newFlags makes a command's flag set. parse prints its usage.
func newFlags(name, synopsis, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet("tallyd "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // parse says what went wrong, and where
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: tallyd %s\n\n%s\n\nFlags:\n", synopsis, summary)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args, refusing stray arguments. When the command should
// not go on, done is set with the exit code: --help prints the usage to
// stdout (0), a mistake says what it was and prints the usage to stderr (2).
func parse(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, done bool) {
	usage := func(w io.Writer) {
		fs.SetOutput(w)
		fs.Usage()
		fs.SetOutput(io.Discard)
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage(stdout)
		return 0, true
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v\n\n", fs.Name(), err)
		usage(stderr)
		return 2, true
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "%s: unexpected argument %q\n\n", fs.Name(), fs.Arg(0))
		usage(stderr)
		return 2, true
	}
	return 0, false
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("serve", "[serve] [flags]",
		"Doorstep's tally server: serve gRPC on --listen from the data folder (made on\n"+
			"first start) until SIGINT or SIGTERM. Other commands: tallyd backup, tallyd check\n"+
			"(tallyd help lists them).")
	data := fs.String("data", DefaultDataDir, "data `folder`: the bbolt file and the server's identity key (made on first start)")
	listen := fs.String("listen", DefaultListen, "`host:port` to serve gRPC on")
	origin := fs.String("origin", DefaultOrigin, "`name` of this server's ballot logs in signed checkpoints")
	tlsCert := fs.String("tls-cert", "", "a TLS certificate (chain) `file` to serve, such as one browsers trust for the server's domain; default: the certificate tallyd makes in the data folder")
	tlsKey := fs.String("tls-key", "", "the `file` of --tls-cert's key (mode 0600)")
	plaintext := fs.Bool("plaintext", false, "serve without TLS; only on a loopback --listen address (tests, or a TLS proxy on this machine)")
	gcPercent := fs.Int("gc-percent", DefaultGCPercent, "garbage collector target `percent` (GOGC); tallyd's live heap is small, so a higher value buys ingest throughput for a few MB")
	web := fs.String("web", "", "`host:port` to serve the browser side on (web front ends, Connect and gRPC-Web), with the same certificate; e.g. "+DefaultWebListen+"; default: not served")
	metricsAddr := fs.String("metrics", "", "`host:port` to serve Prometheus metrics on (GET /metrics, plain HTTP), e.g. "+DefaultMetricsListen+"; loopback only unless --metrics-allow-remote; default: not served")
	metricsRemote := fs.Bool("metrics-allow-remote", false, "allow --metrics on a non-loopback address (anyone who reaches it sees the server's load and election ids: keep it behind a firewall)")
	maxConns := fs.Int("max-conns", DefaultMaxConns, fmt.Sprintf("the most `connections` held open at once on each of --listen and --web (%d to %d; lowered to fit the process's file limit)", MinMaxConns, MaxMaxConns))
	maxStreams := fs.Int("max-streams", int(server.DefaultMaxConcurrentStreams), fmt.Sprintf("the most `calls` in flight on one connection (%d to %d)", MinMaxStreams, MaxMaxStreams))
	verbose := fs.Bool("v", false, "log debug detail")
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	if err := checkLimits(*maxConns, *maxStreams); err != nil {
		fmt.Fprintf(stderr, "tallyd serve: %v\n\n", err)
		fs.SetOutput(stderr)
		fs.Usage()
		return 2
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	srv, err := Start(ctx, Config{DataDir: *data, Listen: *listen, Origin: *origin, TLSCert: *tlsCert, TLSKey: *tlsKey, Plaintext: *plaintext, WebListen: *web, Logger: log, Stderr: stderr, Now: time.Now, GCPercent: *gcPercent,
		MetricsListen: *metricsAddr, MetricsAllowRemote: *metricsRemote, MaxConns: *maxConns, MaxConcurrentStreams: uint32(*maxStreams)})
	if err != nil {
		fmt.Fprintf(stderr, "tallyd: %v\n", err)
		return 1
	}
	fmt.Fprintf(stderr, "tallyd: serving on %s; server key fingerprint %s; TLS pin %s\n", srv.Addr(), srv.Fingerprint(), srv.Pin())
	if a := srv.WebAddr(); a != "" {
		scheme := "https"
		if *plaintext {
			scheme = "http"
		}
		fmt.Fprintf(stderr, "tallyd: serving the browser side on %s; the committee's dashboard is %s://%s%s (sign in with 'doorstep committee dashboard')\n", a, scheme, a, dashboard.Path)
	}
	if a := srv.MetricsAddr(); a != "" {
		fmt.Fprintf(stderr, "tallyd: serving metrics on http://%s/metrics\n", a)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- srv.Wait() }()
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-stopped:
		log.Error("server stopped", "err", err)
	}
	if err := srv.Close(); err != nil {
		fmt.Fprintf(stderr, "tallyd: %v\n", err)
		return 1
	}
	return 0
}

// Bounds of --max-conns and --max-streams: at least one caller, and no
// more than a machine could hold (a million connections; HTTP/2 servers
// commonly allow 100 to 1,000 streams).
const (
	MinMaxConns   = 1
	MaxMaxConns   = 1_000_000
	MinMaxStreams = 1
	MaxMaxStreams = 10_000
)

func checkLimits(conns, streams int) error {
	if conns < MinMaxConns || conns > MaxMaxConns {
		return fmt.Errorf("--max-conns %d is out of range: give %d to %d (default %d)", conns, MinMaxConns, MaxMaxConns, DefaultMaxConns)
	}
	if streams < MinMaxStreams || streams > MaxMaxStreams {
		return fmt.Errorf("--max-streams %d is out of range: give %d to %d (default %d)", streams, MinMaxStreams, MaxMaxStreams, server.DefaultMaxConcurrentStreams)
	}
	return nil
}

func runBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("backup", "backup --out FILE [--data DIR]",
		"Copy the data file to FILE, consistently, while tallyd serves: the running tallyd\n"+
			"makes the copy on its admin socket in the data folder; with no tallyd running the\n"+
			"file is copied directly. It prints each election's checkpoint in the copy. To\n"+
			"restore, start tallyd on a folder holding the copy as "+DBFile+", with the\n"+
			KeyFile+", "+OperatorTokenFile+" and tls.* files of the original.")
	data := fs.String("data", DefaultDataDir, "the data `folder` to back up")
	out := fs.String("out", "", "the backup `file` to write (replaced when it exists)")
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	if *out == "" {
		fmt.Fprintf(stderr, "tallyd backup: --out is required: name the backup file\n\n")
		fs.SetOutput(stderr)
		fs.Usage()
		return 2
	}
	res, err := Backup(ctx, *data, *out)
	if err != nil {
		fmt.Fprintf(stderr, "tallyd backup: %v\n", err)
		return 1
	}
	how := "copied directly (no tallyd was running)"
	if res.Online {
		how = "copied by the running tallyd"
	}
	fmt.Fprintf(stdout, "tallyd backup: wrote %s (%d bytes) from %s, %s\n", *out, res.Bytes, filepath.Join(*data, DBFile), how)
	for _, h := range res.Heads {
		fmt.Fprintf(stdout, "  election %s: log size %d, root %s\n", h.ElectionID, h.Size, h.Root)
	}
	return 0
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "check [--data DIR | --file FILE]",
		"Check a data file while no tallyd has it open: bbolt's page check; per election, the\n"+
			"ballot log's Merkle tree and root against its entries, the stored records against\n"+
			"the log, each unit's outcome, each owner and the running totals against a recount,\n"+
			"and each device's chain marks. One line per check; exit 1 when any finds a problem.")
	data := fs.String("data", DefaultDataDir, "the data `folder` whose "+DBFile+" to check (tallyd stopped)")
	file := fs.String("file", "", "check this data `file` instead, such as a backup")
	if code, done := parse(fs, args, stdout, stderr); done {
		return code
	}
	path := *file
	if path == "" {
		path = filepath.Join(*data, DBFile)
	}
	findings, err := store.CheckFile(path)
	if err != nil {
		switch {
		case errors.Is(err, store.ErrInUse):
			fmt.Fprintf(stderr, "tallyd check: a running tallyd has %s open: stop it first, or check a copy (tallyd backup --out FILE, then tallyd check --file FILE)\n", path)
		case errors.Is(err, iofs.ErrNotExist):
			fmt.Fprintf(stderr, "tallyd check: there is no data file %s: check --data or --file\n", path)
		default:
			fmt.Fprintf(stderr, "tallyd check: %v\n", err)
		}
		return 1
	}
	failed := 0
	for _, f := range findings {
		what := f.Check
		if f.Election != "" {
			what = f.Election + " " + f.Check
		}
		if f.OK() {
			fmt.Fprintf(stdout, "ok    %s: %s\n", what, f.Summary)
			continue
		}
		failed++
		for i, p := range f.Problems {
			if i == 0 {
				fmt.Fprintf(stdout, "FAIL  %s: %s\n", what, p)
			} else {
				fmt.Fprintf(stdout, "      %s\n", p)
			}
		}
		if f.Omitted > 0 {
			fmt.Fprintf(stdout, "      and %d more\n", f.Omitted)
		}
	}
	if failed > 0 {
		fmt.Fprintf(stdout, "tallyd check: %s: %d of %d checks found problems\n", path, failed, len(findings))
		return 1
	}
	fmt.Fprintf(stdout, "tallyd check: %s: all %d checks passed\n", path, len(findings))
	return 0
}
