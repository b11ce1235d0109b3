package rules_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
)

// view is a rules.View held in maps: what a store or a replay would show.
type view struct {
	def        *election.Definition
	state      rules.State
	closedAt   time.Time
	units      map[string]election.Unit
	grants     map[string]bool
	auditors   map[string]bool // id → revoked
	tally      [32]byte
	tallyKnown bool
	authors    map[string]rules.Author
	chain      map[string]map[uint64]slot // author → seq → its place
}

func (v *view) Definition() *election.Definition { return v.def }
func (v *view) State() rules.State               { return v.state }
func (v *view) ClosedAt() time.Time              { return v.closedAt }
func (v *view) Unit(id string) (election.Unit, bool, error) {
	u, ok := v.units[id]
	return u, ok, nil
}
func (v *view) OwnerOnRoster(k string) (bool, error) {
	for _, u := range v.units {
		if u.OwnerKey == k {
			return true, nil
		}
	}
	return false, nil
}
func (v *view) RosterHash() ([32]byte, int, error) {
	r, err := election.NewRoster(mapValues(v.units))
	if err != nil {
		return [32]byte{}, 0, nil
	}
	return r.Hash(), len(r.Units()), nil
}
func (v *view) GrantTaken(h []byte) (bool, error)  { return v.grants[string(h)], nil }
func (v *view) TallyHash() ([32]byte, bool, error) { return v.tally, v.tallyKnown, nil }
func (v *view) Auditor(id string) (bool, bool, error) {
	revoked, ok := v.auditors[id]
	return ok, revoked, nil
}
func (v *view) Author(id string) (rules.Author, bool, error) {
	a, ok := v.authors[id]
	return a, ok, nil
}
func (v *view) ChainBody(a string, seq uint64) ([32]byte, uint64, bool, error) {
	s, ok := v.chain[a][seq]
	return s.body, s.hlc, ok, nil
}
func (v *view) ChainPrev(a string, seq uint64) ([32]byte, uint64, bool, error) {
	s, ok := v.chain[a][seq]
	return s.prev, s.hlc, ok, nil
}

type slot struct {
	body, prev [32]byte
	hlc        uint64
}

// hlcAt is the hybrid clock value of a time.
func hlcAt(t time.Time) uint64 { return uint64(t.UnixMilli()) << 16 }

func mapValues(m map[string]election.Unit) []election.Unit {
	out := make([]election.Unit, 0, len(m))
	for _, u := range m {
		out = append(out, u)
	}
	return out
}

var (
	opened   = time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	closedAt = opened.Add(8 * time.Hour)
)

func testDefinition() *election.Definition {
	return &election.Definition{
		ID: "e1", Title: "t", CommitteeKey: make(ed25519.PublicKey, 32), Policy: election.PolicyHold,
		SyncDeadline: closedAt.Add(24 * time.Hour), FutureSkew: election.DefaultFutureSkew,
		Items: []election.Item{
			{ID: "rules", Title: "r", Kind: election.KindMotion, Threshold: election.Ordinary},
			{ID: "board", Title: "b", Kind: election.KindCandidates, Seats: 2, Candidates: []election.Candidate{{ID: "c1", Name: "A"}, {ID: "c2", Name: "B"}, {ID: "c3", Name: "C"}}},
		},
	}
}

// newView is an open election with two units, device dv-a holding records
// 1 and 2, and the committee holding its record 1.
func newView() *view {
	return &view{
		def:   testDefinition(),
		state: rules.StateOpen,
		units: map[string]election.Unit{
			"1-1-101": {ID: "1-1-101", Area: 9000, OwnerKey: "o1"},
			"1-1-102": {ID: "1-1-102", Area: 8000, OwnerKey: "o2"},
		},
		grants:   map[string]bool{},
		auditors: map[string]bool{"au-revoked": true, "au-granted": false},
		authors:  map[string]rules.Author{"dv-a": {MaxSeq: 2}, election.CommitteeAuthor: {MaxSeq: 1}},
		chain: map[string]map[uint64]slot{
			"dv-a":                   {1: {body: h("a1"), hlc: hlcAt(opened.Add(time.Minute))}, 2: {body: h("a2"), prev: h("a1"), hlc: hlcAt(opened.Add(2 * time.Minute))}},
			election.CommitteeAuthor: {1: {body: h("c1")}},
		},
	}
}

