// Command tallyd is Doorstep's tally server. See README.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

func main() {
	fs := flag.NewFlagSet("tallyd", flag.ContinueOnError)
	data := fs.String("data", tallyd.DefaultDataDir, "data `folder`: the bbolt file and the server's identity key (made on first start)")
	listen := fs.String("listen", tallyd.DefaultListen, "`host:port` to serve gRPC on")
	origin := fs.String("origin", tallyd.DefaultOrigin, "`name` of this server's ballot logs in signed checkpoints")
	tlsCert := fs.String("tls-cert", "", "a TLS certificate (chain) `file` to serve, such as one browsers trust for the server's domain; default: the certificate tallyd makes in the data folder")
	tlsKey := fs.String("tls-key", "", "the `file` of --tls-cert's key (mode 0600)")
	plaintext := fs.Bool("plaintext", false, "serve without TLS; only on a loopback --listen address (tests, or a TLS proxy on this machine)")
	gcPercent := fs.Int("gc-percent", tallyd.DefaultGCPercent, "garbage collector target `percent` (GOGC); tallyd's live heap is small, so a higher value buys ingest throughput for a few MB")
	verbose := fs.Bool("v", false, "log debug detail")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: tallyd [flags]\n\nDoorstep's tally server: stores signed ballots from canvassers' devices,\nenforces one vote per unit, keeps the live tally and the signed ballot log.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := tallyd.Start(ctx, tallyd.Config{DataDir: *data, Listen: *listen, Origin: *origin, TLSCert: *tlsCert, TLSKey: *tlsKey, Plaintext: *plaintext, Logger: log, Stderr: os.Stderr, Now: time.Now, GCPercent: *gcPercent})
	if err != nil {
		fmt.Fprintf(os.Stderr, "tallyd: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "tallyd: serving on %s; server key fingerprint %s; TLS pin %s\n", srv.Addr(), srv.Fingerprint(), srv.Pin())
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-waitErr(srv):
		log.Error("server stopped", "err", err)
	}
	if err := srv.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "tallyd: %v\n", err)
		os.Exit(1)
	}
}

func waitErr(s *tallyd.Server) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.Wait() }()
	return ch
}
