package tallyd_test

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// TestMainCommandLines: tallyd runs what it knows and refuses the rest
// with its usage, without serving anything.
func TestMainCommandLines(t *testing.T) {
	empty := t.TempDir()
	scratch := t.TempDir() // serve refusals may make its key before refusing
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.Addr().String()
	stopped := t.TempDir()
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: stopped, Listen: "127.0.0.1:0", Plaintext: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "b.db")
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // words the output must hold
		stderr string
	}{
		{"help", []string{"help"}, 0, "Commands:\n  serve", ""},
		{"--help", []string{"--help"}, 0, "Usage: tallyd [serve] [flags]", ""},
		{"serve --help", []string{"serve", "-h"}, 0, "-listen host:port", ""},
		{"backup --help", []string{"backup", "--help"}, 0, "Usage: tallyd backup --out FILE", ""},
		{"check --help", []string{"check", "--help"}, 0, "Usage: tallyd check", ""},
		{"unknown command", []string{"bakcup", "--out", out}, 2, "", `tallyd: unknown command "bakcup"`},
		{"unknown command lists the commands", []string{"status"}, 2, "", "Commands:\n  serve"},
		{"stray argument after serve's flags", []string{"--data", empty, "backup"}, 2, "", `unexpected argument "backup"`},
		{"stray argument to serve", []string{"serve", "now"}, 2, "", `tallyd serve: unexpected argument "now"`},
		{"stray argument to backup", []string{"backup", "--data", stopped, "--out", out, "extra"}, 2, "", `tallyd backup: unexpected argument "extra"`},
		{"stray argument to check", []string{"check", "--data", stopped, "extra"}, 2, "", `tallyd check: unexpected argument "extra"`},
		{"unknown flag", []string{"--port", "7070"}, 2, "", "flag provided but not defined: -port"},
		{"unknown backup flag", []string{"backup", "--to", out}, 2, "", "flag provided but not defined: -to"},
		{"--max-conns below its range", []string{"serve", "--data", scratch, "--max-conns", "0"}, 2, "", "--max-conns 0 is out of range: give 1 to 1000000"},
		{"--max-streams above its range", []string{"serve", "--data", scratch, "--max-streams", "20000"}, 2, "", "--max-streams 20000 is out of range: give 1 to 10000"},
		{"--max-conns not a number", []string{"serve", "--data", scratch, "--max-conns", "many"}, 2, "", "invalid value \"many\" for flag -max-conns"},
		{"metrics on a public address", []string{"serve", "--data", scratch, "--listen", "127.0.0.1:0", "--metrics", "0.0.0.0:0"}, 1, "", "only on a loopback address"},
		{"metrics on a port in use", []string{"serve", "--data", scratch, "--listen", "127.0.0.1:0", "--metrics", busy}, 1, "", "listen for metrics on " + busy},
		{"backup without --out", []string{"backup", "--data", stopped}, 2, "", "--out is required"},
		{"backup of a folder with no data", []string{"backup", "--data", empty, "--out", out}, 1, "", "there is no data file"},
		{"backup onto the data file", []string{"backup", "--data", stopped, "--out", filepath.Join(stopped, tallyd.DBFile)}, 1, "", "is the data file itself"},
		{"backup into a folder", []string{"backup", "--data", stopped, "--out", empty}, 1, "", "is a folder"},
		{"check of a folder with no data", []string{"check", "--data", empty}, 1, "", "there is no data file"},
		{"backup of a stopped server", []string{"backup", "--data", stopped, "--out", out}, 0, "copied directly (no tallyd was running)", ""},
		{"check of a stopped server", []string{"check", "--data", stopped}, 0, "all 2 checks passed", ""},
		{"check of a backup", []string{"check", "--file", out}, 0, "all 2 checks passed", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := tallyd.Main(context.Background(), c.args, &stdout, &stderr)
			if code != c.code {
				t.Errorf("exit %d; want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), c.stdout) {
				t.Errorf("stdout %q; want it to hold %q", stdout.String(), c.stdout)
			}
			if !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr %q; want it to hold %q", stderr.String(), c.stderr)
			}
			if c.code == 2 && !strings.Contains(stderr.String(), "Usage: tallyd") {
				t.Errorf("a command line tallyd refuses prints no usage: %q", stderr.String())
			}
			if strings.Contains(stderr.String(), "serving on") {
				t.Errorf("tallyd %q served", c.args)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(empty, tallyd.DBFile)); err == nil {
		t.Errorf("a refused command line made a data file in %s", empty)
	}
}

// TestMainServes: with no command, or with serve, tallyd serves its flags'
// folder until the context ends.
func TestMainServes(t *testing.T) {
	for _, args := range [][]string{{}, {"serve"}} {
		t.Run(strings.Join(append([]string{"tallyd"}, args...), " "), func(t *testing.T) {
			dir := t.TempDir()
			c, cancel := context.WithCancel(context.Background())
			cancel() // serve starts, then stops at once
			var stdout, stderr bytes.Buffer
			code := tallyd.Main(c, append(args, "--data", dir, "--listen", "127.0.0.1:0", "--plaintext"), &stdout, &stderr)
			if code != 0 {
				t.Errorf("exit %d\n%s", code, stderr.String())
			}
			if !strings.Contains(stderr.String(), "tallyd: serving on 127.0.0.1:") {
				t.Errorf("no serving line:\n%s", stderr.String())
			}
			if _, err := os.Stat(filepath.Join(dir, tallyd.DBFile)); err != nil {
				t.Errorf("no data file: %v", err)
			}
		})
	}
}

// TestStartFailsCleanly: when a second port cannot be had, Start fails and
// leaves nothing behind: the data folder opens again at once (the store
// and admin socket are closed) and the GC setting is as it was.
func TestStartFailsCleanly(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	for _, tc := range []struct {
		name string
		cfg  func(*tallyd.Config)
	}{
		{"web port in use", func(c *tallyd.Config) { c.WebListen = busy.Addr().String() }},
		{"metrics port in use", func(c *tallyd.Config) { c.MetricsListen = busy.Addr().String() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			gc := debug.SetGCPercent(100)
			defer debug.SetGCPercent(gc)
			cfg := tallyd.Config{DataDir: dir, Listen: "127.0.0.1:0", Plaintext: true, GCPercent: 900}
			tc.cfg(&cfg)
			if srv, err := tallyd.Start(context.Background(), cfg); err == nil {
				srv.Close()
				t.Fatal("Start succeeded on a port in use")
			}
			if got := debug.SetGCPercent(100); got != 100 {
				t.Errorf("GC percent after the failed start is %d; want 100 as before", got)
			}
			srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: dir, Listen: "127.0.0.1:0", Plaintext: true})
			if err != nil {
				t.Fatalf("the folder does not open again after the failed start: %v", err)
			}
			srv.Close()
		})
	}
}
