package rules_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
)

// TestDeviceID uses the device keys and ids of the record-v1 test vectors
// (api/testdata/record-v1/manifest.json).
func TestDeviceID(t *testing.T) {
	tests := []struct{ pub, want string }{
		{"KGRpDB7ZeoVDASTxxj9m3/so6inzMQcIttHRrWcUrdo=", "dv-675a72e4fe13e6c8"},
		{"OWk7umFgBXekQKH2PexTS9cdazjrqTadmElhTWJ8Iwg=", "dv-fb72849e4d595c23"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			pub, err := base64.StdEncoding.DecodeString(tt.pub)
			if err != nil || len(pub) != ed25519.PublicKeySize {
				t.Fatalf("bad vector key %q: %v", tt.pub, err)
			}
			if got := rules.DeviceID(pub); got != tt.want {
				t.Errorf("DeviceID = %q; want %q", got, tt.want)
			}
			if err := election.CheckID("author_id", rules.DeviceID(pub)); err != nil {
				t.Errorf("a device id is not a valid author id: %v", err)
			}
		})
	}
}

// TestTakesChainSlot holds the list of api/SPEC.md section 8 against every
// reason code the API defines.
func TestTakesChainSlot(t *testing.T) {
	spec := map[string]bool{
		"REASON_CODE_UNKNOWN_UNIT": true, "REASON_CODE_INVALID_SELECTION": true,
		"REASON_CODE_ELECTION_NOT_OPEN": true, "REASON_CODE_ELECTION_CLOSED": true,
		"REASON_CODE_AFTER_SYNC_DEADLINE": true, "REASON_CODE_INVALID_ACTION": true,
		"REASON_CODE_MALFORMED": true, "REASON_CODE_CLOCK": true,
	}
	seen := 0
	for v, name := range doorstepv1.ReasonCode_name {
		if got := rules.TakesChainSlot(doorstepv1.ReasonCode(v)); got != spec[name] {
			t.Errorf("TakesChainSlot(%s) = %v; want %v", name, got, spec[name])
		}
		if spec[name] {
			seen++
		}
	}
	if seen != len(spec) {
		t.Errorf("the API defines %d of the %d reasons the SPEC lists", seen, len(spec))
	}
	if rules.TakesChainSlot(doorstepv1.ReasonCode(999)) {
		t.Error("an unknown reason takes a chain slot")
	}
}

const recordID = "01890a5d-ac96-774b-bcce-b302099a8057" // a UUIDv7

func goodBallot() *doorstepv1.Ballot {
	return &doorstepv1.Ballot{UnitId: "3-2-501", SignerKind: doorstepv1.SignerKind_SIGNER_KIND_OWNER, SignerName: "王芳", Comment: "电梯该修了"}
}

var ballotCases = []struct {
	name      string
	edit      func(b *doorstepv1.Ballot)
	wantField string // "" for a valid ballot
}{
	{"valid", func(*doorstepv1.Ballot) {}, ""},
	{"valid revision", func(b *doorstepv1.Ballot) { b.Supersedes = recordID }, ""},
	{"valid proxy", func(b *doorstepv1.Ballot) {
		b.SignerKind, b.ProxyReference = doorstepv1.SignerKind_SIGNER_KIND_PROXY, "委托书 17"
	}, ""},
	{"no unit", func(b *doorstepv1.Ballot) { b.UnitId = "" }, "ballot.unit_id"},
	{"unit with a space", func(b *doorstepv1.Ballot) { b.UnitId = "3 501" }, "ballot.unit_id"},
	{"supersedes not a UUID", func(b *doorstepv1.Ballot) { b.Supersedes = "yesterday's" }, "ballot.supersedes"},
	{"supersedes upper case", func(b *doorstepv1.Ballot) { b.Supersedes = strings.ToUpper(recordID) }, "ballot.supersedes"},
	{"unknown signer", func(b *doorstepv1.Ballot) { b.SignerKind = 42 }, "ballot.signer_kind"},
	{"proxy without a document", func(b *doorstepv1.Ballot) { b.SignerKind = doorstepv1.SignerKind_SIGNER_KIND_PROXY }, "ballot.proxy_reference"},
	{"long proxy reference", func(b *doorstepv1.Ballot) { b.ProxyReference = strings.Repeat("x", election.MaxTitleLen+1) }, "ballot.proxy_reference"},
	{"long signer name", func(b *doorstepv1.Ballot) { b.SignerName = strings.Repeat("x", election.MaxTitleLen+1) }, "ballot.signer_name"},
	{"control character in the name", func(b *doorstepv1.Ballot) { b.SignerName = "a\x00b" }, "ballot.signer_name"},
	{"long comment", func(b *doorstepv1.Ballot) { b.Comment = strings.Repeat("x", election.MaxTextLen+1) }, "ballot.comment"},
}

