package election

import (
	"crypto/ed25519"
	"strconv"
	"time"
	"unicode/utf8"
)

// Limits on definitions and rosters. They keep one election's records small
// enough to verify and store without surprises; see api/SPEC.md.
const (
	MaxIDLen         = 64
	MaxTitleLen      = 512
	MaxTextLen       = 4096
	MaxItems         = 64
	MaxCandidates    = 256
	MaxRosterUnits   = 1_000_000
	MaxUnitAreaCenti = 1_000_000_00 // 1,000,000 m²
)

// CommitteeAuthor is the author_id of records signed by the committee key.
const CommitteeAuthor = "committee"

// ItemKind says what an item asks.
type ItemKind uint8

const (
	KindMotion ItemKind = iota + 1
	KindCandidates
)

// Threshold is a motion's legal majority.
type Threshold uint8

const (
	// Ordinary: more than 1/2 of participating area and headcount.
	Ordinary Threshold = iota + 1
	// Special: at least 3/4 of participating area and headcount.
	Special
)

// Policy decides how a unit with differing live ballots counts.
type Policy uint8

const (
	PolicyHold Policy = iota + 1
	PolicyFirst
	PolicyLast
)

// Candidate is one person standing in a candidate election.
type Candidate struct {
	ID   string
	Name string
}

// Item is one question on the ballot sheet.
type Item struct {
	ID         string
	Title      string
	Kind       ItemKind
	Threshold  Threshold // motions only
	Seats      int       // candidate elections only
	Candidates []Candidate
}

// Definition is an election's ballot sheet and rules.
type Definition struct {
	ID           string
	Title        string
	CommitteeKey ed25519.PublicKey
	Items        []Item
	Policy       Policy
	SyncDeadline time.Time
	RulesVersion string
	FutureSkew   time.Duration
	// ObjectionPeriod is how long the preliminary results notice stays up
	// after the close before the result may be certified.
	ObjectionPeriod time.Duration
}

// DefaultFutureSkew is how far ahead of the server a record may be dated
// before it is flagged.
const DefaultFutureSkew = 10 * time.Minute

// Validate checks the definition and returns the first problem, naming the
// field.
func (d *Definition) Validate() error {
	if err := checkID("election_id", d.ID); err != nil {
		return err
	}
	if err := checkText("title", d.Title, MaxTitleLen, true); err != nil {
		return err
	}
	if len(d.CommitteeKey) != ed25519.PublicKeySize {
		return Errorf(CodeInvalid, "committee_public_key", "must be a %d-byte ed25519 public key, got %d bytes", ed25519.PublicKeySize, len(d.CommitteeKey))
	}
	if len(d.Items) == 0 {
		return Errorf(CodeInvalid, "items", "an election needs at least one item")
	}
	if len(d.Items) > MaxItems {
		return Errorf(CodeTooLarge, "items", "at most %d items, got %d", MaxItems, len(d.Items))
	}
	if d.Policy < PolicyHold || d.Policy > PolicyLast {
		return Errorf(CodeInvalid, "contest_policy", "must be hold, first or last")
	}
	if d.SyncDeadline.IsZero() {
		return Errorf(CodeInvalid, "sync_deadline", "is required: the last moment ballots collected before close are accepted")
	}
	if d.FutureSkew < 0 {
		return Errorf(CodeInvalid, "future_skew_ms", "must not be negative")
	}
	if d.ObjectionPeriod < 0 {
		return Errorf(CodeInvalid, "objection_period_ms", "must not be negative")
	}
	seen := make(map[string]bool, len(d.Items))
	for i := range d.Items {
		it := &d.Items[i]
		field := "items[" + strconv.Itoa(i) + "]"
		if err := checkID(field+".item_id", it.ID); err != nil {
			return err
		}
		if seen[it.ID] {
			return Errorf(CodeInvalid, field+".item_id", "duplicate item id %q", it.ID)
		}
		seen[it.ID] = true
		if err := checkText(field+".title", it.Title, MaxTitleLen, true); err != nil {
			return err
		}
		switch it.Kind {
		case KindMotion:
			if it.Threshold != Ordinary && it.Threshold != Special {
				return Errorf(CodeInvalid, field+".motion.threshold", "must be ORDINARY or SPECIAL")
			}
			if len(it.Candidates) != 0 || it.Seats != 0 {
				return Errorf(CodeInvalid, field, "a motion has no seats or candidates")
			}
		case KindCandidates:
			if len(it.Candidates) == 0 {
				return Errorf(CodeInvalid, field+".candidates", "a candidate election needs candidates")
			}
			if len(it.Candidates) > MaxCandidates {
				return Errorf(CodeTooLarge, field+".candidates", "at most %d candidates, got %d", MaxCandidates, len(it.Candidates))
			}
			if it.Seats < 1 || it.Seats > len(it.Candidates) {
				return Errorf(CodeInvalid, field+".seats", "must be between 1 and the number of candidates (%d), got %d", len(it.Candidates), it.Seats)
			}
			cs := make(map[string]bool, len(it.Candidates))
			for j, c := range it.Candidates {
				cf := field + ".candidates[" + strconv.Itoa(j) + "]"
				if err := checkID(cf+".candidate_id", c.ID); err != nil {
					return err
				}
				if cs[c.ID] {
					return Errorf(CodeInvalid, cf+".candidate_id", "duplicate candidate id %q", c.ID)
				}
				cs[c.ID] = true
				if err := checkText(cf+".name", c.Name, MaxTitleLen, true); err != nil {
					return err
				}
			}
		default:
			return Errorf(CodeInvalid, field, "must be a motion or a candidate election")
		}
	}
	return nil
}

// ItemIndex returns the index of the item with the given id, or -1.
func (d *Definition) ItemIndex(id string) int {
	for i := range d.Items {
		if d.Items[i].ID == id {
			return i
		}
	}
	return -1
}

func checkID(field, s string) error {
	if s == "" {
		return Errorf(CodeInvalid, field, "is required")
	}
	if len(s) > MaxIDLen {
		return Errorf(CodeInvalid, field, "must be at most %d bytes, got %d", MaxIDLen, len(s))
	}
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalid, field, "is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x21 || r == 0x7f || r == '\uFFFD' {
			return Errorf(CodeInvalid, field, "must not contain spaces or control characters: %q", s)
		}
	}
	return nil
}

// CheckID validates an identifier (unit, item, candidate, owner key, device).
func CheckID(field, s string) error { return checkID(field, s) }

func checkText(field, s string, max int, required bool) error {
	if required && s == "" {
		return Errorf(CodeInvalid, field, "is required")
	}
	if len(s) > max {
		return Errorf(CodeTooLarge, field, "must be at most %d bytes, got %d", max, len(s))
	}
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalid, field, "is not valid UTF-8")
	}
	for _, r := range s {
		if r < 0x20 && r != '\n' && r != '\t' || r == 0x7f {
			return Errorf(CodeInvalid, field, "must not contain control characters")
		}
	}
	return nil
}

// CheckText validates free text such as comments and notes.
func CheckText(field, s string, max int) error { return checkText(field, s, max, false) }
