package electionfile_test

import (
	"bytes"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/electionfile"
)

const rosterCSV = `unit_id,building,area_m2,owner_key,developer_held
1-1-101,1,89.50,owner-1-1-101,false
1-1-102,1,120,holder-01,0
1-1-201,1,65.5,holder-01,
1-1-202,1,101.25,developer,true
1-1-301, 1 , 77.07 ,developer,yes
`

func TestParseRoster(t *testing.T) {
	want := []election.Unit{
		{ID: "1-1-101", Building: "1", Area: 8950, OwnerKey: "owner-1-1-101"},
		{ID: "1-1-102", Building: "1", Area: 12000, OwnerKey: "holder-01"},
		{ID: "1-1-201", Building: "1", Area: 6550, OwnerKey: "holder-01"},
		{ID: "1-1-202", Building: "1", Area: 10125, OwnerKey: "developer", DeveloperHeld: true},
		{ID: "1-1-301", Building: "1", Area: 7707, OwnerKey: "developer", DeveloperHeld: true},
	}
	reordered := "owner_key,unit_id,developer_held,area_m2,building\n" +
		"owner-1-1-101,1-1-101,false,89.50,1\nholder-01,1-1-102,0,120,1\nholder-01,1-1-201,,65.5,1\n" +
		"developer,1-1-202,true,101.25,1\ndeveloper,1-1-301,yes,77.07,1\n"
	for _, tt := range []struct{ name, in string }{
		{"plain", rosterCSV},
		{"bom and crlf", "\ufeff" + strings.ReplaceAll(rosterCSV, "\n", "\r\n")},
		{"columns reordered", reordered},
		{"header case and blank lines", strings.Replace(rosterCSV, "unit_id,", "Unit_ID ,", 1) + "\n\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := electionfile.ParseRoster(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("got %d units; want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("unit %d = %+v; want %+v", i, got[i], want[i])
				}
			}
			r, err := election.NewRoster(got)
			if err != nil {
				t.Fatal(err)
			}
			if r.TotalArea() != 8950+12000+6550+10125+7707 || r.Headcount() != 3 {
				t.Errorf("roster area %d, headcount %d", r.TotalArea(), r.Headcount())
			}
		})
	}
}

func TestParseRosterErrors(t *testing.T) {
	const header = "unit_id,building,area_m2,owner_key,developer_held\n"
	tests := []struct {
		name      string
		in        string
		wantLine  int
		wantField string
		wantMsg   string
	}{
		{"empty", "", 0, "roster", "is empty"},
		{"header only", header, 0, "roster", "no units"},
		{"unknown column", "unit_id,building,area,owner_key,developer_held\n", 1, "header", `unknown column "area"`},
		{"missing column", "unit_id,building,area_m2,owner_key\n", 1, "header", `"developer_held" is missing`},
		{"dup column", "unit_id,building,area_m2,owner_key,developer_held,unit_id\n", 1, "header", "twice"},
		{"field count", header + "1-1-101,1,89.50,o\n", 2, "csv", "different number of fields"},
		{"bad quote", header + "1-1-101,1,\"89.50,o,false\n", 2, "csv", ""},
		{"negative area", header + "1-1-101,1,-89.50,o,false\n", 2, "area_m2", "negative"},
		{"zero area", header + "1-1-101,1,0.00,o,false\n", 2, "area_m2", "more than zero"},
		{"three decimals", header + "1-1-101,1,89.505,o,false\n", 2, "area_m2", "more than two decimals"},
		{"comma decimal", header + "1-1-101,1,\"89,50\",o,false\n", 2, "area_m2", "digits and one point"},
		{"unit suffix", header + "1-1-101,1,89.50m²,o,false\n", 2, "area_m2", "digits and one point"},
		{"huge area", header + "1-1-101,1,99999999999999999999,o,false\n", 2, "area_m2", "larger than"},
		{"missing area", header + "1-1-101,1,,o,false\n", 2, "area_m2", "missing"},
		{"empty owner", header + "1-1-101,1,89.50,,false\n", 2, "owner_key", "no owner key"},
		{"owner with space", header + "1-1-101,1,89.50,王 先生,false\n", 2, "owner_key", "spaces"},
		{"empty unit", header + ",1,89.50,o,false\n", 2, "unit_id", "required"},
		{"bad bool", header + "1-1-101,1,89.50,o,maybe\n", 2, "developer_held", "not true or false"},
		{"invalid utf8", header + "1-1-101,\xff,89.50,o,false\n", 2, "building", "UTF-8"},
		{"gbk header", "unit_id,\xc2\xa5\xb0\n", 1, "header", "UTF-8"},
		{"duplicate unit", header + "1-1-101,1,89.50,a,false\n1-1-102,1,89.50,b,false\n1-1-101,1,70,c,false\n", 4, "unit_id", "first on line 2"},
		{"two developer keys", header + "1-1-101,1,89.50,dev-a,true\n1-1-102,1,89.50,dev-b,true\n", 3, "owner_key", "share one owner key"},
		{"developer key unmarked", header + "1-1-101,1,89.50,dev,true\n1-1-102,1,89.50,dev,false\n", 3, "developer_held", "not marked"},
		{"owner key as developer", header + "1-1-101,1,89.50,o,false\n1-1-102,1,89.50,o,true\n", 3, "owner_key", "an owner's key (line 2)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := electionfile.ParseRoster(strings.NewReader(tt.in))
			if err == nil {
				t.Fatal("succeeded; want an error")
			}
			var le *electionfile.LineError
			gotLine := 0
			if errors.As(err, &le) {
				gotLine = le.Line
			}
			if gotLine != tt.wantLine {
				t.Errorf("line = %d; want %d (err %v)", gotLine, tt.wantLine, err)
			}
			var e *election.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v; want an *election.Error inside", err)
			}
			if e.Field != tt.wantField {
				t.Errorf("field = %q; want %q (err %v)", e.Field, tt.wantField, err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("err = %q; want it to contain %q", err, tt.wantMsg)
			}
		})
	}
}

