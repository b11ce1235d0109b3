package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// field is one leaf of a flattened value: a path like
// items[rules].candidates[c1].support.area and its value as text.
type field struct {
	path, value string
}

// keyFields name the list elements by an id rather than a position, so a
// diff says which item or candidate differs even when lists are reordered.
var keyFields = []string{"item_id", "candidate_id", "device_id"}

// flattenValue lists the leaves of v (structs, slices and scalars with
// JSON tags) in declaration order.
func flattenValue(v any) []field {
	var out []field
	flatten("", reflect.ValueOf(v), &out)
	return out
}

func flatten(prefix string, v reflect.Value, out *[]field) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			*out = append(*out, field{prefix, "null"})
			return
		}
		flatten(prefix, v.Elem(), out)
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			p := name
			if prefix != "" {
				p = prefix + "." + name
			}
			flatten(p, v.Field(i), out)
		}
	case reflect.Slice:
		*out = append(*out, field{prefix + ".length", strconv.Itoa(v.Len())})
		keys := elemKeys(v)
		for i := range v.Len() {
			p := prefix + "[" + keys[i] + "]"
			// The element itself is a leaf too, so one missing on one
			// side is reported once, not field by field.
			*out = append(*out, field{p, elementPresent})
			flatten(p, v.Index(i), out)
		}
	default:
		*out = append(*out, field{prefix, fmt.Sprint(v.Interface())})
	}
}

// elemKeys names a slice's elements by their id field when every element
// has a distinct, non-empty one, else by position.
func elemKeys(v reflect.Value) []string {
	keys := make([]string, v.Len())
	seen := make(map[string]bool, v.Len())
	for i := range keys {
		k := elemID(v.Index(i))
		if k == "" || seen[k] {
			for j := range keys {
				keys[j] = strconv.Itoa(j)
			}
			return keys
		}
		seen[k] = true
		keys[i] = k
	}
	return keys
}

// elemID is the value of an element's id field, or "".
func elemID(v reflect.Value) string {
	if v.Kind() != reflect.Struct {
		return ""
	}
	t := v.Type()
	for j := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(j).Tag.Get("json"), ",")
		for _, k := range keyFields {
			if name == k && v.Field(j).Kind() == reflect.String {
				return v.Field(j).String()
			}
		}
	}
	return ""
}

const elementPresent = "(present)"

// fieldDiff is one path whose values differ; a missing side is "(none)".
type fieldDiff struct {
	path, want, got string
}

// diffFields compares two flattenings: want in its order, then paths only
// got has.
func diffFields(want, got []field) []fieldDiff {
	gotAt := make(map[string]string, len(got))
	for _, f := range got {
		gotAt[f.path] = f.value
	}
	wantAt := make(map[string]bool, len(want))
	var out []fieldDiff
	var missing string // an element reported missing: skip its fields
	under := func(path string) bool {
		return missing != "" && strings.HasPrefix(path, missing) && len(path) > len(missing) && (path[len(missing)] == '.' || path[len(missing)] == '[')
	}
	for _, f := range want {
		wantAt[f.path] = true
		if under(f.path) {
			continue
		}
		g, ok := gotAt[f.path]
		if !ok {
			g = "(none)"
			if f.value == elementPresent {
				missing = f.path
			}
		}
		if g != f.value {
			out = append(out, fieldDiff{f.path, f.value, g})
		}
	}
	missing = ""
	for _, f := range got {
		if wantAt[f.path] || under(f.path) {
			continue
		}
		if f.value == elementPresent {
			missing = f.path
		}
		out = append(out, fieldDiff{f.path, "(none)", f.value})
	}
	return out
}

// diffTally compares the published tally with the recomputed one: nothing
// when the bytes are equal, else each field that differs, or why the
// published bytes cannot be compared field by field.
func diffTally(published []byte, recomputed *tally.Result) []Discrepancy {
	want := recomputed.CanonicalJSON()
	if bytes.Equal(published, want) {
		return nil
	}
	found := func(field, format string, args ...any) Discrepancy {
		return Discrepancy{Entry: -1, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	pub, err := decodeTally(published)
	if err != nil {
		return []Discrepancy{found(TallyFile, "is not a %s document (%v); the recomputed tally differs from it entirely", tally.Format, err)}
	}
	var out []Discrepancy
	for _, d := range diffFields(flattenValue(recomputed), flattenValue(pub)) {
		out = append(out, found("tally "+d.path, "published %s, recomputed %s", withArea(d.path, d.got), withArea(d.path, d.want)))
	}
	if len(out) == 0 {
		out = append(out, found(TallyFile, "says what the recomputed tally says but is not its canonical form (first difference at byte %d)", firstDiffByte(published, want)))
	}
	return out
}

// decodeTally reads a published tally strictly: unknown fields or trailing
// text mean it is not the format this verifier knows.
func decodeTally(b []byte) (*tally.Result, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var r tally.Result
	if err := dec.Decode(&r); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("text after the JSON object")
	}
	return &r, nil
}

// withArea adds square metres to an area in 0.01 m², for people.
func withArea(path, v string) string {
	if !strings.HasSuffix(path, "area") {
		return v
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return v
	}
	return v + " (" + election.FormatArea(n) + " m²)"
}

func firstDiffByte(a, b []byte) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// firstDiffLine is the 1-based number of the first line where a and b
// differ, or 0 when they are equal.
func firstDiffLine(a, b []byte) int {
	if bytes.Equal(a, b) {
		return 0
	}
	return bytes.Count(a[:firstDiffByte(a, b)], []byte{'\n'}) + 1
}
