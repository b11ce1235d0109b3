package rules

import (
	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// receiptStatuses and recordStatuses map the tally's verdicts on a ballot
// to the API's enums, for the server and the auditor's verifier alike.
var (
	receiptStatuses = map[tally.Standing]doorstepv1.ReceiptStatus{
		tally.StandingCounted:    doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED,
		tally.StandingSuperseded: doorstepv1.ReceiptStatus_RECEIPT_STATUS_SUPERSEDED,
		tally.StandingContested:  doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED,
		tally.StandingIncluded:   doorstepv1.ReceiptStatus_RECEIPT_STATUS_INCLUDED,
	}
	recordStatuses = map[tally.Arrival]doorstepv1.RecordStatus{
		tally.ArrivalAccepted:   doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED,
		tally.ArrivalDuplicate:  doorstepv1.RecordStatus_RECORD_STATUS_DUPLICATE,
		tally.ArrivalSuperseded: doorstepv1.RecordStatus_RECORD_STATUS_SUPERSEDED,
		tally.ArrivalContested:  doorstepv1.RecordStatus_RECORD_STATUS_CONTESTED,
	}
)

// ReceiptStatus is the receipt lookup's answer for an accepted ballot of
// standing s; UNSPECIFIED for a Standing the tally does not define.
func ReceiptStatus(s tally.Standing) doorstepv1.ReceiptStatus { return receiptStatuses[s] }

// RecordStatus is the status an accepted ballot gets on arrival, a;
// UNSPECIFIED for an Arrival the tally does not define.
func RecordStatus(a tally.Arrival) doorstepv1.RecordStatus { return recordStatuses[a] }

// chainSlotReasons are the rejections of what a verified record says, not
// of where it sits in its author's chain.
var chainSlotReasons = map[doorstepv1.ReasonCode]bool{
	doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT:        true,
	doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION:   true,
	doorstepv1.ReasonCode_REASON_CODE_ELECTION_NOT_OPEN:   true,
	doorstepv1.ReasonCode_REASON_CODE_ELECTION_CLOSED:     true,
	doorstepv1.ReasonCode_REASON_CODE_AFTER_SYNC_DEADLINE: true,
	doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION:      true,
	doorstepv1.ReasonCode_REASON_CODE_MALFORMED:           true,
	doorstepv1.ReasonCode_REASON_CODE_CLOCK:               true,
}

// TakesChainSlot reports whether a record whose signature verified, when
// rejected for reason, still takes its place in its author's chain (when
// it fits there without contradiction): the author's later records then
// show no gap, and the device does not send it again.
func TakesChainSlot(reason doorstepv1.ReasonCode) bool { return chainSlotReasons[reason] }
