package cli_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/cli"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd/tallydtest"
)

// auditRun runs doorstep with the vector election's clock, so call
// signatures fall in the server's window.
func auditRun(t *testing.T, clk *tallydtest.Clock, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	env := &cli.Env{
		Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Now: clk.Now,
		Getenv: func(string) string { return "" }, ConfigDir: t.TempDir(),
	}
	code = cli.Main(context.Background(), env, args)
	return code, out.String(), errb.String()
}

// committeeKeyFile writes the vector committee key as a committee folder
// holds it and returns the folder and the file.
func committeeKeyFile(t *testing.T) (dir, file string) {
	t.Helper()
	dir = t.TempDir()
	file = filepath.Join(dir, committee.KeyFile)
	if err := os.WriteFile(file, tallydtest.CommitteeKey(), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, file
}

func TestAuditExportVerifyReceipt(t *testing.T) {
	run := tallydtest.Start(t, filepath.Join(t.TempDir(), "data"))
	addr := run.Server.Addr()
	cdir, keyFile := committeeKeyFile(t)
	out := filepath.Join(t.TempDir(), "record")

	code, stdout, stderr := auditRun(t, run.Clock, "audit", "export", "--server", addr, "--election", tallydtest.ElectionID, "--out", out, "--key", keyFile)
	if code != 0 {
		t.Fatalf("audit export: exit %d\n%s\n%s", code, stdout, stderr)
	}
	wantContains(t, stdout, "Exported the election record of estate-2026", "recomputed; tally.json matches it byte for byte", run.Server.Fingerprint())

	code, stdout, stderr = auditRun(t, run.Clock, "audit", "verify", out)
	if code != 0 {
		t.Fatalf("audit verify: exit %d\n%s\n%s", code, stdout, stderr)
	}
	wantContains(t, stdout, "The election record verifies", "Rejected:    1 by the server (1 unknown_unit)", "2 enrolled; roster of 8 units")

	t.Run("export with the committee folder", func(t *testing.T) {
		again := filepath.Join(t.TempDir(), "record")
		code, stdout, stderr := auditRun(t, run.Clock, "audit", "export", "--server", addr, "--election", tallydtest.ElectionID, "--out", again, "--committee-dir", cdir)
		if code != 0 {
			t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
		}
		for _, name := range []string{audit.LogFile, audit.TallyFile, audit.ManifestFile, audit.CheckpointFile} {
			a, _ := os.ReadFile(filepath.Join(out, name))
			b, _ := os.ReadFile(filepath.Join(again, name))
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs between two exports of a closed election", name)
			}
		}
	})
	t.Run("export refuses a device key", func(t *testing.T) {
		dev := filepath.Join(t.TempDir(), "device.key")
		os.WriteFile(dev, run.Devices[0].Key, 0o600)
		code, _, stderr := auditRun(t, run.Clock, "audit", "export", "--server", addr, "--election", tallydtest.ElectionID, "--out", filepath.Join(t.TempDir(), "r"), "--key", dev)
		if code != 1 {
			t.Fatalf("exit %d; want 1", code)
		}
		wantContains(t, stderr, "does not accept this committee key")
	})
	t.Run("verify lists discrepancies", func(t *testing.T) {
		bad := filepath.Join(t.TempDir(), "record")
		copyDir(t, out, bad)
		p := filepath.Join(bad, audit.TallyFile)
		b, _ := os.ReadFile(p)
		os.WriteFile(p, bytes.Replace(b, []byte(`"units_counted":7`), []byte(`"units_counted":9`), 1), 0o644)
		code, stdout, stderr := auditRun(t, run.Clock, "audit", "verify", bad)
		if code != 1 {
			t.Fatalf("exit %d; want 1", code)
		}
		wantContains(t, stdout, "tally.json DIFFERS", "tally units_counted: published 9, recomputed 7")
		wantContains(t, stderr, "does not verify: 1 discrepancies")
	})

	sr := run.Records["counted"]
	receipt := ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature())
	tests := []struct {
		name string
		args []string
		code int
		want []string
	}{
		{"server", []string{"--server", addr, "--election", tallydtest.ElectionID, receipt}, 0,
			[]string{"COUNTED", "unit 1-1-101", "Signed checkpoint: 23 entries", "Inclusion proof checked: entry"}},
		{"server and record", []string{"--server", addr, "--election", tallydtest.ElectionID, "--record", out, "--fingerprint", run.Server.Fingerprint(), receipt}, 0,
			[]string{"In the election record", "COUNTED", "The record verifies", "Inclusion proof checked: entry"}},
		{"record only", []string{"--record", out, "--unit", "1-1-101", strings.ToLower(receipt)}, 0,
			[]string{"unit 1-1-101", "COUNTED"}},
		{"rejected ballot", []string{"--record", out, receiptOf(run.Records["unknown-unit"])}, 0, []string{"REJECTED"}},
		{"not found", []string{"--server", addr, "--election", tallydtest.ElectionID, "00000-00000"}, 0, []string{"NOT FOUND"}},
	}
	for _, tt := range tests {
		t.Run("receipt "+tt.name, func(t *testing.T) {
			c, stdout, stderr := auditRun(t, run.Clock, append([]string{"audit", "receipt"}, tt.args...)...)
			if c != tt.code {
				t.Fatalf("exit %d; want %d\n%s\n%s", c, tt.code, stdout, stderr)
			}
			wantContains(t, stdout, tt.want...)
		})
	}
	t.Run("receipt with the wrong fingerprint", func(t *testing.T) {
		c, _, stderr := auditRun(t, run.Clock, "audit", "receipt", "--server", addr, "--election", tallydtest.ElectionID, "--fingerprint", "SHA256:wrong", receipt)
		if c != 1 {
			t.Fatalf("exit %d; want 1", c)
		}
		wantContains(t, stderr, "not SHA256:wrong", "do not trust its answer")
	})
}

