package device

// Table tests and fuzz targets for the decoders of the device's own stored
// values. They are in the package because the decoders are unexported: the
// file format is not an API.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/ballotlog"
)

func TestChainRoundTrip(t *testing.T) {
	tests := []chainHead{
		{},
		{Seq: 1, Hash: sha256.Sum256([]byte("first"))},
		{Seq: 1<<64 - 1, Hash: sha256.Sum256([]byte("last"))},
	}
	for _, c := range tests {
		got, err := decodeChain(c.encode())
		if err != nil || got != c {
			t.Errorf("decodeChain(encode(%v)) = %v, %v", c, got, err)
		}
	}
	bad := [][]byte{nil, {1, 2, 3}, seqKey(0)[:7], append(seqKey(0), 1), seqKey(5), append(seqKey(5), make([]byte, 31)...)}
	for _, b := range bad {
		if _, err := decodeChain(b); !errors.Is(err, errCorrupt) {
			t.Errorf("decodeChain(%x) = %v; want errCorrupt", b, err)
		}
	}
}

func FuzzDecodeChain(f *testing.F) {
	f.Add(chainHead{}.encode())
	f.Add(chainHead{Seq: 9, Hash: sha256.Sum256(nil)}.encode())
	f.Add([]byte{0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeChain(b)
		if err != nil {
			return
		}
		if !bytes.Equal(c.encode(), b) {
			t.Errorf("decodeChain(%x) = %v, which encodes as %x", b, c, c.encode())
		}
	})
}

func testEnrollment() Enrollment {
	pub := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	return Enrollment{
		Server: "127.0.0.1:7070", ElectionID: "estate-2026", DeviceID: "dv-1",
		ServerKey: pub, Fingerprint: ballotlog.Fingerprint(pub), Label: "楼长",
		JoinedAt: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC),
	}
}

var enrollmentCases = []struct {
	name string
	json string
	ok   bool
}{
	{"good", string(encodeJSON(testEnrollment())), true},
	{"not json", "{", false},
	{"unknown field", `{"server":"a:1","extra":1}`, false},
	{"trailing data", string(encodeJSON(testEnrollment())) + "{}", false},
	{"no server", `{"election_id":"e","device_id":"d","server_public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","fingerprint":"x"}`, false},
	{"short key", `{"server":"a:1","election_id":"e","device_id":"d","server_public_key":"AAAA","fingerprint":"x"}`, false},
	{"device id with space", `{"server":"a:1","election_id":"e","device_id":"d 1","server_public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","fingerprint":"x"}`, false},
}

func TestDecodeEnrollment(t *testing.T) {
	for _, tt := range enrollmentCases {
		t.Run(tt.name, func(t *testing.T) {
			e, err := decodeEnrollment([]byte(tt.json))
			if (err == nil) != tt.ok {
				t.Fatalf("decodeEnrollment: %v; want ok=%v", err, tt.ok)
			}
			if tt.ok && !reflect.DeepEqual(e, testEnrollment()) {
				t.Errorf("decoded %+v; want %+v", e, testEnrollment())
			}
			if !tt.ok && !errors.Is(err, errCorrupt) {
				t.Errorf("error %v does not say the file is damaged", err)
			}
		})
	}
}

func FuzzDecodeEnrollment(f *testing.F) {
	for _, tt := range enrollmentCases {
		f.Add([]byte(tt.json))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnrollment(b)
		if err != nil {
			return
		}
		again, err := decodeEnrollment(encodeJSON(e))
		if err != nil || !reflect.DeepEqual(again, e) {
			t.Errorf("enrollment %+v does not survive a round trip: %+v, %v", e, again, err)
		}
	})
}

var unitStateCases = []struct {
	name string
	json string
	ok   bool
}{
	{"empty", `{}`, true},
	{"ballot", `{"ballots":1,"last_ballot_id":"0190f0a0-0000-7000-8000-000000000001","last_ballot_seq":3}`, true},
	{"visits", `{"visits":2,"last_visit":1}`, true},
	{"ballot without id", `{"ballots":1}`, false},
	{"negative", `{"visits":-1,"last_visit":1}`, false},
	{"unknown outcome", `{"visits":1,"last_visit":9}`, false},
	{"visit count without outcome", `{"visits":1}`, false},
	{"not an object", `[]`, false},
}

