package device_test

import (
	"context"
	"slices"
	"testing"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/device"
	"github.com/doorstep-vote/doorstep/internal/election"
)

func TestWalk(t *testing.T) {
	f := newFixture(t)
	d, _ := f.joined(t, "v")
	mustRecord(t, d, owner("1-1-101", yes("rules")))
	if _, err := d.RecordVisit(context.Background(), device.Visit{UnitID: "1-1-102", Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_REFUSED}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		route device.Route
		want  []string
	}{
		{"whole roster in natural order", device.Route{}, []string{"1-1-101", "1-1-102", "1-2-201", "2-1-901", "2-1-1001", "10-1-101"}},
		{"buildings", device.Route{Buildings: []string{"10", "2"}}, []string{"2-1-901", "2-1-1001", "10-1-101"}},
		{"units as given, once each", device.Route{Units: []string{"10-1-101", "1-1-101", "10-1-101"}}, []string{"10-1-101", "1-1-101"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			walk, err := d.Walk(tt.route)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range walk {
				got = append(got, p.Unit.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("walk = %v; want %v", got, tt.want)
			}
		})
	}
	walk, err := d.Walk(device.Route{Buildings: []string{"1"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		p        device.Progress
		finished bool
		visit    doorstepv1.VisitOutcome
	}{
		{device.Done, true, 0},
		{device.Visited, false, doorstepv1.VisitOutcome_VISIT_OUTCOME_REFUSED},
		{device.ToVisit, false, 0},
	}
	for i, w := range want {
		if g := walk[i]; g.Progress != w.p || g.Finished() != w.finished || g.LastVisit != w.visit || g.Building != "1" {
			t.Errorf("%s: %+v; want %v, finished %v, last visit %v", g.Unit.ID, g, w.p, w.finished, w.visit)
		}
	}
	for _, r := range []device.Route{{Buildings: []string{"7"}}, {Units: []string{"7-1-101"}}} {
		if _, err := d.Walk(r); election.ErrorCode(err) != election.CodeNotFound {
			t.Errorf("Walk(%+v): %v; want not found", r, err)
		}
	}
}

var naturalCases = []struct {
	a, b string
	want int
}{
	{"1-1-101", "1-1-101", 0},
	{"2-1-901", "2-1-1001", -1},
	{"10-1-101", "2-1-101", 1},
	{"1-1", "1-1-101", -1},
	{"A-1", "1-1", 1},
	{"B-2", "A-3", 1},
	{"01", "1", -1},
	{"", "1", 1},
}

func TestNaturalCompare(t *testing.T) {
	for _, tt := range naturalCases {
		t.Run(tt.a+"|"+tt.b, func(t *testing.T) {
			if got := device.NaturalCompare(tt.a, tt.b); got != tt.want {
				t.Errorf("NaturalCompare(%q, %q) = %d; want %d", tt.a, tt.b, got, tt.want)
			}
			if got := device.NaturalCompare(tt.b, tt.a); got != -tt.want {
				t.Errorf("NaturalCompare(%q, %q) = %d; want %d", tt.b, tt.a, got, -tt.want)
			}
		})
	}
}

// FuzzNaturalCompare checks that the order is one: antisymmetric, and
// equal only for equal strings.
func FuzzNaturalCompare(f *testing.F) {
	for _, tt := range naturalCases {
		f.Add(tt.a, tt.b)
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		ab, ba := device.NaturalCompare(a, b), device.NaturalCompare(b, a)
		if ab != -ba {
			t.Errorf("NaturalCompare(%q, %q) = %d but reversed %d", a, b, ab, ba)
		}
		if (ab == 0) != (a == b) {
			t.Errorf("NaturalCompare(%q, %q) = %d", a, b, ab)
		}
		if device.NaturalCompare(a, a) != 0 {
			t.Errorf("NaturalCompare(%q, itself) != 0", a)
		}
	})
}
