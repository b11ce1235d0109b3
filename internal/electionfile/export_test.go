package electionfile

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// The tests write rosters back out to check that parsing keeps every unit.

// FormatRoster writes units as a roster CSV that ParseRoster reads back.
func FormatRoster(w io.Writer, units []election.Unit) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(rosterColumns)
	for _, u := range units {
		_ = cw.Write([]string{u.ID, u.Building, election.FormatArea(u.Area), u.OwnerKey, strconv.FormatBool(u.DeveloperHeld)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write roster: %w", err)
	}
	return nil
}