func TestDecodeUnitState(t *testing.T) {
	for _, tt := range unitStateCases {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeUnitState([]byte(tt.json)); (err == nil) != tt.ok {
				t.Errorf("decodeUnitState(%s): %v; want ok=%v", tt.json, err, tt.ok)
			}
		})
	}
}

func FuzzDecodeUnitState(f *testing.F) {
	for _, tt := range unitStateCases {
		f.Add([]byte(tt.json))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := decodeUnitState(b)
		if err != nil {
			return
		}
		if again, err := decodeUnitState(encodeJSON(u)); err != nil || again != u {
			t.Errorf("unit state %+v does not survive a round trip: %+v, %v", u, again, err)
		}
	})
}

var syncInfoCases = []struct {
	name string
	json string
	ok   bool
}{
	{"never synced", `{}`, true},
	{"synced", `{"last_sync":"2026-05-01T09:00:00Z","last_attempt":"2026-05-01T09:00:00Z","clock_offset_ms":-1500,"offset_known":true}`, true},
	{"failed", `{"last_attempt":"2026-05-01T09:00:00Z","last_error":"cannot reach the server"}`, true},
	{"offset without measurement", `{"clock_offset_ms":5}`, false},
	{"bad time", `{"last_sync":"yesterday"}`, false},
}

func TestDecodeSyncInfo(t *testing.T) {
	for _, tt := range syncInfoCases {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeSyncInfo([]byte(tt.json)); (err == nil) != tt.ok {
				t.Errorf("decodeSyncInfo(%s): %v; want ok=%v", tt.json, err, tt.ok)
			}
		})
	}
}

func FuzzDecodeSyncInfo(f *testing.F) {
	for _, tt := range syncInfoCases {
		f.Add([]byte(tt.json))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSyncInfo(b)
		if err != nil {
			return
		}
		again, err := decodeSyncInfo(encodeJSON(s))
		if err != nil || !again.LastSync.Equal(s.LastSync) || again.ClockOffsetMS != s.ClockOffsetMS || again.LastError != s.LastError {
			t.Errorf("sync info %+v does not survive a round trip: %+v, %v", s, again, err)
		}
	})
}

var electionStateCases = []struct {
	name string
	json string
	ok   bool
}{
	{"defined", `{"committee_seq":1}`, true},
	{"opened", `{"committee_seq":3,"roster_units":6,"roster_sha256":"` + b64(sha256.Sum256(nil)) + `","opened":true}`, true},
	{"closed", `{"committee_seq":4,"closed_at":"2026-05-02T18:00:00Z"}`, true},
	{"no records", `{"committee_seq":0}`, false},
	{"roster without hash", `{"committee_seq":2,"roster_units":6}`, false},
	{"negative units", `{"committee_seq":2,"roster_units":-6}`, false},
}

func b64(h [32]byte) string {
	return string(bytes.Trim(encodeJSON(h[:]), `"`))
}

func TestDecodeElectionState(t *testing.T) {
	for _, tt := range electionStateCases {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeElectionState([]byte(tt.json)); (err == nil) != tt.ok {
				t.Errorf("decodeElectionState(%s): %v; want ok=%v", tt.json, err, tt.ok)
			}
		})
	}
}

func FuzzDecodeElectionState(f *testing.F) {
	for _, tt := range electionStateCases {
		f.Add([]byte(tt.json))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeElectionState(b)
		if err != nil {
			return
		}
		again, err := decodeElectionState(encodeJSON(s))
		if err != nil || again.CommitteeSeq != s.CommitteeSeq || again.RosterUnits != s.RosterUnits || again.Opened != s.Opened || !bytes.Equal(again.RosterHash, s.RosterHash) {
			t.Errorf("election state %+v does not survive a round trip: %+v, %v", s, again, err)
		}
	})
}