func receiptOf(sr *doorstepv1.SignedRecord) string {
	return ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature())
}

func TestAuditExportLive(t *testing.T) {
	srv, clk := tallydtest.StartServer(t, filepath.Join(t.TempDir(), "data"))
	com := signedtest.NewAuthor(tallydtest.ElectionID, election.CommitteeAuthor, "record-v1 committee", tallydtest.Begin)
	ctx := context.Background()
	if _, _, err := srv.Store().CreateElection(ctx, com.Committee(t, signedtest.Define(tallydtest.Definition(com.Public())))); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Store().SubmitCommittee(ctx, tallydtest.ElectionID, []*doorstepv1.SignedRecord{
		com.Committee(t, signedtest.Roster(tallydtest.Units)), com.Committee(t, signedtest.Open(tallydtest.Units)),
	}); err != nil {
		t.Fatal(err)
	}
	_, keyFile := committeeKeyFile(t)
	args := []string{"audit", "export", "--server", srv.Addr(), "--election", tallydtest.ElectionID, "--key", keyFile, "--out"}
	c, _, stderr := auditRun(t, clk, append(args, filepath.Join(t.TempDir(), "closed-only"))...)
	if c != 1 {
		t.Fatalf("export of an open election: exit %d; want 1", c)
	}
	wantContains(t, stderr, "not closed yet", "add --live")
	out := filepath.Join(t.TempDir(), "live")
	c, stdout, stderr := auditRun(t, clk, append(args, out, "--live")...)
	if c != 0 {
		t.Fatalf("export --live: exit %d\n%s\n%s", c, stdout, stderr)
	}
	m, err := audit.ReadManifest(out)
	if err != nil || m.Closed || m.LogSize != 3 {
		t.Fatalf("live manifest: %+v, %v; want an open election of 3 entries", m, err)
	}
}

func TestAuditUsage(t *testing.T) {
	clk := &tallydtest.Clock{}
	for _, args := range [][]string{
		{"audit", "export", "--election", "e"},
		{"audit", "export", "--out", "x"},
		{"audit", "verify"},
		{"audit", "verify", "a", "b"},
		{"audit", "receipt"},
		{"audit", "receipt", "7K2QM-0XH4D"},
	} {
		if c, _, stderr := auditRun(t, clk, args...); c != 2 || !strings.Contains(stderr, "doorstep audit") {
			t.Errorf("%q: exit %d, %q; want a usage error", args, c, stderr)
		}
	}
	if c, _, stderr := auditRun(t, clk, "audit", "receipt", "--record", t.TempDir(), "UUUUU-UUUUU"); c != 1 || !strings.Contains(stderr, "not a receipt code character") {
		t.Errorf("bad code: exit %d, %q", c, stderr)
	}
	if c, _, stderr := auditRun(t, clk, "audit", "verify", t.TempDir()); c != 1 || !strings.Contains(stderr, "manifest.json") {
		t.Errorf("verify of an empty folder: exit %d, %q", c, stderr)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}