func TestParseArea(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: error
	}{
		{"89.50", 8950}, {"89.5", 8950}, {"89", 8900}, {"0.01", 1}, {"0.10", 10}, {"089.05", 8905},
		{"1000000", election.MaxUnitAreaCenti}, {"1000000.00", election.MaxUnitAreaCenti},
		{"1000000.01", 0}, {"", 0}, {"0", 0}, {"0.00", 0}, {"-1", 0}, {"+1", 0}, {".5", 0}, {"5.", 0},
		{"1e3", 0}, {"1.234", 0}, {"1,5", 0}, {"1.2.3", 0}, {" 1", 0}, {"١٢", 0}, {"NaN", 0},
		{"99999999999999999999999", 0},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := electionfile.ParseArea(tt.in)
			if tt.want == 0 {
				if err == nil {
					t.Fatalf("ParseArea(%q) = %d; want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseArea(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestFormatRosterRoundTrip(t *testing.T) {
	units, err := electionfile.ParseRoster(strings.NewReader(rosterCSV))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := electionfile.FormatRoster(&b, units); err != nil {
		t.Fatal(err)
	}
	again, err := electionfile.ParseRoster(&b)
	if err != nil {
		t.Fatal(err)
	}
	if election.HashUnits(units) != election.HashUnits(again) {
		t.Errorf("round trip changed the roster:\n%v\n%v", units, again)
	}
}

func FuzzParseArea(f *testing.F) {
	for _, s := range []string{"89.50", "89.5", "89", "0.01", "1000000.00", "-1", "1e3", "1.234", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := electionfile.ParseArea(s)
		if err != nil {
			return
		}
		if got <= 0 || got > election.MaxUnitAreaCenti {
			t.Fatalf("ParseArea(%q) = %d; out of range", s, got)
		}
		// Cross-check against exact rational arithmetic.
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("ParseArea(%q) = %d, but it is not a number", s, got)
		}
		if r.Mul(r, big.NewRat(100, 1)).Cmp(big.NewRat(got, 1)) != 0 {
			t.Fatalf("ParseArea(%q) = %d; want %s", s, got, r.FloatString(2))
		}
		if back, err := electionfile.ParseArea(election.FormatArea(got)); err != nil || back != got {
			t.Fatalf("FormatArea(%d) = %q parses to %d, %v", got, election.FormatArea(got), back, err)
		}
	})
}

func FuzzParseRoster(f *testing.F) {
	f.Add([]byte(rosterCSV))
	f.Add([]byte("\ufeffunit_id,building,area_m2,owner_key,developer_held\r\n3-2-501,3,89.50,\"owner,3\",否\r\n"))
	f.Add([]byte("unit_id,building,area_m2,owner_key,developer_held\n1,1,1,a,1\n1,1,1,a,1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		units, err := electionfile.ParseRoster(bytes.NewReader(data))
		if err != nil {
			var e *election.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) carries no *election.Error", err, err)
			}
			return
		}
		if _, err := election.NewRoster(units); err != nil {
			t.Fatalf("ParseRoster accepted a roster NewRoster rejects: %v", err)
		}
		var b bytes.Buffer
		if err := electionfile.FormatRoster(&b, units); err != nil {
			t.Fatal(err)
		}
		again, err := electionfile.ParseRoster(&b)
		if err != nil {
			t.Fatalf("formatted roster does not parse: %v\n%s", err, b.String())
		}
		if election.HashUnits(units) != election.HashUnits(again) {
			t.Fatal("format and parse changed the roster")
		}
	})
}