func h(s string) [32]byte { return sha256.Sum256([]byte(s)) }

func ballotRecord(author string, seq uint64, prev [32]byte, unit string, at time.Time) *doorstepv1.Record {
	r := &doorstepv1.Record{FormatVersion: 1, RecordId: "0190f5a0-0000-7000-8000-000000000001", ElectionId: "e1", AuthorId: author, AuthorSeq: seq,
		Hlc: hlcAt(at), Body: &doorstepv1.Record_Ballot{Ballot: &doorstepv1.Ballot{UnitId: unit}}}
	if seq > 1 {
		r.PrevHash = prev[:]
	}
	return r
}

func TestRecord(t *testing.T) {
	at := opened.Add(time.Hour)
	tests := []struct {
		name   string
		edit   func(v *view)
		rec    *doorstepv1.Record
		body   [32]byte
		at     time.Time
		reason doorstepv1.ReasonCode
		field  string
		flags  []doorstepv1.RecordFlag
	}{
		{"next in the chain", nil, ballotRecord("dv-a", 3, h("a2"), "1-1-101", at), h("a3"), at, 0, "", nil},
		{"a gap is flagged", nil, ballotRecord("dv-a", 5, h("a4"), "1-1-101", at), h("a5"), at, 0, "", []doorstepv1.RecordFlag{doorstepv1.RecordFlag_RECORD_FLAG_CHAIN_GAP}},
		{"future-dated", nil, ballotRecord("dv-a", 3, h("a2"), "1-1-101", at.Add(time.Hour)), h("a3"), at, 0, "", []doorstepv1.RecordFlag{doorstepv1.RecordFlag_RECORD_FLAG_FUTURE_DATED}},
		{"not enrolled", nil, ballotRecord("dv-x", 1, [32]byte{}, "1-1-101", at), h("x1"), at, doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_DEVICE, "author_id", nil},
		{"revoked", func(v *view) { v.authors["dv-a"] = rules.Author{Revoked: true, RevokedAfter: 2, MaxSeq: 2} }, ballotRecord("dv-a", 3, h("a2"), "1-1-101", at), h("a3"), at, doorstepv1.ReasonCode_REASON_CODE_DEVICE_REVOKED, "author_seq", nil},
		{"revoked, record from before", func(v *view) { v.authors["dv-a"] = rules.Author{Revoked: true, RevokedAfter: 5, MaxSeq: 2} }, ballotRecord("dv-a", 3, h("a2"), "1-1-101", at), h("a3"), at, 0, "", nil},
		{"seq taken", nil, ballotRecord("dv-a", 2, h("a1"), "1-1-101", at), h("other"), at, doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK, "author_seq", nil},
		{"wrong predecessor", nil, ballotRecord("dv-a", 3, h("zz"), "1-1-101", at), h("a3"), at, doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK, "prev_hash", nil},
		{"successor names another", func(v *view) {
			v.chain["dv-a"][4] = slot{body: h("a4"), prev: h("not a3")}
			v.authors["dv-a"] = rules.Author{MaxSeq: 4}
		},
			ballotRecord("dv-a", 3, h("a2"), "1-1-101", at), h("a3"), at, doorstepv1.ReasonCode_REASON_CODE_CHAIN_FORK, "author_seq", nil},
		{"unknown unit", nil, ballotRecord("dv-a", 3, h("a2"), "9-9-999", at), h("a3"), at, doorstepv1.ReasonCode_REASON_CODE_UNKNOWN_UNIT, "ballot.unit_id", nil},
		{"not open yet", func(v *view) { v.state = rules.StateDefined }, ballotRecord("dv-a", 3, h("a2"), "1-1-101", at), h("a3"), at, doorstepv1.ReasonCode_REASON_CODE_ELECTION_NOT_OPEN, "received", nil},
		{"made before the close, late", func(v *view) { v.state, v.closedAt = rules.StateClosed, closedAt },
			ballotRecord("dv-a", 3, h("a2"), "1-1-101", closedAt.Add(-time.Minute)), h("a3"), closedAt.Add(time.Hour), 0, "", nil},
		{"made after the close", func(v *view) { v.state, v.closedAt = rules.StateClosed, closedAt },
			ballotRecord("dv-a", 3, h("a2"), "1-1-101", closedAt.Add(time.Minute)), h("a3"), closedAt.Add(time.Hour), doorstepv1.ReasonCode_REASON_CODE_ELECTION_CLOSED, "hlc", nil},
		{"after the sync deadline", func(v *view) { v.state, v.closedAt = rules.StateClosed, closedAt },
			ballotRecord("dv-a", 3, h("a2"), "1-1-101", closedAt.Add(-time.Minute)), h("a3"), closedAt.Add(25 * time.Hour), doorstepv1.ReasonCode_REASON_CODE_AFTER_SYNC_DEADLINE, "received", nil},
		{"clock back along the chain", nil, ballotRecord("dv-a", 3, h("a2"), "1-1-101", opened.Add(time.Minute)), h("a3"), at, doorstepv1.ReasonCode_REASON_CODE_CLOCK, "hlc", nil},
		{"clock past its successor", func(v *view) {
			v.chain["dv-a"][4] = slot{body: h("a4"), prev: h("a3"), hlc: hlcAt(opened.Add(3 * time.Minute))}
			v.authors["dv-a"] = rules.Author{MaxSeq: 4}
		}, ballotRecord("dv-a", 3, h("a2"), "1-1-101", opened.Add(4*time.Minute)), h("a3"), at, doorstepv1.ReasonCode_REASON_CODE_CLOCK, "hlc", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView()
			if tt.edit != nil {
				tt.edit(v)
			}
			vd, err := rules.Record(v, tt.rec, rules.Form{}, tt.body, rules.Arrival{Received: tt.at, OffsetKnown: true})
			if err != nil {
				t.Fatal(err)
			}
			if vd.Reason != tt.reason || vd.Field != tt.field {
				t.Fatalf("got %v naming %q (%s); want %v naming %q", vd.Reason, vd.Field, vd.Message, tt.reason, tt.field)
			}
			if !vd.Accepted() && vd.Message == "" {
				t.Errorf("a rejection with no message")
			}
			if len(vd.Flags) != len(tt.flags) || len(vd.Notes) != len(vd.Flags) {
				t.Fatalf("flags %v notes %q; want %v, one note each", vd.Flags, vd.Notes, tt.flags)
			}
			for i := range tt.flags {
				if vd.Flags[i] != tt.flags[i] {
					t.Errorf("flags %v; want %v", vd.Flags, tt.flags)
				}
			}
		})
	}
}

