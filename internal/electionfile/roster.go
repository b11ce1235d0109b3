package electionfile

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// Roster CSV column names.
const (
	ColUnitID        = "unit_id"
	ColBuilding      = "building"
	ColAreaM2        = "area_m2"
	ColOwnerKey      = "owner_key"
	ColDeveloperHeld = "developer_held"
)

var rosterColumns = []string{ColUnitID, ColBuilding, ColAreaM2, ColOwnerKey, ColDeveloperHeld}

// ParseRoster reads a roster CSV (see the package documentation) and
// returns its units in file order. It checks every unit (election.Unit's
// Validate), that unit ids are unique, and that developer-held units share
// one owner key that no other unit uses. Errors are *LineError wrapping an
// *election.Error that names the column.
func ParseRoster(r io.Reader) ([]election.Unit, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if errors.Is(err, io.EOF) {
		return nil, election.Errorf(election.CodeInvalid, "roster", "is empty; the first line must name the columns %s", strings.Join(rosterColumns, ","))
	}
	if err != nil {
		return nil, csvError(err)
	}
	col, err := columns(header)
	if err != nil {
		return nil, &LineError{Line: 1, Err: err}
	}
	var (
		units     []election.Unit
		firstLine = map[string]int{}
		devKey    string
		devLine   int
		ownerLine = map[string]int{} // first line of each non-developer owner key
	)
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, csvError(err)
		}
		line, _ := cr.FieldPos(0)
		if len(units) == election.MaxRosterUnits {
			return nil, &LineError{Line: line, Err: election.Errorf(election.CodeTooLarge, "roster", "has more than %d units", election.MaxRosterUnits)}
		}
		u, err := parseUnit(rec, col)
		if err != nil {
			return nil, &LineError{Line: line, Err: err}
		}
		if first, dup := firstLine[u.ID]; dup {
			return nil, &LineError{Line: line, Err: election.Errorf(election.CodeInvalid, ColUnitID, "duplicate unit id %q (first on line %d)", u.ID, first)}
		}
		firstLine[u.ID] = line
		if u.DeveloperHeld {
			switch {
			case devKey == "":
				if l, ok := ownerLine[u.OwnerKey]; ok {
					return nil, &LineError{Line: line, Err: election.Errorf(election.CodeInvalid, ColOwnerKey, "%q is an owner's key (line %d), not the developer's: developer-held units need their own shared key", u.OwnerKey, l)}
				}
				devKey, devLine = u.OwnerKey, line
			case u.OwnerKey != devKey:
				return nil, &LineError{Line: line, Err: election.Errorf(election.CodeInvalid, ColOwnerKey, "developer-held units must all share one owner key: %q here, %q on line %d", u.OwnerKey, devKey, devLine)}
			}
		} else {
			if devKey != "" && u.OwnerKey == devKey {
				return nil, &LineError{Line: line, Err: election.Errorf(election.CodeInvalid, ColDeveloperHeld, "unit %q has the developer's owner key %q but is not marked developer_held", u.ID, devKey)}
			}
			if _, ok := ownerLine[u.OwnerKey]; !ok {
				ownerLine[u.OwnerKey] = line
			}
		}
		units = append(units, u)
	}
	if len(units) == 0 {
		return nil, election.Errorf(election.CodeInvalid, "roster", "has a header but no units")
	}
	return units, nil
}

func csvError(err error) error {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		msg := pe.Err.Error()
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			msg = fmt.Sprintf("has a different number of fields than the header (%d columns)", len(rosterColumns))
		}
		return &LineError{Line: pe.Line, Err: election.Errorf(election.CodeInvalid, "csv", "%s", msg)}
	}
	return fmt.Errorf("read roster: %w", err)
}