func TestCheckBallot(t *testing.T) {
	for _, tt := range ballotCases {
		t.Run(tt.name, func(t *testing.T) {
			b := goodBallot()
			tt.edit(b)
			checkFieldErr(t, rules.CheckBallot(b), tt.wantField)
		})
	}
}

func goodVisit() *doorstepv1.Visit {
	return &doorstepv1.Visit{UnitId: "3-2-501", Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME, Note: "邻居说周末在家"}
}

var visitCases = []struct {
	name      string
	edit      func(v *doorstepv1.Visit)
	wantField string
}{
	{"valid", func(*doorstepv1.Visit) {}, ""},
	{"moved, no note", func(v *doorstepv1.Visit) { v.Outcome, v.Note = doorstepv1.VisitOutcome_VISIT_OUTCOME_MOVED, "" }, ""},
	{"no unit", func(v *doorstepv1.Visit) { v.UnitId = "" }, "visit.unit_id"},
	{"no outcome", func(v *doorstepv1.Visit) { v.Outcome = doorstepv1.VisitOutcome_VISIT_OUTCOME_UNSPECIFIED }, "visit.outcome"},
	{"unknown outcome", func(v *doorstepv1.Visit) { v.Outcome = 99 }, "visit.outcome"},
	{"long note", func(v *doorstepv1.Visit) { v.Note = strings.Repeat("x", election.MaxTextLen+1) }, "visit.note"},
}

func TestCheckVisit(t *testing.T) {
	for _, tt := range visitCases {
		t.Run(tt.name, func(t *testing.T) {
			v := goodVisit()
			tt.edit(v)
			checkFieldErr(t, rules.CheckVisit(v), tt.wantField)
		})
	}
}

// checkFieldErr fails unless err is nil when wantField is "", or a domain
// error naming wantField otherwise.
func checkFieldErr(t *testing.T, err error, wantField string) {
	t.Helper()
	if wantField == "" {
		if err != nil {
			t.Errorf("got %v; want no error", err)
		}
		return
	}
	var de *election.Error
	if !errors.As(err, &de) {
		t.Fatalf("got %v; want an *election.Error for %s", err, wantField)
	}
	if de.Field != wantField {
		t.Errorf("error names field %q (%v); want %q", de.Field, err, wantField)
	}
}

// FuzzCheckBallot: any ballot message passes or fails with a domain error
// naming a ballot field, never a panic; one that passes names a unit and,
// if a proxy signed it, the proxy document.
func FuzzCheckBallot(f *testing.F) {
	for _, tt := range ballotCases {
		b := goodBallot()
		tt.edit(b)
		data, err := proto.Marshal(b)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		b := &doorstepv1.Ballot{}
		if proto.Unmarshal(data, b) != nil {
			return
		}
		err := rules.CheckBallot(b)
		if err != nil {
			var de *election.Error
			if !errors.As(err, &de) || !strings.HasPrefix(de.Field, "ballot.") {
				t.Fatalf("error without a ballot field: %v", err)
			}
			return
		}
		if election.CheckID("unit", b.GetUnitId()) != nil {
			t.Fatalf("accepted unit id %q", b.GetUnitId())
		}
		if b.GetSignerKind() == doorstepv1.SignerKind_SIGNER_KIND_PROXY && b.GetProxyReference() == "" {
			t.Fatal("accepted a proxy's ballot without the proxy document")
		}
	})
}

// FuzzCheckVisit: any visit message passes or fails with a domain error
// naming a visit field; one that passes has a known outcome.
func FuzzCheckVisit(f *testing.F) {
	for _, tt := range visitCases {
		v := goodVisit()
		tt.edit(v)
		data, err := proto.Marshal(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := &doorstepv1.Visit{}
		if proto.Unmarshal(data, v) != nil {
			return
		}
		err := rules.CheckVisit(v)
		if err != nil {
			var de *election.Error
			if !errors.As(err, &de) || !strings.HasPrefix(de.Field, "visit.") {
				t.Fatalf("error without a visit field: %v", err)
			}
			return
		}
		if _, ok := doorstepv1.VisitOutcome_name[int32(v.GetOutcome())]; !ok || v.GetOutcome() == doorstepv1.VisitOutcome_VISIT_OUTCOME_UNSPECIFIED {
			t.Fatalf("accepted outcome %v", v.GetOutcome())
		}
	})
}