func committeeRecord(act *doorstepv1.CommitteeAction) *doorstepv1.Record {
	return &doorstepv1.Record{FormatVersion: 1, RecordId: "0190f5a0-0000-7000-8000-000000000002", ElectionId: "e1", AuthorId: election.CommitteeAuthor,
		AuthorSeq: 2, PrevHash: func() []byte { x := h("c1"); return x[:] }(), Body: &doorstepv1.Record_Committee{Committee: act}}
}

func certify(hash [32]byte) *doorstepv1.CommitteeAction {
	return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Certify{Certify: &doorstepv1.CertifyResult{TallySha256: hash[:]}}}
}

// TestCertify: the result is certified only after the close, the sync
// deadline and the objection period, and only for the tally as it is.
func TestCertify(t *testing.T) {
	tests := []struct {
		name   string
		at     time.Time
		hash   [32]byte
		known  bool
		reason doorstepv1.ReasonCode
		words  string
	}{
		{"after the deadline, the tally as shown", closedAt.Add(25 * time.Hour), h("tally"), true, 0, ""},
		{"before the sync deadline", closedAt.Add(time.Hour), h("tally"), true, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "objection period"},
		{"the tally changed since", closedAt.Add(25 * time.Hour), h("another tally"), true, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "has changed"},
		{"the verifier cannot tell the tally yet", closedAt.Add(25 * time.Hour), h("another tally"), false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView()
			v.state, v.closedAt = rules.StateClosed, closedAt
			v.tally, v.tallyKnown = h("tally"), tt.known
			vd, err := rules.Committee(v, certify(tt.hash), 3, tt.at)
			if err != nil {
				t.Fatal(err)
			}
			if vd.Reason != tt.reason || !strings.Contains(vd.Message, tt.words) {
				t.Fatalf("got %v %q; want %v with %q", vd.Reason, vd.Message, tt.reason, tt.words)
			}
		})
	}
	def := testDefinition()
	def.ObjectionPeriod = 7 * 24 * time.Hour
	if got, want := rules.ObjectionEnds(def, closedAt), closedAt.Add(7*24*time.Hour); !got.Equal(want) {
		t.Errorf("objection ends %v; want the close plus the period, %v", got, want)
	}
}

