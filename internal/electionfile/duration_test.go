package electionfile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/electionfile"
)

func TestParseDuration(t *testing.T) {
	day := 24 * time.Hour
	for _, tt := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7d", 7 * day, true},
		{"168h", 7 * day, true},
		{"1d12h", 36 * time.Hour, true},
		{" 3d ", 3 * day, true},
		{"90m", 90 * time.Minute, true},
		{"0", 0, true},
		{"0d", 0, true},
		{"366d", 366 * day, true},
		{"367d", 0, false},
		{"9000h", 0, false},
		{"", 0, false},
		{"d", 0, false},
		{"-1d", 0, false},
		{"+1d", 0, false},
		{"-5h", 0, false},
		{"1d-5h", 0, false},
		{"1.5d", 0, false},
		{"7 days", 0, false},
		{"1d1d", 0, false},
		{"7", 0, false},
		{"99999999999999999999d", 0, false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := electionfile.ParseDuration("objection_period", tt.in)
			if tt.ok != (err == nil) || got != tt.want {
				t.Fatalf("ParseDuration(%q) = %v, %v; want %v (ok %v)", tt.in, got, err, tt.want, tt.ok)
			}
			if err != nil && (election.ErrorCode(err) != election.CodeInvalid || !strings.Contains(err.Error(), "objection_period")) {
				t.Errorf("err = %v; want an invalid objection_period", err)
			}
		})
	}
}

func TestDefinitionObjectionPeriod(t *testing.T) {
	for _, tt := range []struct{ name, data string }{
		{"json", strings.Replace(defJSON, `"rules_version"`, `"objection_period": "7d", "rules_version"`, 1)},
		{"yaml", strings.Replace(defYAML, "rules_version:", "objection_period: 168h\nrules_version:", 1)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := electionfile.ParseDefinition([]byte(tt.data), committeeKey)
			if err != nil {
				t.Fatal(err)
			}
			if got := time.Duration(p.GetObjectionPeriodMs()) * time.Millisecond; got != 7*24*time.Hour {
				t.Errorf("objection period = %v; want 7 days", got)
			}
		})
	}
	p, err := electionfile.ParseDefinition([]byte(defJSON), committeeKey)
	if err != nil || p.GetObjectionPeriodMs() != 0 {
		t.Errorf("without objection_period: %v ms, %v; want none", p.GetObjectionPeriodMs(), err)
	}
	_, err = electionfile.ParseDefinition([]byte(strings.Replace(defJSON, `"rules_version"`, `"objection_period": "a week", "rules_version"`, 1)), committeeKey)
	if err == nil || !strings.Contains(err.Error(), `"a week" is not a period`) {
		t.Errorf("a bad period: %v; want it named", err)
	} else if election.ErrorCode(err) != election.CodeInvalid {
		t.Errorf("err %v (%T) is not an invalid field", err, err)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"7d", "168h", "1d12h", "0", "-1d", "1d-5h", "366d", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := electionfile.ParseDuration("objection_period", s)
		if err != nil {
			if d != 0 {
				t.Fatalf("%q: error %v with a period %v", s, err, d)
			}
			return
		}
		if d < 0 || d > electionfile.MaxObjectionPeriod {
			t.Fatalf("%q gave %v: out of range", s, d)
		}
		// Every accepted period reads back the same from Go's form.
		if again, err := electionfile.ParseDuration("objection_period", d.String()); err != nil && d != 0 || err == nil && again != d {
			t.Fatalf("%q = %v, but %q reads %v, %v", s, d, d.String(), again, err)
		}
	})
}
