package tally_test

import (
	"bytes"
	"encoding"
	"errors"
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

type binaryValue interface {
	encoding.BinaryMarshaler
	encoding.BinaryUnmarshaler
}

// roundTrip marshals v, unmarshals into into, and checks that into
// marshals to the same bytes.
func roundTrip(t testing.TB, v, into binaryValue) []byte {
	t.Helper()
	b, err := v.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary: %v", err)
	}
	if err := into.UnmarshalBinary(b); err != nil {
		t.Fatalf("UnmarshalBinary: %v", err)
	}
	again, err := into.MarshalBinary()
	if err != nil {
		t.Fatalf("MarshalBinary after UnmarshalBinary: %v", err)
	}
	if !bytes.Equal(b, again) {
		t.Fatalf("round trip changed the bytes:\n%x\n%x", b, again)
	}
	return b
}

func codecSamples() map[string]func() (binaryValue, binaryValue) {
	def := twoItemDef()
	marks := election.Marks{mk(election.MarkYes), mk(election.MarkPicks, 0, 2)}
	return map[string]func() (binaryValue, binaryValue){
		"ballot": func() (binaryValue, binaryValue) {
			return &tally.Ballot{RecordID: "0190f1e2-3c4d-7e5f-8a6b-7c8d9e0f1a2b", DeviceID: "dev-1", HLC: 1 << 50, Supersedes: "0190f1e2-0000-7e5f-8a6b-7c8d9e0f1a2b", Marks: marks}, &tally.Ballot{}
		},
		"outcome": func() (binaryValue, binaryValue) {
			return &tally.UnitOutcome{Counted: true, Marks: marks, CountedID: "b", Live: []string{"a", "b"}, Contested: true, Adjudicated: true}, &tally.UnitOutcome{}
		},
		"owner": func() (binaryValue, binaryValue) {
			o := tally.NewOwnerState(def)
			o.AddUnit(100, marks)
			o.AddUnit(7, election.Marks{mk(election.MarkNo), mk(election.MarkInvalid)})
			o.SetDecision(tally.OwnerDecision{Seq: 4, Item: 0, Mark: mk(election.MarkNo)})
			return o, &tally.OwnerState{}
		},
		"totals": func() (binaryValue, binaryValue) {
			tt := tally.NewTotals(def)
			tt.SetRosterUnits(12)
			tt.Add(tally.Contribution{Items: []tally.ItemContribution{{Participating: c(5, 1), Held: 1}, {Support: []tally.CandidateSupport{{2, c(3, 1)}}}}})
			tt.Sub(tally.Contribution{Items: []tally.ItemContribution{{No: c(4, 1)}}}) // negative counts survive too
			tt.ApplyUnit(tally.UnitOutcome{}, tally.UnitOutcome{Counted: true, Double: true})
			return tt, &tally.Totals{}
		},
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	for name, sample := range codecSamples() {
		t.Run(name, func(t *testing.T) {
			v, into := sample()
			b := roundTrip(t, v, into)
			// Every strict prefix is truncated and every extension has
			// trailing bytes: all must fail as corrupt, never panic.
			for i := range len(b) {
				if err := into.UnmarshalBinary(b[:i]); !errors.Is(err, tally.ErrCorrupt) {
					t.Errorf("UnmarshalBinary of %d of %d bytes: %v, want ErrCorrupt", i, len(b), err)
				}
			}
			if err := into.UnmarshalBinary(append(b, 0)); !errors.Is(err, tally.ErrCorrupt) {
				t.Errorf("UnmarshalBinary with a trailing byte: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestBinaryRejects(t *testing.T) {
	ballot := func(b []byte) error { var v tally.Ballot; return v.UnmarshalBinary(b) }
	outcome := func(b []byte) error { var v tally.UnitOutcome; return v.UnmarshalBinary(b) }
	owner := func(b []byte) error { var v tally.OwnerState; return v.UnmarshalBinary(b) }
	totals := func(b []byte) error { var v tally.Totals; return v.UnmarshalBinary(b) }
	tests := []struct {
		name   string
		decode func([]byte) error
		data   []byte
		why    string
	}{
		{"empty", ballot, nil, "truncated"},
		{"wrong tag", ballot, []byte{0x21, 0, 0, 0, 0, 0}, "tag 0x21"},
		{"non-minimal varint", ballot, []byte{0x11, 0x80, 0x00, 0, 0, 0, 0}, "non-minimal"},
		{"id too long", ballot, append([]byte{0x11, 65}, make([]byte, 65)...), "id of 65 bytes"},
		{"unknown mark kind", ballot, []byte{0x11, 0, 0, 0, 0, 1, 9}, "unknown mark kind"},
		{"picks out of order", ballot, []byte{0x11, 0, 0, 0, 0, 1, 4, 2, 3, 1}, "ascending"},
		{"empty picks", ballot, []byte{0x11, 0, 0, 0, 0, 1, 4, 0}, "1 to 256 picks"},
		{"unknown outcome flag", outcome, []byte{0x21, 0x10, 0, 0, 0}, "unknown flags"},
		{"huge list", outcome, []byte{0x21, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "longer than"},
		{"owner marks out of order", owner, []byte{0x31, 1, 0, 2, 2, 1, 2, 1, 1, 2}, "out of order"},
		{"owner mark with no units", owner, []byte{0x31, 1, 0, 1, 1, 0, 2}, "0 units"},
		{"owner bad decision flag", owner, []byte{0x31, 1, 7, 0}, "decision flag"},
		{"too many items", totals, append([]byte{0x41, 0, 0, 0, 0, 65}, make([]byte, 65*12)...), "65 items"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.data)
			if !errors.Is(err, tally.ErrCorrupt) || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("decode %x: %v, want ErrCorrupt saying %q", tt.data, err, tt.why)
			}
		})
	}
}

func TestMarshalRejectsWhatCannotDecode(t *testing.T) {
	tests := []struct {
		name string
		v    encoding.BinaryMarshaler
	}{
		{"long record id", &tally.Ballot{RecordID: strings.Repeat("x", election.MaxIDLen+1)}},
		{"picks on a yes", &tally.Ballot{Marks: election.Marks{{Kind: election.MarkYes, Picks: []uint16{1}}}}},
		{"unsorted picks", &tally.UnitOutcome{Marks: election.Marks{mk(election.MarkPicks, 3, 1)}}},
		{"empty picks", &tally.UnitOutcome{Marks: election.Marks{mk(election.MarkPicks)}}},
		{"unknown kind", &tally.Ballot{Marks: election.Marks{{Kind: 200}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := tt.v.MarshalBinary(); err == nil {
				t.Errorf("MarshalBinary = %x, want an error", b)
			}
		})
	}
}

// fuzzDecode checks that decoding arbitrary bytes never panics and that
// whatever decodes re-encodes to the same bytes.
func fuzzDecode(f *testing.F, name string, fresh func() binaryValue) {
	for n, sample := range codecSamples() {
		v, _ := sample()
		if b, err := v.MarshalBinary(); err == nil {
			f.Add(b)
			if n == name {
				f.Add(b[:len(b)/2])
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := fresh()
		if err := v.UnmarshalBinary(data); err != nil {
			if !errors.Is(err, tally.ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		again, err := v.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded %x but cannot re-encode: %v", data, err)
		}
		if !bytes.Equal(again, data) {
			t.Fatalf("decoded %x re-encodes as %x", data, again)
		}
	})
}

func FuzzBallotUnmarshal(f *testing.F) {
	fuzzDecode(f, "ballot", func() binaryValue { return &tally.Ballot{} })
}

func FuzzUnitOutcomeUnmarshal(f *testing.F) {
	fuzzDecode(f, "outcome", func() binaryValue { return &tally.UnitOutcome{} })
}

func FuzzOwnerStateUnmarshal(f *testing.F) {
	fuzzDecode(f, "owner", func() binaryValue { return &tally.OwnerState{} })
}

func FuzzTotalsUnmarshal(f *testing.F) {
	fuzzDecode(f, "totals", func() binaryValue { return &tally.Totals{} })
}