func TestCommittee(t *testing.T) {
	v := newView()
	units := mapValues(v.units)
	roster, _ := election.NewRoster(units)
	rh := roster.Hash()
	owner := func(item string, choice doorstepv1.Choice, picks ...string) *doorstepv1.CommitteeAction {
		return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: &doorstepv1.Adjudication{
			Subject: &doorstepv1.Adjudication_Owner{Owner: &doorstepv1.OwnerDecision{OwnerKey: "o1", ItemId: item, Choice: choice, CandidateIds: picks}}}}}
	}
	unit := func(id, counted string) *doorstepv1.CommitteeAction {
		return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Adjudication{Adjudication: &doorstepv1.Adjudication{
			Subject: &doorstepv1.Adjudication_Unit{Unit: &doorstepv1.UnitDecision{UnitId: id, CountedRecordId: counted}}}}}
	}
	tests := []struct {
		name   string
		state  rules.State
		act    *doorstepv1.CommitteeAction
		reason doorstepv1.ReasonCode
		words  string
	}{
		{"roster chunk", rules.StateDefined, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Roster{Roster: &doorstepv1.RosterChunk{Units: []*doorstepv1.Unit{{UnitId: "2-1-101", AreaCentiM2: 5000, OwnerKey: "o3"}}}}}, 0, ""},
		{"roster after open", rules.StateOpen, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Roster{Roster: &doorstepv1.RosterChunk{Units: []*doorstepv1.Unit{{UnitId: "2-1-101", AreaCentiM2: 5000, OwnerKey: "o3"}}}}}, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "frozen"},
		{"unit already on the roster", rules.StateDefined, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Roster{Roster: &doorstepv1.RosterChunk{Units: []*doorstepv1.Unit{{UnitId: "1-1-101", AreaCentiM2: 5000, OwnerKey: "o3"}}}}}, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "already on the roster"},
		{"open", rules.StateDefined, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: rh[:]}}}, 0, ""},
		{"open another roster", rules.StateDefined, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: make([]byte, 32)}}}, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "roster records add up to"},
		{"open twice", rules.StateOpen, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Open{Open: &doorstepv1.OpenElection{RosterSha256: rh[:]}}}, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "already open"},
		{"close", rules.StateOpen, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Close{Close: &doorstepv1.CloseElection{}}}, 0, ""},
		{"close before open", rules.StateDefined, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Close{Close: &doorstepv1.CloseElection{}}}, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "only an open election"},
		{"revoke unknown device", rules.StateOpen, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Revocation{Revocation: &doorstepv1.DeviceRevocation{DeviceId: "dv-x"}}}, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "not enrolled"},
		{"revoke the committee", rules.StateOpen, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Revocation{Revocation: &doorstepv1.DeviceRevocation{DeviceId: election.CommitteeAuthor}}}, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "cannot be revoked"},
		{"grant", rules.StateOpen, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Enrollment{Enrollment: &doorstepv1.EnrollmentGrant{TokenSha256: make([]byte, 32)}}}, 0, ""},
		{"grant with a short hash", rules.StateOpen, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Enrollment{Enrollment: &doorstepv1.EnrollmentGrant{TokenSha256: []byte{1}}}}, doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "SHA-256"},
		{"settle a unit", rules.StateOpen, unit("1-1-101", ""), 0, ""},
		{"settle an unknown unit", rules.StateOpen, unit("9-9-999", ""), doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "not on the roster"},
		{"settle with a bad record id", rules.StateOpen, unit("1-1-101", "yesterday"), doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "counted_record_id"},
		{"settle before open", rules.StateDefined, unit("1-1-101", ""), doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "before the election opens"},
		{"settle an owner", rules.StateOpen, owner("rules", doorstepv1.Choice_CHOICE_YES), 0, ""},
		{"settle an owner with two picks", rules.StateOpen, owner("board", 0, "c1", "c2"), 0, ""},
		{"settle an owner with too many picks", rules.StateOpen, owner("board", 0, "c1", "c2", "c3"), doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION, `item "board": the settlement picks 3 candidates for 2 seats`},
		{"settle an owner with an unknown candidate", rules.StateOpen, owner("board", 0, "c9"), doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION, `unknown candidate "c9"`},
		{"settle an owner on an unknown item", rules.StateOpen, owner("nothing", doorstepv1.Choice_CHOICE_YES), doorstepv1.ReasonCode_REASON_CODE_INVALID_SELECTION, "unknown item"},
		{"certify while open", rules.StateOpen, certify(h("tally")), doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "only a closed election"},
		{"settle after the certification", rules.StateCertified, unit("1-1-101", ""), doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "certified"},
		{"certify twice", rules.StateCertified, certify(h("tally")), doorstepv1.ReasonCode_REASON_CODE_INVALID_ACTION, "certified"},
		{"revoke a device after the certification", rules.StateCertified, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Revocation{Revocation: &doorstepv1.DeviceRevocation{DeviceId: "dv-a"}}}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newView()
			v.state = tt.state
			vd, err := rules.Committee(v, tt.act, 2, opened)
			if err != nil {
				t.Fatal(err)
			}
			if vd.Reason != tt.reason || !strings.Contains(vd.Message, tt.words) {
				t.Fatalf("got %v %q; want %v with %q", vd.Reason, vd.Message, tt.reason, tt.words)
			}
		})
	}
}

