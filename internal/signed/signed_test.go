package signed_test

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

func TestSignVerify(t *testing.T) {
	a := signedtest.NewAuthor("e1", "dv-1", "seed", time.Unix(1e9, 0))
	sr := a.Ballot(t, "1-1-101", "", signedtest.Yes("m"))
	if err := signed.Verify(a.Public(), sr); err != nil {
		t.Fatalf("verify: %v", err)
	}
	other := signedtest.NewKey("other").Public().(ed25519.PublicKey)
	tests := []struct {
		name string
		pub  ed25519.PublicKey
		sr   *doorstepv1.SignedRecord
	}{
		{"other key", other, sr},
		{"flipped body", a.Public(), &doorstepv1.SignedRecord{Body: flip(sr.Body, 3), Signature: sr.Signature}},
		{"flipped signature", a.Public(), &doorstepv1.SignedRecord{Body: sr.Body, Signature: flip(sr.Signature, 0)}},
		{"short signature", a.Public(), &doorstepv1.SignedRecord{Body: sr.Body, Signature: sr.Signature[:10]}},
		{"short key", a.Public()[:5], sr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := signed.Verify(tt.pub, tt.sr); !errors.Is(err, signed.ErrBadSignature) {
				t.Errorf("got %v, want ErrBadSignature", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

func TestDecodeErrors(t *testing.T) {
	a := signedtest.NewAuthor("e1", "dv-1", "seed", time.Unix(1e9, 0))
	good, err := signed.Decode(a.Ballot(t, "1-1-101", "").Body)
	if err != nil {
		t.Fatal(err)
	}
	mut := func(f func(r *doorstepv1.Record)) []byte {
		r := proto.Clone(good).(*doorstepv1.Record)
		f(r)
		b, _ := proto.Marshal(r)
		return b
	}
	tests := []struct {
		name  string
		body  []byte
		field string
	}{
		{"empty", nil, "body"},
		{"garbage", []byte{0xff, 0xff, 0xff}, "body"},
		{"version", mut(func(r *doorstepv1.Record) { r.FormatVersion = 2 }), "format_version"},
		{"not uuid", mut(func(r *doorstepv1.Record) { r.RecordId = "abc" }), "record_id"},
		{"uuid v4", mut(func(r *doorstepv1.Record) { r.RecordId = "6ba7b810-9dad-41d1-80b4-00c04fd430c8" }), "record_id"},
		{"upper case uuid", mut(func(r *doorstepv1.Record) { r.RecordId = "01A1F7F8-33E8-75EA-B460-EE9893689317" }), "record_id"},
		{"no election", mut(func(r *doorstepv1.Record) { r.ElectionId = "" }), "election_id"},
		{"invalid utf-8 author", mut(func(r *doorstepv1.Record) { r.AuthorId = "\xff\xfe" }), "body"},
		{"seq zero", mut(func(r *doorstepv1.Record) { r.AuthorSeq = 0 }), "author_seq"},
		{"prev hash on first", mut(func(r *doorstepv1.Record) { r.PrevHash = make([]byte, 32) }), "prev_hash"},
		{"short prev hash", mut(func(r *doorstepv1.Record) { r.AuthorSeq = 2; r.PrevHash = []byte{1} }), "prev_hash"},
		{"no body", mut(func(r *doorstepv1.Record) { r.Body = nil }), "body"},
		{"huge device record", mut(func(r *doorstepv1.Record) { r.GetBallot().Comment = string(make([]byte, signed.MaxBodyBytes)) }), "body"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := signed.Decode(tt.body)
			var de *election.Error
			if !errors.As(err, &de) {
				t.Fatalf("got %v, want an *election.Error", err)
			}
			if de.Field != tt.field {
				t.Errorf("field %q (%v), want %q", de.Field, err, tt.field)
			}
		})
	}
}

// FuzzDecode: any bytes either decode to a record whose envelope checks
// pass, or fail with a domain error; never a panic.
func FuzzDecode(f *testing.F) {
	a := signedtest.NewAuthor("e1", "dv-1", "seed", time.Unix(1e9, 0))
	f.Add(a.Ballot(nil, "1-1-101", "", signedtest.Yes("m"), signedtest.Pick("c", "x")).Body)
	f.Add(a.Visit(nil, "1-1-101", doorstepv1.VisitOutcome_VISIT_OUTCOME_REFUSED).Body)
	f.Add(a.Committee(nil, signedtest.Close()).Body)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		rec, err := signed.Decode(body)
		if err != nil {
			if election.ErrorCode(err) == 0 {
				t.Fatalf("error without a domain code: %v", err)
			}
			return
		}
		if rec.GetAuthorSeq() == 0 || rec.GetBody() == nil {
			t.Fatalf("accepted a record without seq or body")
		}
		if err := signed.CheckRecordID("record_id", rec.GetRecordId()); err != nil {
			t.Fatalf("accepted a bad record id: %v", err)
		}
	})
}

// FuzzDefinition: any definition message converts or fails with a field.
func FuzzDefinition(f *testing.F) {
	def := &doorstepv1.ElectionDefinition{ElectionId: "e", Title: "t", CommitteePublicKey: make([]byte, 32),
		Items: []*doorstepv1.Item{{ItemId: "m", Title: "m", Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: 1}}}}}
	b, _ := proto.Marshal(def)
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		p := &doorstepv1.ElectionDefinition{}
		if proto.Unmarshal(data, p) != nil {
			return
		}
		d, err := rules.Definition(p)
		if err != nil {
			var de *election.Error
			if !errors.As(err, &de) || de.Field == "" {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		// A valid definition takes any selections without panicking.
		for _, it := range p.GetItems() {
			d.Marks([]election.Selection{{ItemID: it.GetItemId(), Choice: election.ChoiceYes}})
		}
	})
}
