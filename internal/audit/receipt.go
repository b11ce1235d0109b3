package audit

import (
	"context"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// ReceiptMatch is a ballot of the record whose receipt code matched.
type ReceiptMatch struct {
	Entry    int64
	UnitID   string
	RecordID string
	// Status is how the ballot stands by the verifier's own replay:
	// COUNTED, SUPERSEDED, CONTESTED, INCLUDED (an identical ballot of its
	// unit counts) or REJECTED (by the server, or by the verifier because
	// it breaks a rule).
	Status doorstepv1.ReceiptStatus
	// Server is the decision the server logged for it.
	Server doorstepv1.RecordStatus
}

// LookupReceipt verifies the record in dir as Verify does and finds the
// ballots with the receipt code (as a person typed it), only in unit
// unitID if that is not empty. It never reveals a ballot's choices.
func LookupReceipt(ctx context.Context, dir, code, unitID string) ([]ReceiptMatch, *Report, error) {
	code, err := ballotlog.ParseReceiptCode(code)
	if err != nil {
		return nil, nil, err
	}
	var matches []ReceiptMatch
	var counted []bool
	watch := func(idx int64, d *decoded, ok bool) {
		b := d.rec.GetBallot()
		if b == nil || unitID != "" && b.GetUnitId() != unitID {
			return
		}
		sr := d.entry.GetRecord()
		if ballotlog.ReceiptCode(sr.GetBody(), sr.GetSignature()) != code {
			return
		}
		counted = append(counted, ok)
		matches = append(matches, ReceiptMatch{Entry: idx, UnitID: b.GetUnitId(), RecordID: d.rec.GetRecordId(), Server: d.entry.GetResult().GetStatus()})
	}
	var outcomes map[string]tally.UnitOutcome
	rep, err := verify(ctx, dir, watch, &outcomes)
	if err != nil {
		return nil, nil, err
	}
	for i := range matches {
		m := &matches[i]
		if !counted[i] {
			m.Status = doorstepv1.ReceiptStatus_RECEIPT_STATUS_REJECTED
			continue
		}
		out := outcomes[m.UnitID]
		m.Status = rules.ReceiptStatus(out.Standing(m.RecordID))
	}
	return matches, rep, nil
}
