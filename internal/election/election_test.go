package election_test

import (
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/election"
)

func validDefinition() *election.Definition {
	return &election.Definition{
		ID: "e1", Title: "第四届", CommitteeKey: make(ed25519.PublicKey, ed25519.PublicKeySize),
		Policy: election.PolicyHold, SyncDeadline: time.Unix(2e9, 0),
		Items: []election.Item{
			{ID: "rules", Title: "rules", Kind: election.KindMotion, Threshold: election.Ordinary},
			{ID: "seats", Title: "seats", Kind: election.KindCandidates, Seats: 2, Candidates: []election.Candidate{{ID: "a", Name: "A"}, {ID: "b", Name: "B"}, {ID: "c", Name: "C"}}},
		},
	}
}

func TestDefinitionValidate(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(d *election.Definition)
		field string // "" means valid
	}{
		{"valid", func(d *election.Definition) {}, ""},
		{"no id", func(d *election.Definition) { d.ID = "" }, "election_id"},
		{"space in id", func(d *election.Definition) { d.ID = "a b" }, "election_id"},
		{"invalid utf-8 title", func(d *election.Definition) { d.Title = "\xff" }, "title"},
		{"short key", func(d *election.Definition) { d.CommitteeKey = d.CommitteeKey[:3] }, "committee_public_key"},
		{"no items", func(d *election.Definition) { d.Items = nil }, "items"},
		{"bad policy", func(d *election.Definition) { d.Policy = 9 }, "contest_policy"},
		{"no deadline", func(d *election.Definition) { d.SyncDeadline = time.Time{} }, "sync_deadline"},
		{"duplicate item", func(d *election.Definition) { d.Items[1].ID = "rules" }, "items[1].item_id"},
		{"motion without threshold", func(d *election.Definition) { d.Items[0].Threshold = 0 }, "items[0].motion.threshold"},
		{"zero seats", func(d *election.Definition) { d.Items[1].Seats = 0 }, "items[1].seats"},
		{"more seats than candidates", func(d *election.Definition) { d.Items[1].Seats = 4 }, "items[1].seats"},
		{"duplicate candidate", func(d *election.Definition) { d.Items[1].Candidates[2].ID = "a" }, "items[1].candidates[2].candidate_id"},
		{"unknown kind", func(d *election.Definition) { d.Items[0].Kind = 0 }, "items[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := validDefinition()
			tt.edit(d)
			err := d.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			var de *election.Error
			if !errors.As(err, &de) || de.Field != tt.field {
				t.Fatalf("got %v, want an error naming %q", err, tt.field)
			}
		})
	}
}

func TestMarks(t *testing.T) {
	d := validDefinition()
	tests := []struct {
		name    string
		sels    []election.Selection
		want    election.Marks
		invalid bool
		field   string
	}{
		{"blank ballot abstains", nil, election.Marks{{Kind: election.MarkAbstain}, {Kind: election.MarkAbstain}}, false, ""},
		{"yes and two picks", []election.Selection{{ItemID: "rules", Choice: election.ChoiceYes}, {ItemID: "seats", Candidates: []string{"c", "a"}}},
			election.Marks{{Kind: election.MarkYes}, {Kind: election.MarkPicks, Picks: []uint16{0, 2}}}, false, ""},
		{"over seats is invalid, not an error", []election.Selection{{ItemID: "seats", Candidates: []string{"a", "b", "c"}}},
			election.Marks{{Kind: election.MarkAbstain}, {Kind: election.MarkInvalid}}, true, ""},
		{"unknown item", []election.Selection{{ItemID: "x", Choice: election.ChoiceYes}}, nil, false, "selections[0].item_id"},
		{"item twice", []election.Selection{{ItemID: "rules", Choice: election.ChoiceYes}, {ItemID: "rules", Choice: election.ChoiceNo}}, nil, false, "selections[1].item_id"},
		{"picks on a motion", []election.Selection{{ItemID: "rules", Candidates: []string{"a"}}}, nil, false, "selections[0].candidate_ids"},
		{"yes on a candidate election", []election.Selection{{ItemID: "seats", Choice: election.ChoiceYes}}, nil, false, "selections[0].choice"},
		{"unknown candidate", []election.Selection{{ItemID: "seats", Candidates: []string{"z"}}}, nil, false, "selections[0].candidate_ids[0]"},
		{"candidate twice", []election.Selection{{ItemID: "seats", Candidates: []string{"a", "a"}}}, nil, false, "selections[0].candidate_ids[1]"},
		{"unknown choice", []election.Selection{{ItemID: "rules", Choice: 9}}, nil, false, "selections[0].choice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, invalid, err := d.Marks(tt.sels)
			if tt.field != "" {
				var de *election.Error
				if !errors.As(err, &de) || de.Field != tt.field {
					t.Fatalf("got %v, want an error naming %q", err, tt.field)
				}
				return
			}
			if err != nil || !got.Equal(tt.want) || invalid != tt.invalid {
				t.Fatalf("got %v %v %v, want %v %v", got, invalid, err, tt.want, tt.invalid)
			}
		})
	}
}

