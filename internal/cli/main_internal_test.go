package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// TestMainCommandLines: doorstep runs what it knows and refuses, with
// exit 2 and the usage, what it does not.
func TestMainCommandLines(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		code   int
		stdout string // words the output must hold
		stderr string
	}{
		{"no arguments", nil, 2, "", "doorstep: give one of the commands below\n\ndoorstep: door-to-door"},
		{"a group alone lists its commands", []string{"election"}, 0, "Usage: doorstep election COMMAND", ""},
		{"help", []string{"help"}, 0, "Commands:\n  adjudicate", ""},
		{"--help", []string{"--help"}, 0, "Commands:\n  adjudicate", ""},
		{"a group's help", []string{"canvass", "-h"}, 0, "Usage: doorstep canvass COMMAND", ""},
		{"unknown command", []string{"tallly"}, 2, "", `doorstep: unknown command "doorstep tallly"`},
		{"unknown command in a group", []string{"election", "opne"}, 2, "", `doorstep: unknown command "doorstep election opne"`},
		{"a command's help", []string{"canvass", "record", "--help"}, 0, "Usage: doorstep canvass record", ""},
		{"unknown flag", []string{"tally", "show", "--electon", "x"}, 2, "", "flag provided but not defined: -electon\nRun 'doorstep tally show --help' for its flags."},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := runMain(t, c.args...)
			if code != c.code {
				t.Errorf("exit %d; want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, stdout, stderr)
			}
			if !strings.Contains(stdout, c.stdout) {
				t.Errorf("stdout %q; want it to hold %q", stdout, c.stdout)
			}
			if !strings.Contains(stderr, c.stderr) {
				t.Errorf("stderr %q; want it to hold %q", stderr, c.stderr)
			}
			if c.code == 2 && !strings.Contains(stderr, "Commands:") && !strings.Contains(stderr, "--help") {
				t.Errorf("a refused command line shows no usage: %q", stderr)
			}
		})
	}
}

// TestMainRefusesStrayArguments runs every command with more arguments
// than any takes: each refuses with exit 2 before doing anything.
func TestMainRefusesStrayArguments(t *testing.T) {
	var walk func(c *Command, path []string)
	n := 0
	walk = func(c *Command, path []string) {
		if c.Run == nil {
			for _, s := range c.Sub {
				walk(s, append(path[:len(path):len(path)], s.Name))
			}
			return
		}
		n++
		t.Run(strings.Join(path, " "), func(t *testing.T) {
			code, stdout, stderr := runMain(t, append(path, "stray-1", "stray-2", "stray-3")...)
			if code != 2 {
				t.Errorf("exit %d; want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if stderr == "" || stdout != "" {
				t.Errorf("stdout %q, stderr %q; want only stderr, saying what is wrong", stdout, stderr)
			}
		})
	}
	walk(root(), nil)
	if n < 20 {
		t.Errorf("walked %d commands; the tree has more", n)
	}
}

func runMain(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	dir := t.TempDir()
	env := &Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, ConfigDir: dir,
		Getenv: func(string) string { return "" }}
	code := Main(context.Background(), env, args)
	return code, stdout.String(), stderr.String()
}

// TestFindCandidate: record, revise and the walk find a candidate the same
// way: by id first, else by a name only one candidate has.
func TestFindCandidate(t *testing.T) {
	it := &election.Item{ID: "board", Candidates: []election.Candidate{
		{ID: "c1", Name: "张伟"}, {ID: "c2", Name: "Li Na"}, {ID: "c3", Name: "王芳"}, {ID: "c4", Name: "王芳"}, {ID: "张伟", Name: "x"},
	}}
	for _, tc := range []struct {
		in         string
		idx, named int
	}{
		{"c2", 1, 0}, {"li na", 1, 1}, {"张伟", 4, 0}, {"王芳", -1, 2}, {"赵六", -1, 0},
	} {
		if idx, named := cvFindCandidate(it, tc.in); idx != tc.idx || named != tc.named {
			t.Errorf("cvFindCandidate(%q) = %d, %d; want %d, %d", tc.in, idx, named, tc.idx, tc.named)
		}
	}
}
