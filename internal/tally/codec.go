package tally

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/doorstep-vote/doorstep/internal/election"
)

// The binary forms are what the store keeps. Each starts with one tag byte
// (high nibble: the type, low nibble: the version), then fields in a fixed
// order: unsigned integers as minimal uvarints, signed ones as minimal
// zigzag varints, strings as a uvarint length and the bytes, lists as a
// uvarint count and the elements. Decoding accepts only what encoding
// produces, so a successful decode re-encodes to the same bytes.
const (
	tagBallot     = 0x11
	tagBallotHeld = 0x12 // version 2: a held ballot (written only for those, so older bytes stay as they were)
	tagOutcome    = 0x21
	tagOwnerState = 0x31
	tagTotals     = 0x41
)

// ErrCorrupt is wrapped by every UnmarshalBinary error: the bytes are not
// a value this package wrote.
var ErrCorrupt = errors.New("tally: corrupt binary form")

// MarshalBinary encodes the ballot for storage. It fails on an id longer
// than election.MaxIDLen or on a mark that is not well formed.
func (b *Ballot) MarshalBinary() ([]byte, error) {
	var e encoder
	if b.Held {
		e.byte(tagBallotHeld)
	} else {
		e.byte(tagBallot)
	}
	e.id("record_id", b.RecordID)
	e.id("device_id", b.DeviceID)
	e.uvarint(b.HLC)
	e.id("supersedes", b.Supersedes)
	e.marks(b.Marks)
	return e.result("ballot")
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (b *Ballot) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	var v Ballot
	if len(data) > 0 && data[0] == tagBallotHeld {
		d.tag(tagBallotHeld)
		v.Held = true
	} else {
		d.tag(tagBallot)
	}
	v.RecordID = d.id()
	v.DeviceID = d.id()
	v.HLC = d.uvarint()
	v.Supersedes = d.id()
	v.Marks = d.marks()
	if err := d.finish("ballot"); err != nil {
		return err
	}
	*b = v
	return nil
}

const (
	flagCounted = 1 << iota
	flagContested
	flagDouble
	flagAdjudicated
	flagAll = flagCounted | flagContested | flagDouble | flagAdjudicated
)

// MarshalBinary encodes the outcome for storage.
func (u *UnitOutcome) MarshalBinary() ([]byte, error) {
	var e encoder
	e.byte(tagOutcome)
	e.byte(byte(b2i(u.Counted)*flagCounted | b2i(u.Contested)*flagContested | b2i(u.Double)*flagDouble | b2i(u.Adjudicated)*flagAdjudicated))
	e.id("counted_id", u.CountedID)
	e.marks(u.Marks)
	e.uvarint(uint64(len(u.Live)))
	for _, id := range u.Live {
		e.id("live", id)
	}
	return e.result("unit outcome")
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (u *UnitOutcome) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	d.tag(tagOutcome)
	var v UnitOutcome
	f := d.byte()
	if f&^flagAll != 0 {
		d.fail("unknown flags %#x", f)
	}
	v.Counted, v.Contested, v.Double, v.Adjudicated = f&flagCounted != 0, f&flagContested != 0, f&flagDouble != 0, f&flagAdjudicated != 0
	v.CountedID = d.id()
	v.Marks = d.marks()
	if n := d.count(); n > 0 {
		v.Live = make([]string, n)
		for i := range v.Live {
			v.Live[i] = d.id()
		}
	}
	if err := d.finish("unit outcome"); err != nil {
		return err
	}
	*u = v
	return nil
}

