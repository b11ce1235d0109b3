package tallyd_test

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signed"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

// The mix of a canvassing day, per 115 new records: 100 ballots (87 at a
// door for the first time, 10 revisions, 3 by a second canvasser) and 15
// visits without a ballot. On top, exact re-sends come to about 5 records
// per 100 ballots (retryPerBallot).
const (
	mixRevision = 10
	mixSecond   = 3
	mixVisit    = 15
	mixTotal    = 115

	retryPerBallot = 0.05
	// secondLag is how many records earlier in the other device's chain
	// the first ballot at a door must be before a second canvasser rings
	// there (a quarter of the day in short runs), so that it has almost
	// always arrived first.
	secondLag = 200
)

type stepKind uint8

const (
	stepFirst      stepKind = iota // a ballot at a door with none yet
	stepRevision                   // a ballot superseding the device's own earlier one at that door
	stepSecondSame                 // another device's door, identical selections: DUPLICATE
	stepSecondDiff                 // another device's door, different selections: CONTESTED
	stepVisit                      // not home, refused, moved, ballot left
)

// choice is a ballot's selections in compact form, so that "identical" and
// "different" are plain comparisons.
type choice struct {
	picks             uint16 // bit i: candidate c(i+1) of the committee item
	rules, roof, fund doorstepv1.Choice
}

var motionChoices = []doorstepv1.Choice{doorstepv1.Choice_CHOICE_YES, doorstepv1.Choice_CHOICE_YES, doorstepv1.Choice_CHOICE_NO, doorstepv1.Choice_CHOICE_ABSTAIN}

func randChoice(r *rand.Rand) choice {
	var c choice
	for _, i := range r.Perm(9)[:4+r.IntN(4)] { // 4 to 7 of 9 candidates, 7 seats
		c.picks |= 1 << i
	}
	c.rules, c.roof, c.fund = motionChoices[r.IntN(4)], motionChoices[r.IntN(4)], motionChoices[r.IntN(4)]
	return c
}

func otherChoice(r *rand.Rand, c choice) choice {
	for {
		if o := randChoice(r); o != c {
			return o
		}
	}
}

func (c choice) selections() []*doorstepv1.Selection {
	var cands []string
	for i := range 9 {
		if c.picks&(1<<i) != 0 {
			cands = append(cands, fmt.Sprintf("c%d", i+1))
		}
	}
	return []*doorstepv1.Selection{
		signedtest.Pick("committee", cands...),
		{ItemId: "rules", Choice: c.rules},
		{ItemId: "roof", Choice: c.roof},
		{ItemId: "fund", Choice: c.fund},
	}
}

var visitOutcomes = []doorstepv1.VisitOutcome{
	doorstepv1.VisitOutcome_VISIT_OUTCOME_REFUSED,
	doorstepv1.VisitOutcome_VISIT_OUTCOME_MOVED,
	doorstepv1.VisitOutcome_VISIT_OUTCOME_BALLOT_LEFT,
}

// step is one record of a device's day, in chain order; only the plan
// needs it.
type step struct {
	kind    stepKind
	outcome doorstepv1.VisitOutcome
	// The door: its device's index and the door's place in that device's
	// walk list.
	doorDev, door int
	// ref is the step of the device's own chain a revision supersedes, or
	// of doorDev's chain whose ballot a second canvasser meets.
	ref     int
	sel     choice
	comment bool
}

// expect is what the answer to one record must be.
type expect uint8

const (
	expectBallot expect = 1 << iota // answered with a receipt code
	expectPaired                    // a door with two devices' ballots: see pair
)

// push is one PushRecords call, marshaled before the timer starts.
type push struct {
	wire preMarshaled
	hash [32]byte // of wire: what the device's call signature covers
	// from and n are the device's records it carries; retryOf is the index
	// of the push this one re-sends byte for byte, or -1.
	from, n, retryOf int
}

// pair is a door with two live ballots from two devices.
type pair struct {
	firstDev, firstRec   int
	secondDev, secondRec int
	unit                 int
	want                 doorstepv1.RecordStatus // for whichever arrives second
}

// idLen is the length of a record id, a UUID in canonical text form.
const idLen = 36

