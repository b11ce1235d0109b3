package audit

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const vectorDir = "../../api/testdata/record-v1"

// FuzzDiffTally: any published bytes are either the recomputed tally's
// exact bytes (no discrepancy) or give at least one, never a panic.
func FuzzDiffTally(f *testing.F) {
	orig, err := os.ReadFile(filepath.Join(vectorDir, TallyFile))
	if err != nil {
		f.Fatal(err)
	}
	want, err := decodeTally(orig)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(orig)
	f.Add(bytes.Replace(orig, []byte(`"units_counted":7`), []byte(`"units_counted":8`), 1))
	f.Add(bytes.Replace(orig, []byte(`"item_id":"rules"`), []byte(`"item_id":"other"`), 1))
	f.Add(bytes.TrimSuffix(orig, []byte("\n")))
	f.Add([]byte(`{"format":"doorstep-tally-v1","items":[{"item_id":"rules"},{"item_id":"rules"}]}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, published []byte) {
		ds := diffTally(published, want)
		if (len(ds) == 0) != bytes.Equal(published, orig) {
			t.Fatalf("%d discrepancies for published bytes that are %v the recomputed ones", len(ds), bytes.Equal(published, orig))
		}
	})
}

// FuzzDecodeManifest: a manifest that decodes has this format and encodes
// to JSON that decodes to the same thing.
func FuzzDecodeManifest(f *testing.F) {
	orig, err := os.ReadFile(filepath.Join(vectorDir, ManifestFile))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(orig)
	f.Add([]byte(`{"format":"doorstep-record-v1"}`))
	f.Add([]byte(`{"format":"doorstep-record-v2"}`))
	f.Add([]byte(`{"format":"doorstep-record-v1","extra":1}`))
	f.Add([]byte(`{"format":"doorstep-record-v1"} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(b)
		if err != nil {
			return
		}
		if m.Format != Format {
			t.Fatalf("decoded format %q", m.Format)
		}
		again, err := decodeManifest(m.encode())
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if a, b := flattenValue(m), flattenValue(again); len(diffFields(a, b)) != 0 {
			t.Fatalf("manifest changed in a round trip: %v", diffFields(a, b))
		}
	})
}

func TestDiffFieldsReportsMissingElementsOnce(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(vectorDir, TallyFile))
	if err != nil {
		t.Fatal(err)
	}
	want, err := decodeTally(orig)
	if err != nil {
		t.Fatal(err)
	}
	got := *want
	got.Items = got.Items[:1]
	ds := diffFields(flattenValue(want), flattenValue(&got))
	var paths []string
	for _, d := range ds {
		paths = append(paths, d.path)
	}
	if w := "items.length items[fund] items[board]"; strings.Join(paths, " ") != w {
		t.Errorf("diff paths %q; want %q", paths, w)
	}
}