// FuzzCheckForm: any record decoded from bytes gets a form verdict, never
// a panic; an accepted ballot has one mark per item.
func FuzzCheckForm(f *testing.F) {
	for _, r := range []*doorstepv1.Record{
		ballotRecord("dv-a", 3, h("a2"), "1-1-101", opened),
		committeeRecord(&doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_Close{Close: &doorstepv1.CloseElection{}}}),
		{AuthorId: "dv-a", Body: &doorstepv1.Record_Visit{Visit: &doorstepv1.Visit{UnitId: "1-1-101", Outcome: doorstepv1.VisitOutcome_VISIT_OUTCOME_REFUSED}}},
		{AuthorId: "dv-a", Body: &doorstepv1.Record_Ballot{Ballot: &doorstepv1.Ballot{UnitId: "1", Selections: []*doorstepv1.Selection{{ItemId: "board", CandidateIds: []string{"c1", "c2", "c3"}}}}}},
	} {
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, false)
	}
	def := testDefinition()
	f.Fuzz(func(t *testing.T, data []byte, viaCommittee bool) {
		rec := &doorstepv1.Record{}
		if proto.Unmarshal(data, rec) != nil {
			return
		}
		form, vd := rules.CheckForm(def, rec, viaCommittee)
		if !vd.Accepted() {
			if vd.Message == "" {
				t.Fatalf("rejected as %v with no message", vd.Reason)
			}
			return
		}
		if rec.GetBallot() != nil && len(form.Marks) != len(def.Items) {
			t.Fatalf("%d marks for %d items", len(form.Marks), len(def.Items))
		}
	})
}

// TestLateBallots: after the close, a ballot claiming a time before it is
// counted when the device's clock, as measured at its push, agrees, and is
// held for the committee when it does not or when nothing was measured.
func TestLateBallots(t *testing.T) {
	v := newView()
	v.state, v.closedAt = rules.StateClosed, closedAt
	late := closedAt.Add(3 * time.Hour) // the device syncs in the evening
	tests := []struct {
		name   string
		made   time.Time // by the device's clock
		offset time.Duration
		known  bool
		held   bool
	}{
		{"an honest clock", closedAt.Add(-10 * time.Minute), 0, true, false},
		{"a slow clock, measured", closedAt.Add(-20 * time.Minute), 15 * time.Minute, true, false},
		{"a clock set back ten minutes", closedAt.Add(-5 * time.Minute), 10 * time.Minute, true, true},
		{"within the tolerance", closedAt.Add(-time.Minute), 2 * time.Minute, true, false},
		{"no offset measured", closedAt.Add(-10 * time.Minute), 0, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vd, err := rules.Record(v, ballotRecord("dv-a", 3, h("a2"), "1-1-101", tt.made), rules.Form{}, h("a3"),
				rules.Arrival{Received: late, DeviceOffset: tt.offset, OffsetKnown: tt.known})
			if err != nil || !vd.Accepted() {
				t.Fatalf("got %v %v; want accepted", vd, err)
			}
			if vd.Held() != tt.held {
				t.Errorf("held %v (%v: %q); want %v", vd.Held(), vd.Flags, vd.Notes, tt.held)
			}
		})
	}
}
