package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestRefusalLimiter: per kind, the first burst of each window is logged
// one by one, the rest counted and summed up in one line when the kind
// comes again after the window; kinds do not share a budget.
func TestRefusalLimiter(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	type step struct {
		at      time.Duration // after t0
		kind    string
		allowed bool
		summary string // words the log must have gained, "" for none
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"burst then quiet", []step{
			{0, "a", true, ""}, {time.Second, "a", true, ""}, {2 * time.Second, "a", true, ""},
			{3 * time.Second, "a", false, ""}, {30 * time.Second, "a", false, ""},
			{61 * time.Second, "a", true, "kind=a more=2"},
			{62 * time.Second, "a", true, ""},
		}},
		{"kinds apart", []step{
			{0, "a", true, ""}, {0, "a", true, ""}, {0, "a", true, ""}, {0, "a", false, ""},
			{0, "b", true, ""}, {0, "b", true, ""}, {0, "b", true, ""}, {0, "b", false, ""},
			{time.Minute, "b", true, "kind=b more=1"},
			{time.Minute, "a", true, "kind=a more=1"},
		}},
		{"a window with nothing left over says nothing", []step{
			{0, "a", true, ""}, {2 * time.Minute, "a", true, ""},
		}},
		{"a clock set back starts a new window", []step{
			{time.Hour, "a", true, ""}, {time.Hour, "a", true, ""}, {time.Hour, "a", true, ""}, {time.Hour, "a", false, ""},
			{0, "a", true, "kind=a more=1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			var now time.Time
			l := newRefusalLimiter(slog.New(slog.NewTextHandler(&buf, nil)), func() time.Time { return now }, 3, time.Minute)
			for i, s := range tt.steps {
				now = t0.Add(s.at)
				before := buf.Len()
				if got := l.allow(s.kind); got != s.allowed {
					t.Errorf("step %d (%s at %v): allowed %v, want %v", i, s.kind, s.at, got, s.allowed)
				}
				added := buf.String()[before:]
				switch {
				case s.summary == "" && added != "":
					t.Errorf("step %d: logged %q, want nothing", i, added)
				case s.summary != "" && !strings.Contains(added, s.summary):
					t.Errorf("step %d: logged %q, want a summary with %q", i, added, s.summary)
				}
			}
		})
	}
}