// canvassDay is a day at the doors of many devices, planned, signed and
// marshaled ahead of time. Every run replays it against a fresh server:
// device ids derive from the keys, so the same records fit every run.
//
// The requests and record ids live outside the Go heap (offHeap), and the
// rest is small, so the collector paces itself on the server's heap as it
// would in tallyd, not on the benchmark's luggage.
type canvassDay struct {
	devs    []*signedtest.Author // their keys are enrolled every run
	roster  int                  // the units are unitID(0) … unitID(roster-1)
	want    [][]expect           // [device][record]
	ids     [][]byte             // [device] → record i's id at [i*idLen:]
	pushes  [][]push
	pairs   []pair
	samples []verifySample // for the verify ceiling

	ballots, firsts, revisions, dups, contests, visits int
	records, resent                                    int // new records; records re-sent
}

// verifySample is one record signature as the server checks it.
type verifySample struct{ pub, msg, sig []byte }

// signaturePrefix is what a record signature covers before the body
// (api/SPEC.md section 2); planCanvassDay checks it still is.
const signaturePrefix = "doorstep-record-v1\n"

// planCanvassDay plans perDevice new records for each of devices devices,
// signs them on all cores and cuts them into batches of batch records.
func planCanvassDay(tb testing.TB, devices, perDevice, batch int) *canvassDay {
	tb.Helper()
	day := &canvassDay{devs: make([]*signedtest.Author, devices)}
	r := rand.New(rand.NewPCG(2026, 11))
	steps := make([][]step, devices)
	doors := make([]int, devices)
	free := make([][]int, devices)     // first ballots neither revised nor met by a second canvasser
	comeback := make([][]int, devices) // doors where nobody was home, to try again
	owed := 0                          // second-canvasser ballots not placed yet for want of a door
	lag := min(secondLag, perDevice/4)
	first := func(d, p int) step {
		s := step{kind: stepFirst, doorDev: d, sel: randChoice(r), comment: r.IntN(10) == 0}
		if len(comeback[d]) > 0 && r.IntN(2) == 0 {
			s.door, comeback[d] = comeback[d][0], comeback[d][1:]
		} else {
			s.door = doors[d]
			doors[d]++
		}
		free[d] = append(free[d], p)
		return s
	}
	// second finds a door where another device's ballot is at least lag
	// records old and untouched since; half the time with the same
	// selections.
	second := func(d, p int) (step, bool) {
		other := r.IntN(devices - 1)
		if other >= d {
			other++
		}
		for range 4 {
			pool := free[other]
			if len(pool) == 0 {
				break
			}
			i := r.IntN(len(pool))
			j := pool[i]
			if j > p-lag {
				continue
			}
			pool[i] = pool[len(pool)-1]
			free[other] = pool[:len(pool)-1]
			orig := steps[other][j]
			s := step{kind: stepSecondSame, doorDev: other, door: orig.door, ref: j, sel: orig.sel}
			want := doorstepv1.RecordStatus_RECORD_STATUS_DUPLICATE
			if (day.dups+day.contests)%2 == 1 {
				s.kind, s.sel = stepSecondDiff, otherChoice(r, orig.sel)
				want = doorstepv1.RecordStatus_RECORD_STATUS_CONTESTED
				day.contests++
			} else {
				day.dups++
			}
			day.pairs = append(day.pairs, pair{firstDev: other, firstRec: j, secondDev: d, secondRec: p, want: want})
			return s, true
		}
		return step{}, false
	}
	// Round robin over positions, so that a second canvasser only meets
	// ballots already planned, and a door met twice is never revised.
	for p := range perDevice {
		for d := range devices {
			var s step
			placed := false
			switch x := r.IntN(mixTotal); {
			case x < mixRevision:
				if n := len(free[d]); n > 0 {
					i := r.IntN(n)
					j := free[d][i]
					free[d][i] = free[d][n-1]
					free[d] = free[d][:n-1]
					orig := steps[d][j]
					s = step{kind: stepRevision, doorDev: d, door: orig.door, ref: j, sel: otherChoice(r, orig.sel)}
					placed = true
				}
			case x < mixRevision+mixSecond:
				if s, placed = second(d, p); !placed {
					owed++
				}
			case x < mixRevision+mixSecond+mixVisit:
				s = step{kind: stepVisit, doorDev: d, door: doors[d]}
				doors[d]++
				if r.IntN(2) == 0 {
					s.outcome = doorstepv1.VisitOutcome_VISIT_OUTCOME_NOT_HOME
					comeback[d] = append(comeback[d], s.door)
				} else {
					s.outcome = visitOutcomes[r.IntN(len(visitOutcomes))]
				}
				placed = true
			default:
				if owed > 0 {
					if s, placed = second(d, p); placed {
						owed--
					}
				}
			}
			if !placed {
				s = first(d, p)
			}
			steps[d] = append(steps[d], s)
		}
	}
	// Each device walks its own doors; a twentieth of them nobody reached
	// today, but they are on the roster too.
	doorAt := make([][]int, devices)
	for d := range devices {
		doorAt[d] = make([]int, doors[d]+doors[d]/20)
		for i := range doorAt[d] {
			doorAt[d][i] = day.roster
			day.roster++
		}
	}
	day.want = make([][]expect, devices)
	for d := range devices {
		day.want[d] = make([]expect, perDevice)
		for i, s := range steps[d] {
			switch s.kind {
			case stepFirst:
				day.firsts++
			case stepRevision:
				day.revisions++
			case stepVisit:
				day.visits++
			}
			if s.kind != stepVisit {
				day.want[d][i] = expectBallot
			}
		}
	}
	for i, p := range day.pairs {
		day.want[p.firstDev][p.firstRec] |= expectPaired
		day.want[p.secondDev][p.secondRec] |= expectPaired
		day.pairs[i].unit = doorAt[p.firstDev][steps[p.firstDev][p.firstRec].door]
	}
	day.ballots = day.firsts + day.revisions + day.dups + day.contests
	day.records = day.ballots + day.visits
	recs := day.sign(tb, steps, doorAt)
	day.cut(tb, r, recs, batch)
	return day
}

