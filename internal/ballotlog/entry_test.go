package ballotlog_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

func enrollmentEntry() *doorstepv1.LogEntry {
	return &doorstepv1.LogEntry{
		Enrollment: &doorstepv1.DeviceEnrollment{
			DeviceId:        "dev-7",
			DevicePublicKey: make([]byte, 32),
			GrantRecordId:   "0190f5a0-0000-7000-8000-0000000000aa",
			Label:           "楼栋3 志愿者",
		},
		ElectionId: "test-estate-2026",
	}
}

func TestEncodeDecodeEntry(t *testing.T) {
	tests := []struct {
		name    string
		entry   *doorstepv1.LogEntry
		wantErr bool
	}{
		{"record", vectorEntry(1), false},
		{"enrollment", enrollmentEntry(), false},
		{"nil", nil, true},
		{"empty", &doorstepv1.LogEntry{ElectionId: "e"}, true},
		{"both", &doorstepv1.LogEntry{
			Record:     vectorEntry(1).Record,
			Enrollment: enrollmentEntry().Enrollment,
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ballotlog.EncodeEntry(tt.entry)
			if tt.wantErr {
				if !errors.Is(err, ballotlog.ErrMalformedEntry) {
					t.Fatalf("EncodeEntry error = %v; want ErrMalformedEntry", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("EncodeEntry: %v", err)
			}
			again, err := ballotlog.EncodeEntry(tt.entry)
			if err != nil || string(again) != string(b) {
				t.Fatalf("EncodeEntry is not deterministic: %x then %x (%v)", b, again, err)
			}
			got, err := ballotlog.DecodeEntry(b)
			if err != nil {
				t.Fatalf("DecodeEntry: %v", err)
			}
			if !proto.Equal(got, tt.entry) {
				t.Errorf("DecodeEntry(EncodeEntry(e)) = %v; want %v", got, tt.entry)
			}
		})
	}
}

// decodeErrorCases are entry bytes DecodeEntry must refuse; they also seed
// the fuzzer.
var decodeErrorCases = []struct {
	name string
	in   []byte
}{
	{"empty", nil},
	{"truncated varint", []byte{0x0a}},
	{"length beyond end", []byte{0x0a, 0x10, 0x00}},
	{"bad wire type", []byte{0x0f}},
	{"invalid utf8 election id", []byte{0x2a, 0x01, 0xff}},
	{"only an election id", []byte{0x2a, 0x01, 'e'}},
	{"garbage", []byte("not a protobuf at all \xff\xff\xff")},
}

func TestDecodeEntryErrors(t *testing.T) {
	for _, tt := range decodeErrorCases {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ballotlog.DecodeEntry(tt.in)
			if !errors.Is(err, ballotlog.ErrMalformedEntry) {
				t.Fatalf("DecodeEntry(%x) = %v, %v; want ErrMalformedEntry", tt.in, e, err)
			}
		})
	}
}

func TestDecodeEntryKeepsUnknownFields(t *testing.T) {
	// A newer server may add fields; an older verifier must still read the
	// entry, and hashing uses the stored bytes, so nothing is lost.
	b, err := ballotlog.EncodeEntry(vectorEntry(1))
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, 0xf8, 0x07, 0x01) // field 127, varint 1
	e, err := ballotlog.DecodeEntry(b)
	if err != nil {
		t.Fatalf("DecodeEntry with an unknown field: %v", err)
	}
	if e.GetElectionId() != "test-estate-2026" {
		t.Errorf("election id = %q; want test-estate-2026", e.GetElectionId())
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for i := 1; i <= 3; i++ {
		b, err := ballotlog.EncodeEntry(vectorEntry(i))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	if b, err := ballotlog.EncodeEntry(enrollmentEntry()); err == nil {
		f.Add(b)
	}
	for _, c := range decodeErrorCases {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ballotlog.DecodeEntry(b)
		if err != nil {
			if !errors.Is(err, ballotlog.ErrMalformedEntry) {
				t.Fatalf("DecodeEntry error %v does not wrap ErrMalformedEntry", err)
			}
			return
		}
		// Whatever decodes must encode, and that encoding decode to the same
		// message: the server can always log what a verifier can read.
		b2, err := ballotlog.EncodeEntry(e)
		if err != nil {
			t.Fatalf("EncodeEntry of a decoded entry: %v", err)
		}
		e2, err := ballotlog.DecodeEntry(b2)
		if err != nil {
			t.Fatalf("DecodeEntry of a re-encoded entry: %v", err)
		}
		if !proto.Equal(e, e2) {
			t.Fatalf("re-encoded entry differs: %v vs %v", e, e2)
		}
	})
}
