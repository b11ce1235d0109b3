// Command doorstep is the one command line for canvassers, the election
// committee and auditors. See README.md.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/doorstep-vote/doorstep/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	env := &cli.Env{
		Stdin:     os.Stdin,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Now:       time.Now,
		Getenv:    os.Getenv,
		ConfigDir: cli.DefaultConfigDir(),
	}
	code := cli.Main(ctx, env, os.Args[1:])
	stop()
	os.Exit(code)
}
