// Package signedtest makes signed records for tests and benchmarks: an
// Author holds a key and its chain (sequence, previous hash, clock) exactly
// as a device or the committee's machine would, so tests exercise the real
// signing and chaining code paths.
package signedtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// Author makes a chain of signed records.
type Author struct {
	ID       string
	Key      ed25519.PrivateKey
	Election string
	Seq      uint64
	Prev     []byte
	Clock    time.Time // advanced 1 s per record
	rng      *rand.Rand
}

// NewKey returns a deterministic key from seed, so test vectors are stable.
func NewKey(seed string) ed25519.PrivateKey {
	h := sha256.Sum256([]byte(seed))
	return ed25519.NewKeyFromSeed(h[:])
}

// NewAuthor returns an author whose key is derived from seed.
func NewAuthor(election, id, seed string, start time.Time) *Author {
	h := sha256.Sum256([]byte(seed))
	return &Author{ID: id, Key: NewKey(seed), Election: election, Clock: start,
		rng: rand.New(rand.NewPCG(binary.BigEndian.Uint64(h[:8]), 7))}
}

// Public returns the author's public key.
func (a *Author) Public() ed25519.PublicKey { return a.Key.Public().(ed25519.PublicKey) }

// newID makes a UUIDv7 from the author's clock and random source, so runs
// are reproducible.
func (a *Author) newID() string {
	var b [16]byte
	ms := uint64(a.Clock.UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	r1, r2 := a.rng.Uint64(), a.rng.Uint64()
	binary.BigEndian.PutUint16(b[6:], uint16(r1))
	binary.BigEndian.PutUint64(b[8:], r2)
	b[6] = (b[6] & 0x0f) | 0x70
	b[8] = (b[8] & 0x3f) | 0x80
	return uuid.UUID(b).String()
}

// Next wraps a body as the author's next record and signs it.
func (a *Author) Next(t testing.TB, body func(*doorstepv1.Record)) *doorstepv1.SignedRecord {
	if t != nil {
		t.Helper()
	}
	a.Clock = a.Clock.Add(time.Second)
	a.Seq++
	rec := &doorstepv1.Record{
		FormatVersion: signed.FormatVersion,
		RecordId:      a.newID(),
		ElectionId:    a.Election,
		AuthorId:      a.ID,
		AuthorSeq:     a.Seq,
		PrevHash:      a.Prev,
		Hlc:           uint64(a.Clock.UnixMilli()) << 16,
		AuthorTime:    timestamppb.New(a.Clock),
	}
	body(rec)
	sr, err := signed.Sign(a.Key, rec)
	if err != nil {
		if t != nil {
			t.Fatalf("sign: %v", err)
		}
		panic(err)
	}
	h := signed.BodyHash(sr.Body)
	a.Prev = h[:]
	return sr
}

// Ballot makes a signed ballot for unit.
func (a *Author) Ballot(t testing.TB, unit string, supersedes string, sels ...*doorstepv1.Selection) *doorstepv1.SignedRecord {
	return a.Next(t, func(r *doorstepv1.Record) {
		r.Body = &doorstepv1.Record_Ballot{Ballot: &doorstepv1.Ballot{
			UnitId: unit, Selections: sels, SignerKind: doorstepv1.SignerKind_SIGNER_KIND_OWNER, Supersedes: supersedes,
		}}
	})
}

// Visit makes a signed visit record.
func (a *Author) Visit(t testing.TB, unit string, outcome doorstepv1.VisitOutcome) *doorstepv1.SignedRecord {
	return a.Next(t, func(r *doorstepv1.Record) {
		r.Body = &doorstepv1.Record_Visit{Visit: &doorstepv1.Visit{UnitId: unit, Outcome: outcome}}
	})
}

// Committee makes a signed committee action.
func (a *Author) Committee(t testing.TB, act *doorstepv1.CommitteeAction) *doorstepv1.SignedRecord {
	return a.Next(t, func(r *doorstepv1.Record) { r.Body = &doorstepv1.Record_Committee{Committee: act} })
}

// ID returns a record id.
func RecordID(t testing.TB, sr *doorstepv1.SignedRecord) string {
	if t != nil {
		t.Helper()
	}
	rec, err := signed.Decode(sr.Body)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return rec.GetRecordId()
}

// Yes, No and Abstain answer a motion; Pick answers a candidate election.
func Yes(item string) *doorstepv1.Selection {
	return &doorstepv1.Selection{ItemId: item, Choice: doorstepv1.Choice_CHOICE_YES}
}
func No(item string) *doorstepv1.Selection {
	return &doorstepv1.Selection{ItemId: item, Choice: doorstepv1.Choice_CHOICE_NO}
}
func Abstain(item string) *doorstepv1.Selection {
	return &doorstepv1.Selection{ItemId: item, Choice: doorstepv1.Choice_CHOICE_ABSTAIN}
}
func Pick(item string, candidates ...string) *doorstepv1.Selection {
	return &doorstepv1.Selection{ItemId: item, CandidateIds: candidates}
}

// Roster makes the committee's roster action.
func Roster(units []election.Unit) *doorstepv1.CommitteeAction {
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Roster{Roster: &doorstepv1.RosterChunk{Units: rules.UnitsProto(units)}}}
}