// MarshalBinary encodes the owner's state for storage.
func (o *OwnerState) MarshalBinary() ([]byte, error) {
	var e encoder
	e.byte(tagOwnerState)
	e.uvarint(uint64(len(o.items)))
	for _, it := range o.items {
		if it.decided {
			e.byte(1)
			e.uvarint(it.decision.Seq)
			e.mark(it.decision.Mark)
		} else {
			e.byte(0)
		}
		e.uvarint(uint64(len(it.marks)))
		for _, mc := range it.marks {
			e.mark(mc.mark)
			e.uvarint(uint64(mc.units))
			e.varint(mc.area)
		}
	}
	return e.result("owner state")
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (o *OwnerState) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	d.tag(tagOwnerState)
	n := d.count()
	if n > election.MaxItems {
		d.fail("%d items, at most %d", n, election.MaxItems)
	}
	var v OwnerState
	if d.err == nil {
		v.items = make([]ownerItem, n)
	}
	for i := range v.items {
		if d.err != nil {
			break
		}
		it := &v.items[i]
		switch d.byte() {
		case 0:
		case 1:
			it.decided = true
			it.decision = OwnerDecision{Seq: d.uvarint(), Item: i, Mark: d.mark()}
		default:
			d.fail("item %d: bad decision flag", i)
		}
		if m := d.count(); m > 0 {
			it.marks = make([]markCount, m)
		}
		for j := range it.marks {
			mc := &it.marks[j]
			mc.mark = d.mark()
			mc.key = markKey(mc.mark)
			units := d.uvarint()
			if units == 0 || units > election.MaxRosterUnits {
				d.fail("item %d: %d units for one mark", i, units)
			}
			mc.units = int64(units)
			mc.area = d.varint()
			if j > 0 && mc.key <= it.marks[j-1].key {
				d.fail("item %d: marks out of order", i)
			}
			if d.err != nil {
				break
			}
		}
	}
	if err := d.finish("owner state"); err != nil {
		return err
	}
	*o = v
	return nil
}

// MarshalBinary encodes the totals for storage.
func (t *Totals) MarshalBinary() ([]byte, error) {
	var e encoder
	e.byte(tagTotals)
	e.varint(t.rosterUnits)
	e.varint(t.counted)
	e.varint(t.held)
	e.varint(t.double)
	e.uvarint(uint64(len(t.items)))
	for i := range t.items {
		ti := &t.items[i]
		for _, c := range []Count{ti.participating, ti.yes, ti.no, ti.abstain, ti.invalid} {
			e.pair(c)
		}
		e.varint(ti.held)
		e.uvarint(uint64(len(ti.support)))
		for _, c := range ti.support {
			e.pair(c)
		}
	}
	return e.result("totals")
}

// UnmarshalBinary decodes what MarshalBinary wrote. Check the result
// against the definition with Fits.
func (t *Totals) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	d.tag(tagTotals)
	var v Totals
	v.rosterUnits = d.varint()
	v.counted = d.varint()
	v.held = d.varint()
	v.double = d.varint()
	n := d.count()
	if n > election.MaxItems {
		d.fail("%d items, at most %d", n, election.MaxItems)
	}
	if d.err == nil {
		v.items = make([]itemTotals, n)
	}
	for i := range v.items {
		if d.err != nil {
			break
		}
		ti := &v.items[i]
		for _, c := range []*Count{&ti.participating, &ti.yes, &ti.no, &ti.abstain, &ti.invalid} {
			*c = d.pair()
		}
		ti.held = d.varint()
		m := d.count()
		if m > election.MaxCandidates {
			d.fail("item %d: %d candidates, at most %d", i, m, election.MaxCandidates)
		}
		if d.err == nil && m > 0 {
			ti.support = make([]Count, m)
		}
		for j := range ti.support {
			ti.support[j] = d.pair()
		}
	}
	if err := d.finish("totals"); err != nil {
		return err
	}
	*t = v
	return nil
}

type encoder struct {
	b   []byte
	err error
}

func (e *encoder) byte(c byte)      { e.b = append(e.b, c) }
func (e *encoder) uvarint(x uint64) { e.b = binary.AppendUvarint(e.b, x) }
func (e *encoder) varint(x int64)   { e.b = binary.AppendVarint(e.b, x) }
func (e *encoder) pair(c Count)     { e.varint(c.Area); e.varint(c.Headcount) }
func (e *encoder) failf(f string, args ...any) {
	if e.err == nil {
		e.err = fmt.Errorf(f, args...)
	}
}

