package election

import (
	"crypto/sha256"
	"encoding/binary"
	"slices"
	"strconv"
)

// Unit is one exclusive part (专有部分): one household, one vote.
type Unit struct {
	ID            string
	Area          int64 // exclusive area in 0.01 m²
	OwnerKey      string
	DeveloperHeld bool
	Building      string
}

// Roster is the frozen list of units. Build it with NewRoster.
type Roster struct {
	units     []Unit // sorted by ID
	index     map[string]int
	totalArea int64
	owners    int
}

// NewRoster validates units and returns the roster sorted by unit id.
// Areas must be positive, unit ids unique, owner keys present.
func NewRoster(units []Unit) (*Roster, error) {
	if len(units) == 0 {
		return nil, Errorf(CodeInvalid, "roster", "has no units")
	}
	if len(units) > MaxRosterUnits {
		return nil, Errorf(CodeTooLarge, "roster", "at most %d units, got %d", MaxRosterUnits, len(units))
	}
	r := &Roster{units: slices.Clone(units), index: make(map[string]int, len(units))}
	slices.SortFunc(r.units, func(a, b Unit) int { return compareStrings(a.ID, b.ID) })
	owners := make(map[string]struct{})
	for i, u := range r.units {
		if err := u.Validate(); err != nil {
			return nil, err
		}
		if _, dup := r.index[u.ID]; dup {
			return nil, Errorf(CodeInvalid, "unit_id", "duplicate unit id %q", u.ID)
		}
		r.index[u.ID] = i
		r.totalArea += u.Area
		owners[u.OwnerKey] = struct{}{}
	}
	r.owners = len(owners)
	return r, nil
}

// Validate checks one unit's fields.
func (u *Unit) Validate() error {
	if err := checkID("unit_id", u.ID); err != nil {
		return err
	}
	if u.Area <= 0 {
		return Errorf(CodeInvalid, "area", "unit %q: area must be positive, got %d (0.01 m²)", u.ID, u.Area)
	}
	if u.Area > MaxUnitAreaCenti {
		return Errorf(CodeInvalid, "area", "unit %q: area %d (0.01 m²) is larger than %d", u.ID, u.Area, MaxUnitAreaCenti)
	}
	if u.OwnerKey == "" {
		return Errorf(CodeInvalid, "owner_key", "unit %q: owner key is required", u.ID)
	}
	if err := checkID("owner_key", u.OwnerKey); err != nil {
		return err
	}
	return checkText("building", u.Building, MaxIDLen, false)
}

// Units returns the units sorted by id. The slice must not be modified.
func (r *Roster) Units() []Unit { return r.units }

// Unit returns the unit with the given id.
func (r *Roster) Unit(id string) (Unit, bool) {
	i, ok := r.index[id]
	if !ok {
		return Unit{}, false
	}
	return r.units[i], true
}

// TotalArea is the sum of all units' areas in 0.01 m².
func (r *Roster) TotalArea() int64 { return r.totalArea }

// Headcount is the number of distinct owner keys.
func (r *Roster) Headcount() int { return r.owners }

// Hash is the roster's SHA-256 over its canonical form: units sorted by id
// (bytewise), each as length-prefixed id, owner key and building, the area
// as a big-endian int64 and the developer flag as one byte. See api/SPEC.md.
func (r *Roster) Hash() [32]byte { return HashUnits(r.units) }

// HashUnits hashes units in the canonical roster form; units must already be
// sorted by id.
func HashUnits(units []Unit) [32]byte {
	h := sha256.New()
	h.Write([]byte("doorstep-roster-v1\n"))
	var buf []byte
	for _, u := range units {
		buf = buf[:0]
		buf = appendString(buf, u.ID)
		buf = appendString(buf, u.OwnerKey)
		buf = appendString(buf, u.Building)
		buf = binary.BigEndian.AppendUint64(buf, uint64(u.Area))
		if u.DeveloperHeld {
			buf = append(buf, 1)
		} else {
			buf = append(buf, 0)
		}
		h.Write(buf)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// FormatArea renders an area in 0.01 m² as square metres, e.g. "89.50".
func FormatArea(centi int64) string {
	neg := centi < 0
	if neg {
		centi = -centi
	}
	s := strconv.FormatInt(centi/100, 10) + "." + strconv.FormatInt(100+centi%100, 10)[1:]
	if neg {
		s = "-" + s
	}
	return s
}
