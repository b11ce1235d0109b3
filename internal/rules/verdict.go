package rules

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
)

// Verdict is a decision on one record: accepted (Reason unspecified),
// possibly with flags and notes, or rejected for Reason with a message for
// the person who made the record. Field names what is at fault, in the
// record's terms (author_seq, ballot.unit_id, received, …), so that the
// verifier can say where a server's decision went wrong.
type Verdict struct {
	Reason  doorstepv1.ReasonCode
	Field   string
	Message string
	Flags   []doorstepv1.RecordFlag
	// Notes explain the flags of an accepted record, in plain words.
	Notes []string
}

// Accept is the verdict of a record that breaks no rule.
var Accept = Verdict{}

// Reject returns a rejection for reason naming field.
func Reject(reason doorstepv1.ReasonCode, field, format string, args ...any) Verdict {
	return Verdict{Reason: reason, Field: field, Message: fmt.Sprintf(format, args...)}
}

// Accepted reports whether the verdict accepts the record.
func (v Verdict) Accepted() bool { return v.Reason == doorstepv1.ReasonCode_REASON_CODE_UNSPECIFIED }

// Status is the record's status under the verdict: REJECTED, or ACCEPTED
// for a record whose status no reconciliation refines (a ballot's is its
// arrival, see [RecordStatus]).
func (v Verdict) Status() doorstepv1.RecordStatus {
	if v.Accepted() {
		return doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED
	}
	return doorstepv1.RecordStatus_RECORD_STATUS_REJECTED
}

// flag adds a flag to an accepted verdict with the note that explains it.
func (v *Verdict) flag(f doorstepv1.RecordFlag, note string) {
	v.Flags = append(v.Flags, f)
	v.Notes = append(v.Notes, note)
}

// Text is what the record's answer says: the rejection's message, or the
// notes of an accepted record's flags.
func (v Verdict) Text() string {
	if !v.Accepted() {
		return v.Message
	}
	return strings.Join(v.Notes, "; ")
}

// fromError is the rejection for reason of a domain error from a field
// check; the message keeps the field's name, as the person fixing the
// record needs it.
func fromError(reason doorstepv1.ReasonCode, err error) Verdict {
	var de *election.Error
	if errors.As(err, &de) {
		return Verdict{Reason: reason, Field: de.Field, Message: de.Error()}
	}
	return Verdict{Reason: reason, Message: err.Error()}
}

// prefixField puts the record's part in front of a domain error's field
// (selections[0] becomes ballot.selections[0]).
func prefixField(prefix string, err error) error {
	var de *election.Error
	if errors.As(err, &de) && de.Field != "" {
		return &election.Error{Code: de.Code, Field: prefix + de.Field, Msg: de.Msg}
	}
	return err
}

func uitoa(n uint64) string { return strconv.FormatUint(n, 10) }
