// Package cli is the doorstep command: one tool for canvassers, the
// election committee and auditors. cmd/doorstep only wires it to the
// process; everything here takes its inputs and outputs from Env, so tests
// run commands in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"time"
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Logger *slog.Logger
	Now    func() time.Time
	// Getenv reads the environment (DOORSTEP_* defaults).
	Getenv func(string) string
	// ConfigDir is the user's configuration directory, where the committee
	// key and device folders live unless flags say otherwise.
	ConfigDir string
}

// Command is one verb, or a group of verbs.
type Command struct {
	Name    string
	Summary string
	// Usage is the argument synopsis shown by --help, e.g. "[flags] FILE".
	Usage string
	// Run executes the command; nil for a group.
	Run func(ctx context.Context, env *Env, args []string) error
	Sub []*Command
}

// ErrUsage means the arguments were wrong; the message has been printed.
var ErrUsage = errors.New("usage")

// root lists every command group. Each group's commands live in the file
// named for it.
func root() *Command {
	return &Command{
		Name:    "doorstep",
		Summary: "door-to-door ballot collection, tally and audit",
		Sub:     groups(),
	}
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, env *Env, args []string) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Getenv == nil {
		env.Getenv = func(string) string { return "" }
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	cmd, rest, path := find(root(), args)
	if cmd.Run == nil {
		switch {
		case len(rest) == 0 && len(path) == 1:
			// doorstep alone is not a command: a script that left the
			// command out must not pass. (A group alone lists its commands.)
			fmt.Fprintf(env.Stderr, "doorstep: give one of the commands below\n\n")
			printGroup(env.Stderr, cmd, path)
			return 2
		case len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help":
			printGroup(env.Stdout, cmd, path)
			return 0
		}
		fmt.Fprintf(env.Stderr, "doorstep: unknown command %q\n\n", strings.Join(append(path, rest[0]), " "))
		printGroup(env.Stderr, cmd, path)
		return 2
	}
	err := cmd.Run(ctx, env, rest)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, ErrUsage):
		return 2
	default:
		fmt.Fprintf(env.Stderr, "doorstep %s: %v\n", strings.Join(path[1:], " "), err)
		return 1
	}
}

func find(c *Command, args []string) (*Command, []string, []string) {
	path := []string{c.Name}
	for len(args) > 0 && c.Run == nil {
		var next *Command
		for _, s := range c.Sub {
			if s.Name == args[0] {
				next = s
				break
			}
		}
		if next == nil {
			break
		}
		c, args = next, args[1:]
		path = append(path, c.Name)
	}
	return c, args, path
}

func printGroup(w io.Writer, c *Command, path []string) {
	fmt.Fprintf(w, "%s: %s\n\nUsage: %s COMMAND [flags]\n\nCommands:\n", strings.Join(path, " "), c.Summary, strings.Join(path, " "))
	subs := append([]*Command(nil), c.Sub...)
	sort.SliceStable(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
	for _, s := range subs {
		fmt.Fprintf(w, "  %-12s %s\n", s.Name, s.Summary)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's flags.\n", strings.Join(path, " "))
}

// NewFlags returns a FlagSet for a command whose --help prints the
// command's synopsis and flags to env.Stdout.
func NewFlags(env *Env, name, usage, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(env.Stdout, "Usage: doorstep %s %s\n\n%s\n\nFlags:\n", name, usage, summary)
		fs.SetOutput(env.Stdout)
		fs.PrintDefaults()
		fs.SetOutput(env.Stderr)
	}
	return fs
}

// ParseFlags parses args, mapping a parse error to ErrUsage. --help
// prints the command's usage to stdout; a mistake is said on stderr with
// where to find the usage, and nothing goes to stdout.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	err := parseQuiet(fs, args)
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(fs.Output(), "%v\nRun 'doorstep %s --help' for its flags.\n", err, fs.Name())
		return ErrUsage
	}
	return err
}

// parseQuiet parses args and prints only --help's usage: a mistake is
// returned, for the caller to say in its own words.
func parseQuiet(fs *flag.FlagSet, args []string) error {
	usage, out := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	if errors.Is(err, flag.ErrHelp) {
		usage()
	}
	return err
}

// DefaultConfigDir is the user's config directory for Doorstep.
func DefaultConfigDir() string {
	d, err := os.UserConfigDir()
	if err != nil {
		return ".doorstep"
	}
	return d + string(os.PathSeparator) + "doorstep"
}
