package examples_test

import (
	"bytes"
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/electionfile"
	"github.com/doorstep-vote/doorstep/internal/examples"
	"github.com/doorstep-vote/doorstep/internal/rules"
)

func TestElection(t *testing.T) {
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)).Public().(ed25519.PublicKey)
	p, err := electionfile.ParseDefinition(examples.ElectionJSON, key)
	if err != nil {
		t.Fatal(err)
	}
	d, err := rules.Definition(p)
	if err != nil {
		t.Fatal(err)
	}
	if d.Policy != election.PolicyHold || d.SyncDeadline.IsZero() {
		t.Errorf("policy %v, deadline %v; want hold and a deadline", d.Policy, d.SyncDeadline)
	}
	want := []struct {
		id    string
		kind  election.ItemKind
		th    election.Threshold
		seats int
		cands int
	}{
		{"committee", election.KindCandidates, 0, 7, 9},
		{"rules", election.KindMotion, election.Ordinary, 0, 0},
		{"roof", election.KindMotion, election.Ordinary, 0, 0},
		{"fund", election.KindMotion, election.Special, 0, 0},
	}
	if len(d.Items) != len(want) {
		t.Fatalf("%d items; want %d", len(d.Items), len(want))
	}
	for i, w := range want {
		it := d.Items[i]
		if it.ID != w.id || it.Kind != w.kind || it.Threshold != w.th || it.Seats != w.seats || len(it.Candidates) != w.cands {
			t.Errorf("item %d = %s kind %d threshold %d seats %d candidates %d; want %+v", i, it.ID, it.Kind, it.Threshold, it.Seats, len(it.Candidates), w)
		}
	}
	for _, c := range d.Items[0].Candidates {
		for _, r := range c.Name {
			if r < 0x4e00 || r > 0x9fff {
				t.Errorf("candidate %s name %q is not written in Chinese characters", c.ID, c.Name)
			}
		}
	}
}

func TestRoster(t *testing.T) {
	units, err := electionfile.ParseRoster(bytes.NewReader(examples.RosterCSV))
	if err != nil {
		t.Fatal(err)
	}
	r, err := election.NewRoster(units)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(units); n < 250 || n > 350 {
		t.Errorf("%d units; want about 300", n)
	}
	perOwner := map[string]int{}
	buildings := map[string]bool{}
	var developer, coOwned int
	for _, u := range units {
		perOwner[u.OwnerKey]++
		buildings[u.Building] = true
		parts := strings.Split(u.ID, "-")
		if len(parts) != 3 || parts[0] != u.Building || len(parts[2]) != 3 {
			t.Errorf("unit id %q is not building-entrance-room in building %q", u.ID, u.Building)
		}
		if u.Area < 6000 || u.Area > 14000 {
			t.Errorf("unit %s: area %s m² outside 60–140", u.ID, election.FormatArea(u.Area))
		}
		if u.DeveloperHeld {
			developer++
			if u.OwnerKey != "developer" {
				t.Errorf("developer unit %s has owner %q", u.ID, u.OwnerKey)
			}
		}
		if strings.HasPrefix(u.OwnerKey, "co-owners-") {
			coOwned++
			if u.OwnerKey != "co-owners-"+u.ID {
				t.Errorf("co-owned unit %s has key %q", u.ID, u.OwnerKey)
			}
		}
	}
	if len(buildings) < 6 {
		t.Errorf("%d buildings; want several", len(buildings))
	}
	if developer != 20 {
		t.Errorf("%d developer-held units; want 20", developer)
	}
	if coOwned != 15 {
		t.Errorf("%d co-owned units; want 15", coOwned)
	}
	multi := 0
	for k, n := range perOwner {
		if k == "developer" || n < 2 {
			continue
		}
		multi++
		if n > 3 {
			t.Errorf("owner %s holds %d units; want 2–3", k, n)
		}
	}
	if multi != 10 {
		t.Errorf("%d owners hold several units; want 10", multi)
	}
	if want := len(perOwner); r.Headcount() != want {
		t.Errorf("headcount %d; want %d", r.Headcount(), want)
	}
}
