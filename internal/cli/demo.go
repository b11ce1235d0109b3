package cli

import (
	"context"
	"fmt"

	"github.com/doorstep-vote/doorstep/internal/demo"
	"github.com/doorstep-vote/doorstep/internal/i18n"
)

// defaultDemoSeed draws the demo's ballots unless --seed says otherwise
// (after PRC Civil Code art. 278, which the assembly's rules come from).
const defaultDemoSeed = 278

func demoCommand() *Command {
	return &Command{Name: "demo", Summary: "play a rainy canvassing day end to end", Usage: "[--seed N] [--fast] [--keep DIR] [--record DIR] [--metrics ADDR]", Run: runDemo}
}

func runDemo(ctx context.Context, env *Env, args []string) error {
	fs := NewFlags(env, "demo", "[--seed N] [--fast] [--keep DIR] [--record DIR] [--metrics ADDR]",
		"Play a rainy canvassing day end to end, with no set-up: a tally server on loopback, the\n"+
			"committee creating the example election and enrolling four canvassers, who walk their\n"+
			"buildings at once through links that drop and return, syncing whenever they can; then the\n"+
			"committee settles the contested unit, closes the election and reads the tally. The same\n"+
			"--seed always gives the same tally, whatever the network does.")
	seed := fs.Uint64("seed", defaultDemoSeed, "draws the ballots and the day's events; the same seed gives the same tally")
	netSeed := fs.Uint64("net-seed", 0, "draws the link drops and chaos (default: from the clock, so each run's network differs)")
	fast := fs.Bool("fast", false, "no pauses at the doors: the day in a few seconds")
	keep := fs.String("keep", "", "keep all data (tallyd's, the committee's, the devices') in this new folder")
	recordDir := fs.String("record", "", "export the election record into this new folder ('doorstep audit verify' checks it)")
	metrics := fs.String("metrics", "", "serve tallyd's Prometheus metrics on this loopback `host:port` during the day, e.g. 127.0.0.1:9464")
	if err := ParseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(env.Stderr, "doorstep demo: unexpected argument %q\n", fs.Arg(0))
		return ErrUsage
	}
	ns := *netSeed
	if ns == 0 {
		ns = uint64(env.Now().UnixNano())
	}
	res, err := demo.Run(ctx, demo.Config{
		Out:       env.Stdout,
		Logger:    env.Logger,
		Now:       env.Now,
		Seed:      *seed,
		NetSeed:   ns,
		Fast:      *fast,
		KeepDir:   *keep,
		RecordDir: *recordDir,

		MetricsListen: *metrics,
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "\nThe result, as 'doorstep tally show' prints it:\n\n")
	return writeTally(env.Stdout, i18n.FromEnv(env.Getenv, i18n.EN), res.Tally, nil, res.Definition, env.Now())
}
