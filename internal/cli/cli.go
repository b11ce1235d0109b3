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
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/doorstep-vote/doorstep/internal/i18n"
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
		Summary: "help.doorstep.summary",
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
		// A group's list of commands is in the locale's language, or
		// --lang's.
		l := i18n.FromEnv(env.Getenv, i18n.EN)
		if pl, err := i18n.Parse(argValue(nil, rest, "lang")); err == nil {
			l = pl
			rest = withoutFlag(rest, "lang")
		}
		switch {
		case len(rest) == 0 && len(path) == 1:
			// doorstep alone is not a command: a script that left the
			// command out must not pass. (A group alone lists its commands.)
			fmt.Fprintf(env.Stderr, "doorstep: %s\n\n", l.T("help.give_command"))
			printGroup(env.Stderr, l, cmd, path)
			return 2
		case len(rest) == 0 || rest[0] == "-h" || rest[0] == "--help" || rest[0] == "help":
			printGroup(env.Stdout, l, cmd, path)
			return 0
		}
		fmt.Fprintf(env.Stderr, "doorstep: %s\n\n", l.T("help.unknown_command", strings.Join(append(path, rest[0]), " ")))
		printGroup(env.Stderr, l, cmd, path)
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

// withoutFlag is args without flag name and its value (-name V or
// --name=V), for a group's list, where --lang is the only flag.
func withoutFlag(args []string, name string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		k, _, hasVal := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if strings.HasPrefix(args[i], "-") && k == name {
			if !hasVal {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// argValue is the value args give fs's flag name (-name V, --name=V),
// the last if several, or "" if none: what the flag will be once parsed,
// read before parsing so that a mistake earlier in args can be said in it.
func argValue(fs *flag.FlagSet, args []string, name string) string {
	v := ""
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue // a stray argument: parsing stops there, but the mistake is said in --lang all the same
		}
		k, val, hasVal := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		switch {
		case k == name && hasVal:
			v = val
		case k == name && i+1 < len(args):
			v = args[i+1]
			i++
		case !hasVal && !isBoolFlag(fs, k) && (fs != nil && fs.Lookup(k) != nil || i+1 < len(args) && !strings.HasPrefix(args[i+1], "-")):
			i++ // the flag's value (an unknown flag's, if it looks like one)
		}
	}
	return v
}

func isBoolFlag(fs *flag.FlagSet, name string) bool {
	if fs == nil {
		return false
	}
	f := fs.Lookup(name)
	if f == nil {
		return false
	}
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
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

func printGroup(w io.Writer, l i18n.Lang, c *Command, path []string) {
	p := strings.Join(path, " ")
	fmt.Fprintf(w, "%s: %s\n\n%s\n\n%s\n", p, helpText(l, c.Summary), l.T("help.group_usage", p), l.T("help.commands"))
	subs := append([]*Command(nil), c.Sub...)
	sort.SliceStable(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
	for _, s := range subs {
		fmt.Fprintf(w, "  %-12s %s\n", s.Name, helpText(l, s.Summary))
	}
	fmt.Fprintf(w, "\n%s\n", l.T("help.group_more", p))
}

// helpText is s said in l when it is a key of the catalogue ("help.…"),
// as the committee's commands give their help; other commands give theirs
// in English, as it is.
func helpText(l i18n.Lang, s string) string {
	if strings.HasPrefix(s, "help.") && i18n.Has(s) {
		return l.T(s)
	}
	return s
}

// NewFlags returns a FlagSet for a command whose --help prints the
// command's synopsis and flags to env.Stdout.
func NewFlags(env *Env, name, usage, summary string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.Usage = func() { printHelp(env.Stdout, fs, i18n.EN, name, usage, summary) }
	return fs
}

// printHelp prints a command's --help in l: its synopsis, what it does
// and its flags, laid out as flag.PrintDefaults lays them out.
func printHelp(w io.Writer, fs *flag.FlagSet, l i18n.Lang, name, usage, summary string) {
	fmt.Fprintf(w, "%s\n\n%s\n\n%s\n", l.T("help.usage", name, usage), helpText(l, summary), l.T("help.flags"))
	fs.VisitAll(func(fl *flag.Flag) {
		shown := *fl
		shown.Usage = helpText(l, fl.Usage)
		kind, text := flag.UnquoteUsage(&shown)
		line := "  -" + fl.Name
		if kind != "" {
			line += " " + kind
		}
		if len(line) <= 4 {
			line += "\t"
		} else {
			line += "\n    \t"
		}
		line += strings.ReplaceAll(text, "\n", "\n    \t")
		if !isZeroFlag(fl) {
			d := fl.DefValue
			if fmt.Sprintf("%T", fl.Value) == "*flag.stringValue" {
				d = strconv.Quote(d)
			}
			line += l.T("help.default", d)
		}
		fmt.Fprintln(w, line)
	})
}

// isZeroFlag reports whether fl's default is its type's zero value, which
// --help does not show (flag.PrintDefaults' rule).
func isZeroFlag(fl *flag.Flag) (zero bool) {
	defer func() {
		if recover() != nil {
			zero = false // a zero value whose String panics: show the default
		}
	}()
	t := reflect.TypeOf(fl.Value)
	if t.Kind() != reflect.Pointer {
		return fl.DefValue == ""
	}
	z, ok := reflect.New(t.Elem()).Interface().(flag.Value)
	return ok && fl.DefValue == z.String()
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