func (e *encoder) id(field, s string) {
	if len(s) > election.MaxIDLen {
		e.failf("%s is %d bytes, at most %d", field, len(s), election.MaxIDLen)
	}
	e.uvarint(uint64(len(s)))
	e.b = append(e.b, s...)
}

func (e *encoder) marks(ms election.Marks) {
	if len(ms) > election.MaxItems {
		e.failf("%d marks, at most %d", len(ms), election.MaxItems)
	}
	e.uvarint(uint64(len(ms)))
	for _, m := range ms {
		e.mark(m)
	}
}

// mark writes the kind, then for MarkPicks the picks. A mark decoding
// would reject fails here instead.
func (e *encoder) mark(m election.Mark) {
	if !wellFormed(m) {
		e.failf("malformed mark %+v: picks only on a picks mark, 1 to %d of them, ascending, below %d", m, election.MaxCandidates, election.MaxCandidates)
	}
	e.byte(byte(m.Kind))
	if m.Kind != election.MarkPicks {
		return
	}
	e.uvarint(uint64(len(m.Picks)))
	for _, p := range m.Picks {
		e.uvarint(uint64(p))
	}
}

func (e *encoder) result(what string) ([]byte, error) {
	if e.err != nil {
		return nil, fmt.Errorf("tally: encode %s: %w", what, e.err)
	}
	return e.b, nil
}

// decoder reads a binary form; after the first error every read returns
// zero and finish reports that error.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(f string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(f, args...)
	}
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) tag(want byte) {
	if got := d.byte(); d.err == nil && got != want {
		d.fail("tag %#x, want %#x", got, want)
	}
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	x, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	if n > 1 && d.b[n-1] == 0 {
		d.fail("non-minimal varint")
		return 0
	}
	d.b = d.b[n:]
	return x
}

func (d *decoder) varint() int64 {
	u := d.uvarint()
	// Zigzag, as binary.AppendVarint writes it.
	x := int64(u >> 1)
	if u&1 != 0 {
		x = ^x
	}
	return x
}

func (d *decoder) pair() Count { return Count{Area: d.varint(), Headcount: d.varint()} }

// count reads a list length. Each element takes at least one byte, so a
// length beyond the bytes left is corrupt; checking it first keeps a few
// bad bytes from allocating gigabytes.
func (d *decoder) count() int {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("list of %d longer than the %d bytes left", n, len(d.b))
		return 0
	}
	return int(n)
}

func (d *decoder) id() string {
	n := d.count()
	if n > election.MaxIDLen {
		d.fail("id of %d bytes, at most %d", n, election.MaxIDLen)
	}
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) marks() election.Marks {
	n := d.count()
	if n > election.MaxItems {
		d.fail("%d marks, at most %d", n, election.MaxItems)
	}
	if d.err != nil || n == 0 {
		return nil
	}
	ms := make(election.Marks, n)
	for i := range ms {
		ms[i] = d.mark()
	}
	return ms
}

func (d *decoder) mark() election.Mark {
	m := election.Mark{Kind: election.MarkKind(d.byte())}
	if m.Kind > election.MarkPicks {
		d.fail("unknown mark kind %d", m.Kind)
	}
	if d.err != nil || m.Kind != election.MarkPicks {
		return m
	}
	n := d.count()
	if n == 0 || n > election.MaxCandidates {
		d.fail("a picks mark needs 1 to %d picks, got %d", election.MaxCandidates, n)
		return m
	}
	m.Picks = make([]uint16, n)
	for i := range m.Picks {
		p := d.uvarint()
		if p >= election.MaxCandidates || i > 0 && p <= uint64(m.Picks[i-1]) {
			d.fail("picks must be distinct candidate indexes below %d, ascending", election.MaxCandidates)
			return m
		}
		m.Picks[i] = uint16(p)
	}
	return m
}

func (d *decoder) finish(what string) error {
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return fmt.Errorf("%w: decode %s: %w", ErrCorrupt, what, d.err)
	}
	return nil
}