// unitID names roster unit i building-floor-door, as a real roster does.
func unitID(i int) string { return fmt.Sprintf("%d-%d-%d", i/1000+1, i/100%10+1, i%100+101) }

// sign makes every device's chain, devices in parallel. Records are dated a
// second apart and end now: a day at the doors, synced afterwards.
func (day *canvassDay) sign(tb testing.TB, steps [][]step, doorAt [][]int) [][]*doorstepv1.SignedRecord {
	tb.Helper()
	start := time.Now().Add(-time.Duration(len(steps[0])+1) * time.Second)
	recs := make([][]*doorstepv1.SignedRecord, len(steps))
	ids := make([][]string, len(steps))
	var wg sync.WaitGroup
	for d := range steps {
		a := signedtest.NewAuthor(testElection, "", fmt.Sprintf("device-%d", d), start)
		a.ID = rules.DeviceID(a.Public())
		day.devs[d] = a
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, s := range steps[d] {
				unit := unitID(doorAt[s.doorDev][s.door])
				var sr *doorstepv1.SignedRecord
				if s.kind == stepVisit {
					sr = a.Visit(nil, unit, s.outcome)
				} else {
					b := &doorstepv1.Ballot{UnitId: unit, Selections: s.sel.selections(), SignerKind: doorstepv1.SignerKind_SIGNER_KIND_OWNER}
					if s.kind == stepRevision {
						b.Supersedes = ids[d][s.ref]
					}
					if s.comment {
						b.Comment = "楼道灯坏了很久，希望新一届业委会尽快处理。"
					}
					sr = a.Next(nil, func(r *doorstepv1.Record) { r.Body = &doorstepv1.Record_Ballot{Ballot: b} })
				}
				ids[d] = append(ids[d], signedtest.RecordID(tb, sr))
				recs[d] = append(recs[d], sr)
			}
		}()
	}
	wg.Wait()
	for i := range 1024 {
		d := i % len(recs)
		sr := recs[d][(i/len(recs))%len(recs[d])]
		s := verifySample{pub: day.devs[d].Public(), msg: append([]byte(signaturePrefix), sr.Body...), sig: sr.Signature}
		if signed.Verify(s.pub, sr) != nil || !ed25519Verify(s) {
			tb.Fatal("a record's signature does not verify over the prefix and body: update signaturePrefix from api/SPEC.md")
		}
		day.samples = append(day.samples, s)
	}
	// Packed here; cut moves them off the heap with the requests.
	day.ids = make([][]byte, len(ids))
	for d, l := range ids {
		b := make([]byte, 0, len(l)*idLen)
		for _, id := range l {
			if len(id) != idLen {
				tb.Fatalf("record id %q is not %d bytes", id, idLen)
			}
			b = append(b, id...)
		}
		day.ids[d] = b
	}
	return recs
}