// Open makes the committee's open action for a roster.
func Open(units []election.Unit) *doorstepv1.CommitteeAction {
	r, err := election.NewRoster(units)
	if err != nil {
		panic(err)
	}
	h := r.Hash()
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: h[:]}}}
}

// Close makes the committee's close action.
func Close() *doorstepv1.CommitteeAction {
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Close{Close: &doorstepv1.CloseElection{}}}
}

// Token returns a valid enrollment token derived from name, so tests can
// refer to tokens by name.
func Token(name string) string {
	h := sha256.Sum256([]byte("token:" + name))
	tok, err := enrollcode.NewToken(bytes.NewReader(h[:]))
	if err != nil {
		panic(err)
	}
	return tok
}

// Grant makes an enrollment grant for the token Token(name).
func Grant(name, label string) *doorstepv1.CommitteeAction { return GrantToken(Token(name), label) }

// GrantToken makes an enrollment grant for a token.
func GrantToken(token, label string) *doorstepv1.CommitteeAction {
	h, err := enrollcode.TokenHash(token)
	if err != nil {
		panic(err)
	}
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Enrollment{Enrollment: &doorstepv1.EnrollmentGrant{TokenSha256: h, Label: label}}}
}

// Revoke makes a revocation.
func Revoke(device string, after uint64) *doorstepv1.CommitteeAction {
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Revocation{Revocation: &doorstepv1.DeviceRevocation{DeviceId: device, AfterSeq: after, Reason: "test"}}}
}

// SettleUnit counts one ballot (or none) for a contested unit.
func SettleUnit(unit, recordID string) *doorstepv1.CommitteeAction {
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: &doorstepv1.Adjudication{
		Subject: &doorstepv1.Adjudication_Unit{Unit: &doorstepv1.UnitDecision{UnitId: unit, CountedRecordId: recordID}}, Reason: "test"}}}
}

// SettleOwner decides a split owner's headcount vote on a motion.
func SettleOwner(owner, item string, c doorstepv1.Choice) *doorstepv1.CommitteeAction {
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: &doorstepv1.Adjudication{
		Subject: &doorstepv1.Adjudication_Owner{Owner: &doorstepv1.OwnerDecision{OwnerKey: owner, ItemId: item, Choice: c}}, Reason: "test"}}}
}

// Define makes the committee's define_election action.
func Define(def *doorstepv1.ElectionDefinition) *doorstepv1.CommitteeAction {
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_DefineElection{DefineElection: def}}
}

// Definition is the example estate's ballot sheet the tests share: two
// motions (ORDINARY, SPECIAL) and a candidate election of 2 seats among 3,
// contested units held for the committee, syncing until syncDeadline.
func Definition(electionID string, committee ed25519.PublicKey, syncDeadline time.Time) *doorstepv1.ElectionDefinition {
	motion := func(id, title string, th doorstepv1.ThresholdClass) *doorstepv1.Item {
		return &doorstepv1.Item{ItemId: id, Title: title, Kind: &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: th}}}
	}
	return &doorstepv1.ElectionDefinition{
		ElectionId:         electionID,
		Title:              "第四届业主委员会换届选举",
		CommitteePublicKey: committee,
		Items: []*doorstepv1.Item{
			motion("rules", "修订管理规约", doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY),
			motion("fund", "续筹专项维修资金", doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL),
			{ItemId: "board", Title: "选举业主委员会委员", Kind: &doorstepv1.Item_Candidates{Candidates: &doorstepv1.CandidateElection{
				Seats: 2,
				Candidates: []*doorstepv1.Candidate{
					{CandidateId: "c1", Name: "张伟"}, {CandidateId: "c2", Name: "王芳"}, {CandidateId: "c3", Name: "李娜"},
				},
			}}},
		},
		ContestPolicy: doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD,
		SyncDeadline:  timestamppb.New(syncDeadline),
		RulesVersion:  "2009-guidance",
	}
}
