package device

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// Route is the part of the roster a canvasser walks: whole buildings, or a
// list of units in the order given. An empty route is the whole roster.
type Route struct {
	Buildings []string
	Units     []string
}

// Progress is where a unit stands, from this device's records and the
// server's status of everyone's.
type Progress uint8

const (
	// ToVisit: nobody has recorded anything at the unit.
	ToVisit Progress = iota
	// Visited: a call is recorded (not home, refused, ballot left, moved),
	// no ballot.
	Visited
	// Done: a ballot is recorded, here or by another device.
	Done
	// Contested: the server holds differing ballots for the unit; the
	// committee settles it, not the canvasser.
	Contested
)

func (p Progress) String() string {
	switch p {
	case ToVisit:
		return "to visit"
	case Visited:
		return "visited"
	case Done:
		return "done"
	case Contested:
		return "contested"
	}
	return "progress(" + strconv.Itoa(int(p)) + ")"
}

// UnitProgress is one stop on the walk list.
type UnitProgress struct {
	Unit     election.Unit
	Building string
	Progress Progress
	// Ballots and Visits count this device's own records at the unit.
	Ballots int
	Visits  int
	// LastVisit is this device's latest visit outcome, else the server's.
	LastVisit doorstepv1.VisitOutcome
	// LastBallot is the record id of this device's latest ballot.
	LastBallot string
	// ServerVisits is every device's visits as the server last reported.
	ServerVisits uint32
}

// Finished reports whether the canvasser need not knock again.
func (p UnitProgress) Finished() bool { return p.Progress == Done || p.Progress == Contested }

// Building is the building a unit belongs to: its roster building, or the
// first part of its id ("3" of "3-2-501").
func Building(u election.Unit) string {
	if u.Building != "" {
		return u.Building
	}
	b, _, _ := strings.Cut(u.ID, "-")
	return b
}

// Walk returns the route's units in walking order with their progress.
// Buildings are walked in natural order ("2" before "10"), units within
// them by id in natural order; a unit list is walked as given. An unknown
// building or unit is an error naming it.
func (d *Device) Walk(route Route) ([]UnitProgress, error) {
	_, roster, err := d.Election()
	if err != nil {
		return nil, err
	}
	if roster == nil {
		return nil, ErrNoRoster
	}
	var units []election.Unit
	switch {
	case len(route.Units) > 0:
		seen := make(map[string]bool, len(route.Units))
		for _, id := range route.Units {
			u, ok := roster.Unit(id)
			if !ok {
				return nil, election.Errorf(election.CodeNotFound, "units", "unit %q is not on this election's roster", id)
			}
			if !seen[id] {
				seen[id] = true
				units = append(units, u)
			}
		}
	case len(route.Buildings) > 0:
		want := make(map[string]bool, len(route.Buildings))
		for _, b := range route.Buildings {
			want[b] = true
		}
		found := make(map[string]bool)
		for _, u := range roster.Units() {
			if b := Building(u); want[b] {
				units = append(units, u)
				found[b] = true
			}
		}
		for _, b := range route.Buildings {
			if !found[b] {
				return nil, election.Errorf(election.CodeNotFound, "buildings", "building %q has no units on this election's roster", b)
			}
		}
		sortUnits(units)
	default:
		units = slices.Clone(roster.Units())
		sortUnits(units)
	}
	out := make([]UnitProgress, len(units))
	err = d.st.read(func(r *rtx) error {
		for i, u := range units {
			own, err := r.unitState(u.ID)
			if err != nil {
				return err
			}
			srv, err := r.unitStatus(u.ID)
			if err != nil {
				return err
			}
			out[i] = progressOf(u, own, srv)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the walk list: %w", err)
	}
	return out, nil
}

func progressOf(u election.Unit, own unitState, srv *doorstepv1.UnitStatus) UnitProgress {
	p := UnitProgress{
		Unit:         u,
		Building:     Building(u),
		Ballots:      own.Ballots,
		Visits:       own.Visits,
		LastVisit:    doorstepv1.VisitOutcome(own.LastVisit),
		LastBallot:   own.LastBallotID,
		ServerVisits: srv.GetVisits(),
	}
	if p.LastVisit == doorstepv1.VisitOutcome_VISIT_OUTCOME_UNSPECIFIED {
		p.LastVisit = srv.GetLastVisit()
	}
	switch {
	case srv.GetProgress() == doorstepv1.UnitProgress_UNIT_PROGRESS_CONTESTED:
		p.Progress = Contested
	case own.Ballots > 0 || srv.GetProgress() == doorstepv1.UnitProgress_UNIT_PROGRESS_DONE:
		p.Progress = Done
	case own.Visits > 0 || srv.GetProgress() == doorstepv1.UnitProgress_UNIT_PROGRESS_VISITED:
		p.Progress = Visited
	}
	return p
}

func sortUnits(units []election.Unit) {
	slices.SortStableFunc(units, func(a, b election.Unit) int {
		if c := NaturalCompare(Building(a), Building(b)); c != 0 {
			return c
		}
		return NaturalCompare(a.ID, b.ID)
	})
}

// NaturalCompare orders ids the way people read them: parts split on "-"
// compare as numbers when both are numbers ("2-1-901" before "2-1-1001"),
// else as text.
func NaturalCompare(a, b string) int {
	for {
		pa, ra, moreA := strings.Cut(a, "-")
		pb, rb, moreB := strings.Cut(b, "-")
		if c := comparePart(pa, pb); c != 0 {
			return c
		}
		switch {
		case !moreA && !moreB:
			return 0
		case !moreA:
			return -1
		case !moreB:
			return 1
		}
		a, b = ra, rb
	}
}

func comparePart(a, b string) int {
	na, errA := strconv.ParseUint(a, 10, 64)
	nb, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		if c := cmp.Compare(na, nb); c != 0 {
			return c
		}
		return strings.Compare(a, b) // "01" vs "1": stable either way
	case errA == nil:
		return -1 // numbers before words
	case errB == nil:
		return 1
	}
	return strings.Compare(a, b)
}