// cut marshals each device's records in batches, adds the exact re-sends
// (a device whose answer got lost sends the same batch again at once, as
// device.Sync does; about retryPerBallot of the ballots' count in records,
// spread over the devices), and moves requests and ids off the heap.
func (day *canvassDay) cut(tb testing.TB, r *rand.Rand, recs [][]*doorstepv1.SignedRecord, batch int) {
	tb.Helper()
	devices := len(recs)
	day.pushes = make([][]push, devices)
	size := 0
	for d := range devices {
		size += len(day.ids[d])
		for i := 0; i < len(recs[d]); i += batch {
			n := min(batch, len(recs[d])-i)
			wire, err := proto.Marshal(&doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: recs[d][i : i+n]})
			if err != nil {
				tb.Fatal(err)
			}
			day.pushes[d] = append(day.pushes[d], push{wire: wire, from: i, n: n, retryOf: -1})
			size += len(wire)
		}
	}
	arena, err := newOffHeap(size)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := arena.free(); err != nil {
			tb.Error(err)
		}
	})
	for d := range devices {
		day.ids[d] = arena.put(day.ids[d])
		for k := range day.pushes[d] {
			day.pushes[d][k].wire = arena.put(day.pushes[d][k].wire)
			day.pushes[d][k].hash = sha256.Sum256(day.pushes[d][k].wire)
		}
	}
	retried := make([]map[int]bool, devices)
	perm := r.Perm(devices)
	for i := range max(1, int(math.Round(retryPerBallot*float64(day.ballots)/float64(batch)))) {
		d := perm[i%devices]
		if retried[d] == nil {
			retried[d] = map[int]bool{}
		}
		if len(retried[d]) == len(day.pushes[d]) {
			continue
		}
		k := r.IntN(len(day.pushes[d]))
		for retried[d][k] {
			k = (k + 1) % len(day.pushes[d])
		}
		retried[d][k] = true
	}
	for d := range devices {
		var out []push
		for k, p := range day.pushes[d] {
			out = append(out, p)
			if retried[d][k] {
				again := p
				again.retryOf = len(out) - 1
				out = append(out, again)
				day.resent += p.n
			}
		}
		day.pushes[d] = out
	}
}

// preMarshaled is a request already in wire form; wireCodec sends it as
// is, so the clients spend nothing on marshaling during a run.
type preMarshaled []byte

type wireCodec struct{}

var protoCodec = encoding.GetCodecV2("proto")

func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(preMarshaled); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return protoCodec.Marshal(v)
}

func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error { return protoCodec.Unmarshal(data, v) }

// Name is the content subtype on the wire: what the server expects.
func (wireCodec) Name() string { return "proto" }

// answer is what the checks after a run need of one record's answer.
type answer struct {
	status   doorstepv1.RecordStatus
	logIndex uint64
}

// mismatches collects answers that were not what the workload intended.
type mismatches struct {
	n     int
	first []string
}

func (m *mismatches) addf(format string, args ...any) {
	m.n++
	if len(m.first) < 5 {
		m.first = append(m.first, fmt.Sprintf(format, args...))
	}
}

func (m *mismatches) merge(o *mismatches) {
	m.n += o.n
	for _, s := range o.first {
		if len(m.first) < 5 {
			m.first = append(m.first, s)
		}
	}
}