// columns maps each roster column to its index in the header.
func columns(header []string) (map[string]int, error) {
	col := make(map[string]int, len(header))
	for i, h := range header {
		if i == 0 {
			h = strings.TrimPrefix(h, "\ufeff")
		}
		if !utf8.ValidString(h) {
			return nil, election.Errorf(election.CodeInvalid, "header", "is not UTF-8: save the file as \"CSV UTF-8\"")
		}
		h = strings.ToLower(strings.TrimSpace(h))
		known := false
		for _, c := range rosterColumns {
			known = known || c == h
		}
		if !known {
			return nil, election.Errorf(election.CodeInvalid, "header", "unknown column %q; the columns are %s (area_m2 in square metres)", h, strings.Join(rosterColumns, ","))
		}
		if _, dup := col[h]; dup {
			return nil, election.Errorf(election.CodeInvalid, "header", "column %q appears twice", h)
		}
		col[h] = i
	}
	for _, c := range rosterColumns {
		if _, ok := col[c]; !ok {
			return nil, election.Errorf(election.CodeInvalid, "header", "column %q is missing; the columns are %s", c, strings.Join(rosterColumns, ","))
		}
	}
	return col, nil
}

func parseUnit(rec []string, col map[string]int) (election.Unit, error) {
	get := func(name string) (string, error) {
		v := rec[col[name]]
		if !utf8.ValidString(v) {
			return "", election.Errorf(election.CodeInvalid, name, "is not valid UTF-8: save the file as \"CSV UTF-8\"")
		}
		return strings.TrimSpace(v), nil
	}
	var u election.Unit
	var err error
	if u.ID, err = get(ColUnitID); err != nil {
		return u, err
	}
	if u.Building, err = get(ColBuilding); err != nil {
		return u, err
	}
	if u.OwnerKey, err = get(ColOwnerKey); err != nil {
		return u, err
	}
	area, err := get(ColAreaM2)
	if err != nil {
		return u, err
	}
	if u.Area, err = ParseArea(area); err != nil {
		return u, election.Errorf(election.CodeInvalid, ColAreaM2, "unit %q: %v", u.ID, err)
	}
	dev, err := get(ColDeveloperHeld)
	if err != nil {
		return u, err
	}
	if u.DeveloperHeld, err = parseBool(dev); err != nil {
		return u, election.Errorf(election.CodeInvalid, ColDeveloperHeld, "unit %q: %v", u.ID, err)
	}
	if u.OwnerKey == "" {
		return u, election.Errorf(election.CodeInvalid, ColOwnerKey, "unit %q has no owner key; co-owners share one key, unsold units use the developer's", u.ID)
	}
	if err := u.Validate(); err != nil {
		return u, err
	}
	return u, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "", "0", "false", "f", "no", "n", "否":
		return false, nil
	case "1", "true", "t", "yes", "y", "是":
		return true, nil
	}
	return false, fmt.Errorf("%q is not true or false (also yes/no, 1/0, 是/否)", s)
}

// ParseArea reads square metres with at most two decimals ("89.50", "89.5",
// "89") exactly into 0.01 m². It accepts digits and one point only: no sign,
// exponent, unit or thousands separator. The area must be positive and at
// most election.MaxUnitAreaCenti.
func ParseArea(s string) (int64, error) {
	whole, frac, hasPoint := strings.Cut(s, ".")
	if s == "" {
		return 0, errors.New("area is missing")
	}
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("%q: an area cannot be negative", s)
	}
	if whole == "" || hasPoint && frac == "" {
		return 0, fmt.Errorf("%q is not a number of square metres like 89.50", s)
	}
	if !digits(whole) || !digits(frac) {
		return 0, fmt.Errorf("%q is not a number of square metres like 89.50 (digits and one point only)", s)
	}
	if len(frac) > 2 {
		return 0, fmt.Errorf("%q has more than two decimals; areas are kept to 0.01 m²", s)
	}
	var centi int64
	for _, c := range []byte(whole) {
		centi = centi*10 + int64(c-'0')
		if centi > election.MaxUnitAreaCenti/100 {
			return 0, fmt.Errorf("%q m² is larger than the largest area allowed, %s m²", s, election.FormatArea(election.MaxUnitAreaCenti))
		}
	}
	centi *= 100
	frac += "00"[len(frac):]
	centi += 10*int64(frac[0]-'0') + int64(frac[1]-'0')
	if centi == 0 {
		return 0, fmt.Errorf("%q: an area must be more than zero", s)
	}
	if centi > election.MaxUnitAreaCenti {
		return 0, fmt.Errorf("%q m² is larger than the largest area allowed, %s m²", s, election.FormatArea(election.MaxUnitAreaCenti))
	}
	return centi, nil
}

func digits(s string) bool {
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
