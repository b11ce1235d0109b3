package store_test

import (
	"context"
	"testing"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

// FuzzPush feeds arbitrary record bytes, signed by an enrolled device so
// they get past the signature check, through the whole ingest path: every
// record gets exactly one answer, rejections carry a reason and a message,
// and nothing panics.
func FuzzPush(f *testing.F) {
	sc, com, devs := randomScenario(f, 7)
	s := openStore(f, f.TempDir())
	setup(f, s, com, sc.units, devs, 0)
	dev := devs[0]
	seed := *dev
	f.Add(seed.Ballot(nil, sc.units[0].ID, "", signedtest.Yes("m"), signedtest.Pick("c", "x", "y", "z")).Body, true)
	f.Add(seed.Visit(nil, sc.units[1].ID, doorstepv1.VisitOutcome_VISIT_OUTCOME_MOVED).Body, true)
	f.Add(seed.Ballot(nil, "nope", "", signedtest.No("s")).Body, false)
	f.Add([]byte{0x08, 0x01}, true)
	f.Fuzz(func(t *testing.T, body []byte, sign bool) {
		sr := &doorstepv1.SignedRecord{Body: body, Signature: make([]byte, 64)}
		if sign {
			sr = signed.SignBody(dev.Key, body)
		}
		res, cp, err := s.Push(context.Background(), eid, []*doorstepv1.SignedRecord{sr})
		if err != nil {
			t.Fatalf("push: %v", err)
		}
		if len(res) != 1 || cp == nil {
			t.Fatalf("got %d answers and checkpoint %v", len(res), cp)
		}
		r := res[0]
		if r.Status == doorstepv1.RecordStatus_RECORD_STATUS_UNSPECIFIED {
			t.Fatalf("no status: %v", r)
		}
		if r.Status == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED && (r.Reason == 0 || r.Message == "") {
			t.Fatalf("rejection without reason or message: %v", r)
		}
		if r.Status != doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
			rec, err := signed.Decode(body)
			if err != nil || rec.GetAuthorId() != dev.ID || rec.GetAuthorId() == election.CommitteeAuthor {
				t.Fatalf("accepted a record that does not decode as the device's: %v", err)
			}
		}
	})
}