// checkPush compares the answers to device d's push k with the plan as they
// arrive, keeping only what the pair checks need (in got). prev answered
// the push before, which a re-send must repeat.
func (day *canvassDay) checkPush(d, k int, res, prev []*doorstepv1.RecordResult, got []answer, bad *mismatches) {
	p := day.pushes[d][k]
	if len(res) != p.n {
		bad.addf("device %d push %d: %d answers for %d records", d, k, len(res), p.n)
		return
	}
	accepted := doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED
	for i, r := range res {
		at := p.from + i
		where := fmt.Sprintf("device %d record %d", d, at+1)
		if id := day.ids[d][at*idLen : (at+1)*idLen]; r.GetRecordId() != string(id) {
			bad.addf("%s: answer names record %s, not %s", where, r.GetRecordId(), id)
			continue
		}
		if p.retryOf >= 0 {
			o := prev[i]
			if !r.GetReplayed() || r.GetStatus() != o.GetStatus() || r.GetLogIndex() != o.GetLogIndex() || r.GetReceiptCode() != o.GetReceiptCode() {
				bad.addf("%s, re-sent: %v replayed=%v log %d; want the first answer %v log %d, replayed", where, r.GetStatus(), r.GetReplayed(), r.GetLogIndex(), o.GetStatus(), o.GetLogIndex())
			}
			continue
		}
		got[at] = answer{status: r.GetStatus(), logIndex: r.GetLogIndex()}
		w := day.want[d][at]
		switch {
		case r.GetReplayed() || r.GetReason() != 0 || len(r.GetFlags()) > 0:
			bad.addf("%s: %v %v flags %v replayed=%v: %s", where, r.GetStatus(), r.GetReason(), r.GetFlags(), r.GetReplayed(), r.GetMessage())
		case (w&expectBallot != 0) != (r.GetReceiptCode() != ""):
			bad.addf("%s: receipt code %q on a ballot=%v", where, r.GetReceiptCode(), w&expectBallot != 0)
		case w&expectPaired == 0 && r.GetStatus() != accepted:
			bad.addf("%s: %v, want %v: %s", where, r.GetStatus(), accepted, r.GetMessage())
		}
	}
}

// checkRun finishes a run's checks: the doors with two devices' ballots and
// the live tally against what the records add up to.
func (day *canvassDay) checkRun(got [][]answer, t *tally.Result, bad *mismatches) error {
	accepted := doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED
	for _, p := range day.pairs {
		a, b := got[p.firstDev][p.firstRec], got[p.secondDev][p.secondRec]
		if a.logIndex > b.logIndex {
			a, b = b, a
		}
		// Devices hear only "accepted" (no oracle on another canvasser's
		// ballot); the server's decision, p.want, shows in the tally below.
		if a.status != accepted || b.status != accepted {
			bad.addf("door %s: answered %v then %v, want %v for both (the log holds %v)", unitID(p.unit), a.status, b.status, accepted, p.want)
		}
	}
	// Every door with a ballot counts once, but a contested one (the
	// example election holds them).
	if t.UnitsCounted != day.firsts-day.contests || t.UnitsContested != day.contests || t.UnitsDouble != day.dups {
		bad.addf("tally: %d units counted, %d contested, %d double visits; want %d, %d, %d", t.UnitsCounted, t.UnitsContested, t.UnitsDouble, day.firsts-day.contests, day.contests, day.dups)
	}
	if bad.n == 0 {
		return nil
	}
	msg := fmt.Sprintf("%d answers were not what the workload intended, so the figure would not measure it:", bad.n)
	for _, s := range bad.first {
		msg += "\n  " + s
	}
	return fmt.Errorf("%s", msg)
}

func ed25519Verify(s verifySample) bool { return ed25519.Verify(s.pub, s.msg, s.sig) }

// offHeap is memory the Go collector neither scans nor counts towards its
// goal (where the system allows; see newOffHeap), filled once.
type offHeap struct {
	buf  []byte
	used int
}

// put copies b in and returns the copy.
func (m *offHeap) put(b []byte) []byte {
	n := copy(m.buf[m.used:], b)
	out := m.buf[m.used : m.used+n : m.used+n]
	m.used += n
	return out
}
