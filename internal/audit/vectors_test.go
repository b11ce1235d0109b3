package audit_test

import (
	"bytes"
	"context"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/audit"
	"github.com/doorstep-vote/doorstep/internal/tally"
	"github.com/doorstep-vote/doorstep/internal/tallyd/tallydtest"
)

var update = flag.Bool("update", false, "rewrite api/testdata/record-v1 from a fresh run of the vector election")

// vectorDir is the checked-in election record of the specification.
const vectorDir = "../../api/testdata/record-v1"

var (
	exportOnce sync.Once
	exported   string // folder of the shared fresh export
	exportErr  string
	sharedTmp  string
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if sharedTmp != "" {
		os.RemoveAll(sharedTmp)
	}
	os.Exit(code)
}

// freshExport runs the vector election on a real tallyd once per test
// binary and exports its record; tests copy the folder before changing it.
func freshExport(t *testing.T) string {
	t.Helper()
	exportOnce.Do(func() {
		exportErr = "the vector election failed in an earlier test; see its log"
		var err error
		if sharedTmp, err = os.MkdirTemp("", "doorstep-record-test-"); err != nil {
			exportErr = err.Error()
			return
		}
		tb := &onceTB{TB: t}
		defer tb.cleanup()
		run := tallydtest.Start(tb, filepath.Join(sharedTmp, "data"))
		dir := filepath.Join(sharedTmp, "record")
		rep, err := audit.Export(context.Background(), run.Store().RecordSource(tallydtest.ElectionID), dir)
		switch {
		case err != nil:
			exportErr = "export: " + err.Error()
		case !rep.OK():
			exportErr = "export of the vector election does not verify:\n" + findings(rep)
		default:
			exported, exportErr = dir, ""
		}
	})
	if exportErr != "" {
		t.Fatal(exportErr)
	}
	return exported
}

// onceTB runs its cleanups when cleanup is called rather than at the end
// of the test: the shared server stops as soon as its record is exported.
type onceTB struct {
	testing.TB
	cleanups []func()
}

func (o *onceTB) Cleanup(f func()) { o.cleanups = append(o.cleanups, f) }

func (o *onceTB) cleanup() {
	for i := len(o.cleanups) - 1; i >= 0; i-- {
		o.cleanups[i]()
	}
}

func TestVectors(t *testing.T) {
	run := tallydtest.Start(t, filepath.Join(t.TempDir(), "data"))
	dir := filepath.Join(t.TempDir(), "record")
	rep, err := audit.Export(context.Background(), run.Store().RecordSource(tallydtest.ElectionID), dir)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("the vector election does not verify:\n%s", findings(rep))
	}
	if *update {
		if err := os.RemoveAll(vectorDir); err != nil {
			t.Fatal(err)
		}
		copyTree(t, dir, vectorDir)
	}
	t.Run("checked-in copy is current", func(t *testing.T) {
		got, want := treeFiles(t, vectorDir), treeFiles(t, dir)
		if !slices.Equal(got, want) {
			t.Fatalf("api/testdata/record-v1 holds %q; a fresh export holds %q (go test ./internal/audit -run TestVectors -args -update rewrites it)", got, want)
		}
		for _, name := range want {
			a := readFile(t, filepath.Join(vectorDir, name))
			b := readFile(t, filepath.Join(dir, name))
			if !bytes.Equal(a, b) {
				t.Errorf("%s differs from a fresh export at line %d (go test ./internal/audit -run TestVectors -args -update rewrites it)", name, bytes.Count(a[:commonPrefix(a, b)], []byte{'\n'})+1)
			}
		}
	})
	t.Run("checked-in copy verifies", func(t *testing.T) {
		rep, err := audit.Verify(context.Background(), vectorDir)
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || !rep.TallyMatches {
			t.Fatalf("api/testdata/record-v1 does not verify:\n%s", findings(rep))
		}
		checkVectorTally(t, rep.Tally)
	})
}

// checkVectorTally pins what the vector election must decide, so the
// vectors cannot drift into showing something else.
func checkVectorTally(t *testing.T, r *tally.Result) {
	t.Helper()
	if r.RosterUnits != 8 || r.RosterHeadcount != 6 || r.RosterArea != 75225 {
		t.Errorf("roster = %d units, %d owners, %d area; want 8, 6, 75225", r.RosterUnits, r.RosterHeadcount, r.RosterArea)
	}
	// Counted: 1-1-101, 1-1-102 (replacement), 1-2-201, 2-1-901,
	// 2-1-1001, 10-1-101 (double visit), 10-1-102 (settled).
	if r.UnitsCounted != 7 || r.UnitsDouble != 1 || r.UnitsContested != 0 {
		t.Errorf("units counted %d, double %d, contested %d; want 7, 1, 0", r.UnitsCounted, r.UnitsDouble, r.UnitsContested)
	}
	want := map[string]string{"rules": tally.OutcomePassed, "fund": tally.OutcomeFailed, "board": tally.OutcomeElected}
	for _, it := range r.Items {
		if it.Outcome != want[it.ItemID] {
			t.Errorf("item %s: outcome %s, want %s", it.ItemID, it.Outcome, want[it.ItemID])
		}
		if it.HeldHeadcount != 0 {
			t.Errorf("item %s: %d held owners; the committee settled owner-wang", it.ItemID, it.HeldHeadcount)
		}
		for _, c := range it.Candidates {
			if c.Elected != (c.CandidateID == "c1" || c.CandidateID == "c2") {
				t.Errorf("candidate %s: elected %v; want c1 and c2 elected", c.CandidateID, c.Elected)
			}
		}
	}
}

func treeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	for _, name := range treeFiles(t, from) {
		dst := filepath.Join(to, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, readFile(t, filepath.Join(from, filepath.FromSlash(name))), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// copyRecord copies the shared fresh export into a new folder.
func copyRecord(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "record")
	copyTree(t, freshExport(t), dir)
	return dir
}
