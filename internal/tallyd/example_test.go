package tallyd_test

import (
	"bytes"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/electionfile"
	"github.com/doorstep-vote/doorstep/internal/examples"
)

func tsOf(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t) }

// exampleElection is the shipped example: the definition (its committee
// key is set by the caller) and the roster.
func exampleElection(t testing.TB) (*doorstepv1.ElectionDefinition, []election.Unit) {
	t.Helper()
	def, err := electionfile.ParseDefinition(examples.ElectionJSON, make([]byte, 32))
	if err != nil {
		t.Fatalf("example election: %v", err)
	}
	units, err := electionfile.ParseRoster(bytes.NewReader(examples.RosterCSV))
	if err != nil {
		t.Fatalf("example roster: %v", err)
	}
	return def, units
}