func TestRoster(t *testing.T) {
	units := []election.Unit{
		{ID: "2-1-101", Area: 8950, OwnerKey: "o2"},
		{ID: "1-1-101", Area: 10000, OwnerKey: "o1"},
		{ID: "1-1-102", Area: 5025, OwnerKey: "o1"},
	}
	r, err := election.NewRoster(units)
	if err != nil {
		t.Fatal(err)
	}
	if r.TotalArea() != 23975 || r.Headcount() != 2 || r.Units()[0].ID != "1-1-101" {
		t.Errorf("got area %d headcount %d first %s", r.TotalArea(), r.Headcount(), r.Units()[0].ID)
	}
	// The hash does not depend on input order.
	r2, _ := election.NewRoster([]election.Unit{units[2], units[0], units[1]})
	if r.Hash() != r2.Hash() {
		t.Errorf("roster hash depends on order")
	}
	changed := append([]election.Unit(nil), units...)
	changed[0].Area++
	r3, _ := election.NewRoster(changed)
	if r.Hash() == r3.Hash() {
		t.Errorf("roster hash ignores an area change")
	}
	bad := []struct {
		name  string
		units []election.Unit
		field string
	}{
		{"empty", nil, "roster"},
		{"zero area", []election.Unit{{ID: "a", Area: 0, OwnerKey: "o"}}, "area"},
		{"negative area", []election.Unit{{ID: "a", Area: -1, OwnerKey: "o"}}, "area"},
		{"no owner", []election.Unit{{ID: "a", Area: 1}}, "owner_key"},
		{"duplicate", []election.Unit{{ID: "a", Area: 1, OwnerKey: "o"}, {ID: "a", Area: 2, OwnerKey: "p"}}, "unit_id"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := election.NewRoster(tt.units)
			var de *election.Error
			if !errors.As(err, &de) || de.Field != tt.field {
				t.Fatalf("got %v, want an error naming %q", err, tt.field)
			}
		})
	}
}

func TestFormatArea(t *testing.T) {
	for in, want := range map[int64]string{0: "0.00", 5: "0.05", 8950: "89.50", -125: "-1.25", 1234567: "12345.67"} {
		if got := election.FormatArea(in); got != want {
			t.Errorf("FormatArea(%d) = %q, want %q", in, got, want)
		}
	}
}

// FuzzMarks: any selections against a valid definition give one mark per
// item or an error naming a field; never a panic.
func FuzzMarks(f *testing.F) {
	f.Add("rules", uint8(1), "a,b")
	f.Add("seats", uint8(0), "a,b,c")
	f.Add("x", uint8(9), "")
	d := validDefinition()
	f.Fuzz(func(t *testing.T, item string, choice uint8, picks string) {
		cands := strings.FieldsFunc(picks, func(r rune) bool { return r == ',' })
		m, _, err := d.Marks([]election.Selection{{ItemID: item, Choice: election.Choice(choice), Candidates: cands}})
		if err != nil {
			var de *election.Error
			if !errors.As(err, &de) || de.Field == "" {
				t.Fatalf("error without field: %v", err)
			}
			return
		}
		if len(m) != len(d.Items) {
			t.Fatalf("%d marks for %d items", len(m), len(d.Items))
		}
		for _, mk := range m {
			if mk.Kind == election.MarkPicks && (len(mk.Picks) == 0 || len(mk.Picks) > 2) {
				t.Fatalf("picks mark with %d picks", len(mk.Picks))
			}
		}
	})
}
