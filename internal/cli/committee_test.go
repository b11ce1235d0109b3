package cli_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/cli"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/examples"
)

// cmEnv is the committee's machine: a config folder and environment.
type cmEnv struct {
	config string
	vars   map[string]string
	// now is the machine's clock (time.Now when nil); stdin what the
	// person types (nothing when empty).
	now   func() time.Time
	stdin string
}

func newCmEnv(t *testing.T) *cmEnv {
	t.Helper()
	return &cmEnv{config: t.TempDir(), vars: map[string]string{}}
}

func (e *cmEnv) run(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	now := e.now
	if now == nil {
		now = time.Now
	}
	env := &cli.Env{
		Stdin:     strings.NewReader(e.stdin),
		Stdout:    &out,
		Stderr:    &errb,
		Now:       now,
		Getenv:    func(k string) string { return e.vars[k] },
		ConfigDir: e.config,
	}
	code = cli.Main(context.Background(), env, args)
	return code, out.String(), errb.String()
}

func (e *cmEnv) mustRun(t *testing.T, args ...string) string {
	t.Helper()
	code, out, errs := e.run(t, args...)
	if code != 0 {
		t.Fatalf("doorstep %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// writeExamples writes the shipped example files to a folder.
func writeExamples(t *testing.T) (electionFile, rosterFile string) {
	t.Helper()
	dir := t.TempDir()
	electionFile, rosterFile = filepath.Join(dir, "election.json"), filepath.Join(dir, "roster.csv")
	if err := os.WriteFile(electionFile, examples.ElectionJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(rosterFile, examples.RosterCSV, 0o600); err != nil {
		t.Fatal(err)
	}
	return electionFile, rosterFile
}

func cmWant(t *testing.T, out string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(out, s) {
			t.Errorf("output does not say %q:\n%s", s, out)
		}
	}
}

func TestCommitteeInitAndShow(t *testing.T) {
	e := newCmEnv(t)
	out := e.mustRun(t, "committee", "init")
	dir := filepath.Join(e.config, "committee")
	key, err := committee.LoadKey(dir)
	if err != nil {
		t.Fatalf("init made no usable key: %v", err)
	}
	pub := base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	cmWant(t, out, "Committee public key: "+pub, filepath.Join(dir, committee.KeyFile))

	code, _, errs := e.run(t, "committee", "init")
	if code != 1 || !strings.Contains(errs, "already exists") {
		t.Errorf("second init: exit %d, stderr %q; want 1 and 'already exists'", code, errs)
	}
	if again, _ := committee.LoadKey(dir); !bytes.Equal(again, key) {
		t.Error("second init changed the key")
	}
	out = e.mustRun(t, "committee", "show")
	cmWant(t, out, "Public key:       "+pub, "No elections yet")
}

func TestCommitteeDirFromEnvAndFlag(t *testing.T) {
	e := newCmEnv(t)
	envDir := filepath.Join(t.TempDir(), "from-env")
	e.vars["DOORSTEP_COMMITTEE_DIR"] = envDir
	e.mustRun(t, "committee", "init")
	if _, err := committee.LoadKey(envDir); err != nil {
		t.Errorf("DOORSTEP_COMMITTEE_DIR not used: %v", err)
	}
	flagDir := filepath.Join(t.TempDir(), "from-flag")
	e.mustRun(t, "committee", "init", "--committee-dir", flagDir)
	if _, err := committee.LoadKey(flagDir); err != nil {
		t.Errorf("--committee-dir not used: %v", err)
	}
}

func TestCommitteeHelp(t *testing.T) {
	cmds := [][]string{
		{"committee", "init"}, {"committee", "show"},
		{"election", "create"}, {"election", "open"}, {"election", "close"},
		{"roster", "import"},
		{"device", "enroll"}, {"device", "revoke"},
		{"tally", "show"}, {"tally", "notice"}, {"election", "certify"},
		{"device", "list"}, {"comments", "list"},
		{"adjudicate", "list"}, {"adjudicate", "unit"}, {"adjudicate", "owner"},
	}
	for _, c := range cmds {
		t.Run(strings.Join(c, " "), func(t *testing.T) {
			code, out, _ := newCmEnv(t).run(t, append(c, "--help")...)
			if code != 0 {
				t.Fatalf("--help exit %d", code)
			}
			cmWant(t, out, "Usage: doorstep "+strings.Join(c, " "), "-committee-dir", "the committee's folder")
			if strings.Contains(out, "help.") {
				t.Errorf("a help text is missing from the catalogue:\n%s", out)
			}
			// In Chinese by --lang or the locale.
			e := newCmEnv(t)
			code, zh, _ := e.run(t, append(c, "--help", "--lang", "zh")...)
			if code != 0 {
				t.Fatalf("--help --lang zh exit %d", code)
			}
			cmSaysChinese(t, "--help --lang zh", zh, "用法：doorstep "+strings.Join(c, " "), "选项：", "委员会文件夹")
			e.vars["LANG"] = "zh_CN.UTF-8"
			if _, out, _ := e.run(t, append(c, "--help")...); out != zh {
				t.Errorf("--help under LANG=zh_CN.UTF-8 differs from --help --lang zh:\n%s", out)
			}
		})
	}
	for _, group := range []string{"committee", "election", "roster", "device", "tally", "adjudicate", "comments"} {
		code, out, _ := newCmEnv(t).run(t, group)
		if code != 0 || !strings.Contains(out, "Commands:") || strings.Contains(out, "help.") {
			t.Errorf("doorstep %s: exit %d, output %q; want the group's commands", group, code, out)
		}
		code, out, _ = newCmEnv(t).run(t, group, "--lang", "zh")
		if code != 0 || !strings.Contains(out, "命令：") {
			t.Errorf("doorstep %s --lang zh: exit %d, output %q; want the group's commands in Chinese", group, code, out)
		}
		cmSaysChinese(t, "doorstep "+group+" --lang zh", out)
	}
}

func TestCommitteeUsageErrors(t *testing.T) {
	tests := []struct {
		args     []string
		want, zh string // what it says in English, and in Chinese
	}{
		{[]string{"election", "create"}, "--file is required", "需要 --file"},
		{[]string{"election", "open"}, "--election is required", "需要 --election"},
		{[]string{"election", "close", "--election", "e", "extra"}, `unexpected argument "extra"`, `多余的参数 "extra"`},
		{[]string{"roster", "import", "--election", "e"}, "--file is required", "需要 --file"},
		{[]string{"device", "enroll", "--election", "e", "--qr", "sideways"}, "--qr must be", "--qr 只能是"},
		{[]string{"device", "enroll", "--election", "e", "--server-public", "no-port"}, "not HOST:PORT", "not HOST:PORT"},
		{[]string{"device", "revoke", "--election", "e", "--device", "d"}, "--reason is required", "需要 --reason"},
		{[]string{"device", "revoke", "--election", "e", "--reason", "lost"}, "--device: is required", "--device: is required"},
		{[]string{"adjudicate", "unit", "--election", "e", "--unit", "1-1-101", "--reason", "r"}, "exactly one of --count", "必须给一个，且只能给一个"},
		{[]string{"adjudicate", "unit", "--election", "e", "--unit", "1-1-101", "--count-none", "--count", "x", "--reason", "r"}, "exactly one of --count", "必须给一个，且只能给一个"},
		{[]string{"adjudicate", "unit", "--election", "e", "--unit", "1-1-101", "--count", "not-a-uuid", "--reason", "r"}, "UUID", "请从 'doorstep adjudicate list' 复制"},
		{[]string{"adjudicate", "owner", "--election", "e", "--owner", "o", "--item", "i", "--reason", "r"}, "exactly one of --choice", "--choice（议案）和 --candidates"},
		{[]string{"adjudicate", "owner", "--election", "e", "--owner", "o", "--item", "i", "--choice", "maybe", "--reason", "r"}, "yes, no or abstain", "--choice 只能是"},
		{[]string{"tally", "show", "--election", "e", "--timeout", "0s"}, "--timeout must be positive", "--timeout 必须大于零"},
		{[]string{"tally", "show", "--election", "e", "--timeout", "soon"}, `invalid value "soon" for flag -timeout`, `"soon" 不是 -timeout 能接受的值`},
		{[]string{"tally", "show", "--election", "e", "--bogus"}, "flag provided but not defined: -bogus", "没有 -bogus 这个选项"},
		{[]string{"comments", "list", "--election", "e", "--json", "--csv", "c.csv"}, "give --json or --csv, not both", "--json 和 --csv 只能选一个"},
		{[]string{"tally", "notice", "--election", "e"}, "--out is required", "需要 --out"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			// In English by default; in Chinese by --lang (even after the
			// mistake) or by the locale.
			for _, c := range []struct {
				how, want, help string
				lang            []string
				vars            map[string]string
			}{
				{"default", tt.want, "for its flags", nil, nil},
				{"--lang zh", tt.zh, "查看它的选项", []string{"--lang", "zh"}, nil},
				{"LANG", tt.zh, "查看它的选项", nil, map[string]string{"LANG": "zh_CN.UTF-8"}},
			} {
				e := newCmEnv(t)
				for k, v := range c.vars {
					e.vars[k] = v
				}
				code, _, errs := e.run(t, append(slices.Clone(tt.args), c.lang...)...)
				if code != 2 {
					t.Errorf("%s: exit %d; want 2 (usage)", c.how, code)
				}
				if !strings.Contains(errs, c.want) || !strings.Contains(errs, c.help) {
					t.Errorf("%s: stderr %q; want it to say %q and %q", c.how, errs, c.want, c.help)
				}
			}
		})
	}
}

func TestElectionCreateBadInputs(t *testing.T) {
	e := newCmEnv(t)
	electionFile, _ := writeExamples(t)
	code, _, errs := e.run(t, "election", "create", "--file", electionFile)
	if code != 1 || !strings.Contains(errs, "committee init") {
		t.Errorf("create without a key: exit %d, stderr %q; want 1 and a hint to run committee init", code, errs)
	}
	e.mustRun(t, "committee", "init")
	bad := filepath.Join(t.TempDir(), "bad.json")
	if err := os.WriteFile(bad, []byte("{\n  \"election_id\": \"x\",\n  \"items\": [\n    {\"item_id\": 3}\n  ]\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs = e.run(t, "election", "create", "--file", bad)
	if code != 1 || !strings.Contains(errs, "bad.json: line 4: items.item_id") {
		t.Errorf("bad file: exit %d, stderr %q; want the file, line and field", code, errs)
	}
	code, _, errs = e.run(t, "election", "create", "--file", filepath.Join(t.TempDir(), "missing.json"))
	if code != 1 || !strings.Contains(errs, "no such file") {
		t.Errorf("missing file: exit %d, stderr %q", code, errs)
	}
}

func TestRosterImportBadFile(t *testing.T) {
	e := newCmEnv(t)
	e.mustRun(t, "committee", "init")
	bad := filepath.Join(t.TempDir(), "roster.csv")
	if err := os.WriteFile(bad, []byte("unit_id,building,area_m2,owner_key,developer_held\n1-1-101,1,89.505,o1,false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errs := e.run(t, "roster", "import", "--election", "e1", "--file", bad)
	if code != 1 || !strings.Contains(errs, "roster.csv: line 2: area_m2") {
		t.Errorf("exit %d, stderr %q; want the file, line and column", code, errs)
	}
}

func TestServerUnreachable(t *testing.T) {
	e := newCmEnv(t)
	e.mustRun(t, "committee", "init")
	electionFile, _ := writeExamples(t)
	// Port 1 on loopback: nothing listens there.
	code, _, errs := e.run(t, "election", "create", "--file", electionFile, "--server", "127.0.0.1:1", "--timeout", "15s")
	if code != 1 || !strings.Contains(errs, "cannot reach the tally server at 127.0.0.1:1") {
		t.Errorf("exit %d, stderr %q; want 1 and 'cannot reach'", code, errs)
	}
	code, _, errs = e.run(t, "tally", "show", "--election", "cuihu-2026-4th", "--server", "127.0.0.1:1", "--timeout", "15s")
	if code != 1 || !strings.Contains(errs, "cannot reach the tally server") {
		t.Errorf("tally show: exit %d, stderr %q; want 1 and 'cannot reach'", code, errs)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
