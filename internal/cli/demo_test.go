package cli_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemoCommand runs 'doorstep demo --fast' in-process: it must play the
// day and end with the tally as 'doorstep tally show' prints it.
func TestDemoCommand(t *testing.T) {
	e := newCmEnv(t)
	keep := filepath.Join(t.TempDir(), "data")
	out := e.mustRun(t, "demo", "--fast", "--net-seed", "7", "--keep", keep)
	cmWant(t, out, "heavy rain", "link down", "committee: unit ", "closed the election",
		"Check: the server's tally equals the count of the ballots", "Everything is kept in "+keep)
	tally := strings.Index(out, "Tally of election cuihu-2026-4th: 翠湖苑")
	if tally < 0 {
		t.Fatalf("no tally in the output:\n%s", out)
	}
	rest := out[tally:]
	cmWant(t, rest, "Computed at ballot log checkpoint", "Contested (held for the committee): 0.", "quorum of 2/3 met",
		"ELECTED", "4. fund", "Outcome: FAILED")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(strings.TrimSpace(last), "Outcome: ") {
		t.Errorf("the output ends with %q, not the tally's last outcome", last)
	}
	for _, sub := range []string{"tallyd", "committee", filepath.Join("devices", "wang-fang")} {
		if _, err := os.Stat(filepath.Join(keep, sub)); err != nil {
			t.Errorf("--keep: %v", err)
		}
	}
}

func TestDemoCommandUsage(t *testing.T) {
	used := t.TempDir()
	if err := os.WriteFile(filepath.Join(used, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"stray argument", []string{"demo", "now"}, 2, "unexpected argument"},
		{"bad seed", []string{"demo", "--seed", "rain"}, 2, "invalid value"},
		{"keep folder in use", []string{"demo", "--keep", used}, 1, "not empty"},
		{"record folder in use", []string{"demo", "--record", used}, 1, "not empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errs := newCmEnv(t).run(t, tc.args...)
			if code != tc.code || !strings.Contains(errs, tc.stderr) {
				t.Errorf("exit %d, stderr %q; want exit %d mentioning %q", code, errs, tc.code, tc.stderr)
			}
		})
	}
}
