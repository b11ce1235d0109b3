package electionfile

import (
	"strconv"
	"strings"
	"time"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// MaxObjectionPeriod bounds objection_period: a year is more than any
// estate's rules ask for, and far from overflowing.
const MaxObjectionPeriod = 366 * 24 * time.Hour

// ParseDuration reads a period as people write it in a definition: whole
// days ("7d"), Go's units ("168h", "90m", "1h30m"), or both ("1d12h").
// field names it in errors. It is never negative and at most
// MaxObjectionPeriod.
func ParseDuration(field, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	bad := func() (time.Duration, error) {
		return 0, election.Errorf(election.CodeInvalid, field, "%q is not a period: write days and hours like \"7d\", \"168h\" or \"1d12h\"", s)
	}
	if s == "" {
		return bad()
	}
	if s == "0" {
		return 0, nil
	}
	var d time.Duration
	rest := s
	if i := strings.IndexByte(rest, 'd'); i >= 0 {
		days, err := strconv.ParseUint(rest[:i], 10, 16)
		if err != nil || i == 0 || rest[0] == '+' {
			return bad()
		}
		if days > uint64(MaxObjectionPeriod/(24*time.Hour)) {
			return tooLong(field, s)
		}
		d = time.Duration(days) * 24 * time.Hour
		rest = rest[i+1:]
	}
	if rest != "" {
		if rest[0] < '0' || rest[0] > '9' {
			// No sign, no leading dot: "7d-1h" is not a period.
			return bad()
		}
		more, err := time.ParseDuration(rest)
		if err != nil || more < 0 {
			return bad()
		}
		if more > MaxObjectionPeriod {
			return tooLong(field, s)
		}
		d += more
	}
	if d > MaxObjectionPeriod {
		return tooLong(field, s)
	}
	return d, nil
}

func tooLong(field, s string) (time.Duration, error) {
	return 0, election.Errorf(election.CodeInvalid, field, "%q is longer than %d days", s, int(MaxObjectionPeriod/(24*time.Hour)))
}
