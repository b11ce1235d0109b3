package rules_test

import (
	"testing"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// TestReceiptStatus: what a receipt lookup answers for an accepted ballot,
// from its unit's outcome (the server's lookup and the verifier's both).
func TestReceiptStatus(t *testing.T) {
	tests := []struct {
		name string
		out  tally.UnitOutcome
		id   string
		want doorstepv1.ReceiptStatus
	}{
		{"counted", tally.UnitOutcome{Counted: true, CountedID: "a", Live: []string{"a"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_COUNTED},
		{"superseded", tally.UnitOutcome{Counted: true, CountedID: "b", Live: []string{"b"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_SUPERSEDED},
		{"held", tally.UnitOutcome{Contested: true, Live: []string{"a", "b"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED},
		{"settled for the other", tally.UnitOutcome{Contested: true, Adjudicated: true, Counted: true, CountedID: "b", Live: []string{"a", "b"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED},
		{"settled for none", tally.UnitOutcome{Adjudicated: true, Live: []string{"a"}}, "a", doorstepv1.ReceiptStatus_RECEIPT_STATUS_CONTESTED},
		{"double visit copy", tally.UnitOutcome{Counted: true, Double: true, CountedID: "a", Live: []string{"a", "b"}}, "b", doorstepv1.ReceiptStatus_RECEIPT_STATUS_INCLUDED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rules.ReceiptStatus(tt.out.Standing(tt.id)); got != tt.want {
				t.Errorf("ReceiptStatus = %v; want %v", got, tt.want)
			}
		})
	}
	if got := rules.ReceiptStatus(0); got != doorstepv1.ReceiptStatus_RECEIPT_STATUS_UNSPECIFIED {
		t.Errorf("ReceiptStatus(0) = %v; want UNSPECIFIED", got)
	}
}

// TestRecordStatus: the status an accepted ballot gets on arrival, from
// its unit's outcome with it (the server's answer and the verifier's
// re-derivation both).
func TestRecordStatus(t *testing.T) {
	tests := []struct {
		name string
		out  tally.UnitOutcome
		id   string
		want doorstepv1.RecordStatus
	}{
		{"only ballot", tally.UnitOutcome{Counted: true, CountedID: "a", Live: []string{"a"}}, "a", doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED},
		{"not live", tally.UnitOutcome{Counted: true, CountedID: "b", Live: []string{"b"}}, "a", doorstepv1.RecordStatus_RECORD_STATUS_SUPERSEDED},
		{"contested", tally.UnitOutcome{Contested: true, Live: []string{"a", "b"}}, "b", doorstepv1.RecordStatus_RECORD_STATUS_CONTESTED},
		{"contested and settled", tally.UnitOutcome{Contested: true, Adjudicated: true, Counted: true, CountedID: "b", Live: []string{"a", "b"}}, "b", doorstepv1.RecordStatus_RECORD_STATUS_CONTESTED},
		{"double visit", tally.UnitOutcome{Counted: true, Double: true, CountedID: "a", Live: []string{"a", "b"}}, "b", doorstepv1.RecordStatus_RECORD_STATUS_DUPLICATE},
		{"settled for none, not contested", tally.UnitOutcome{Adjudicated: true, Live: []string{"a"}}, "a", doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rules.RecordStatus(tt.out.Arrival(tt.id)); got != tt.want {
				t.Errorf("RecordStatus = %v; want %v", got, tt.want)
			}
		})
	}
	if got := rules.RecordStatus(0); got != doorstepv1.RecordStatus_RECORD_STATUS_UNSPECIFIED {
		t.Errorf("RecordStatus(0) = %v; want UNSPECIFIED", got)
	}
}
