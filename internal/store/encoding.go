package store

import (
	"encoding/binary"
	"errors"

	"github.com/doorstep-vote/doorstep/internal/tally"
)

func putU64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func putI64(v int64) []byte { return putU64(uint64(v)) }
func getI64(b []byte) int64 { return int64(getU64(b)) }

// join builds a composite key a ‖ 0 ‖ b. Ids never contain NUL (election
// validation forbids control characters), so prefixes are unambiguous.
func join(a string, b []byte) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, 0)
	return append(k, b...)
}

func chainKey(author string, seq uint64) []byte {
	return join(author, binary.BigEndian.AppendUint64(nil, seq))
}

// device is what the store keeps per enrolled device.
type device struct {
	pub          []byte // ed25519 public key
	revoked      bool
	revokedAfter uint64 // records with seq above this are rejected
	contiguous   uint64 // highest seq with 1..seq all held
	contigHash   []byte // body hash of record `contiguous`
	contigHLC    uint64 // hybrid clock of record `contiguous`
	maxSeq       uint64 // highest seq held
	label        string
}

// deviceFixed is the size of a device value before its label.
const deviceFixed = 32 + 1 + 8 + 8 + 32 + 8 + 8

func (d *device) encode() []byte {
	b := make([]byte, 0, deviceFixed+len(d.label))
	b = append(b, d.pub...)
	if d.revoked {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.BigEndian.AppendUint64(b, d.revokedAfter)
	b = binary.BigEndian.AppendUint64(b, d.contiguous)
	h := make([]byte, 32)
	copy(h, d.contigHash)
	b = append(b, h...)
	b = binary.BigEndian.AppendUint64(b, d.maxSeq)
	b = binary.BigEndian.AppendUint64(b, d.contigHLC)
	return append(b, d.label...)
}

var errCorrupt = errors.New("store: corrupt value")

func decodeDevice(b []byte) (*device, error) {
	if len(b) < deviceFixed {
		return nil, errCorrupt
	}
	d := &device{pub: append([]byte(nil), b[:32]...), revoked: b[32] == 1}
	b = b[33:]
	d.revokedAfter = binary.BigEndian.Uint64(b)
	d.contiguous = binary.BigEndian.Uint64(b[8:])
	d.contigHash = append([]byte(nil), b[16:48]...)
	d.maxSeq = binary.BigEndian.Uint64(b[48:])
	d.contigHLC = binary.BigEndian.Uint64(b[56:])
	d.label = string(b[64:])
	if d.contiguous == 0 {
		d.contigHash = nil
	}
	return d, nil
}

// chainValue is a record's place in its author's chain: its body hash,
// the hash it names as its predecessor's, and its hybrid clock.
func chainValue(body [32]byte, prev []byte, hlc uint64) []byte {
	v := make([]byte, 72)
	copy(v, body[:])
	copy(v[32:], prev)
	binary.BigEndian.PutUint64(v[64:], hlc)
	return v
}

// chainHLC is the hybrid clock a chain value holds; 0 for values written
// before schema 4, which did not keep it.
func chainHLC(v []byte) uint64 {
	if len(v) < 72 {
		return 0
	}
	return binary.BigEndian.Uint64(v[64:])
}

// progress is what canvassers see of a unit.
type progress struct {
	state     uint8 // doorstepv1.UnitProgress
	lastVisit uint8 // doorstepv1.VisitOutcome
	visits    uint32
	change    uint64
}

func (p progress) encode() []byte {
	b := []byte{p.state, p.lastVisit}
	b = binary.BigEndian.AppendUint32(b, p.visits)
	return binary.BigEndian.AppendUint64(b, p.change)
}

func decodeProgress(b []byte) progress {
	if len(b) != 14 {
		return progress{}
	}
	return progress{state: b[0], lastVisit: b[1], visits: binary.BigEndian.Uint32(b[2:]), change: binary.BigEndian.Uint64(b[6:])}
}

// auditor is what the store keeps per auditor the committee granted.
type auditor struct {
	pub     []byte
	revoked bool
	label   string
}

func (a *auditor) encode() []byte {
	b := append([]byte(nil), a.pub...)
	if a.revoked {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return append(b, a.label...)
}

func decodeAuditor(b []byte) (*auditor, error) {
	if len(b) < 33 {
		return nil, errCorrupt
	}
	return &auditor{pub: append([]byte(nil), b[:32]...), revoked: b[32] == 1, label: string(b[33:])}, nil
}

// turnout is one building's counters, kept as ballots change outcomes.
type turnout struct {
	units, counted, held uint64
	area, areaCounted    int64
}

// apply moves the counters of a unit of area from its old outcome to its
// new one.
func (t *turnout) apply(area int64, before, after tally.UnitOutcome) {
	if before.Counted != after.Counted {
		if after.Counted {
			t.counted++
			t.areaCounted += area
		} else {
			t.counted--
			t.areaCounted -= area
		}
	}
	if before.Held() != after.Held() {
		if after.Held() {
			t.held++
		} else {
			t.held--
		}
	}
}

func (t *turnout) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, t.units)
	b = binary.BigEndian.AppendUint64(b, uint64(t.area))
	b = binary.BigEndian.AppendUint64(b, t.counted)
	b = binary.BigEndian.AppendUint64(b, uint64(t.areaCounted))
	return binary.BigEndian.AppendUint64(b, t.held)
}

func decodeTurnout(b []byte) (turnout, error) {
	if len(b) != 40 {
		return turnout{}, errCorrupt
	}
	return turnout{
		units: binary.BigEndian.Uint64(b), area: int64(binary.BigEndian.Uint64(b[8:])),
		counted: binary.BigEndian.Uint64(b[16:]), areaCounted: int64(binary.BigEndian.Uint64(b[24:])),
		held: binary.BigEndian.Uint64(b[32:]),
	}, nil
}

// devSync is what a device's last push said of it.
type devSync struct {
	at          int64 // unix ms of the push
	unsent      uint64
	unsentKnown bool
	offsetMs    int64
	offsetKnown bool
}

func (d devSync) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(d.at))
	b = binary.BigEndian.AppendUint64(b, d.unsent)
	b = binary.BigEndian.AppendUint64(b, uint64(d.offsetMs))
	var f byte
	if d.unsentKnown {
		f |= 1
	}
	if d.offsetKnown {
		f |= 2
	}
	return append(b, f)
}

func decodeDevSync(b []byte) (devSync, error) {
	if len(b) != 25 {
		return devSync{}, errCorrupt
	}
	return devSync{at: int64(binary.BigEndian.Uint64(b)), unsent: binary.BigEndian.Uint64(b[8:]), offsetMs: int64(binary.BigEndian.Uint64(b[16:])),
		unsentKnown: b[24]&1 != 0, offsetKnown: b[24]&2 != 0}, nil
}

// buildingKey keys a building's counters; units with no building share
// the key "b" (bbolt keys cannot be empty).
func buildingKey(building string) []byte { return append([]byte{'b'}, building...) }
