package notice

import (
	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/signed"
)

// LogReader gathers from the ballot log what a notice needs besides the
// tally: the election's definition and the committee's accepted
// adjudications, the latest per unit or per owner and item (a later
// decision replaces an earlier one). Feed it every entry in order; the
// CLI reads them over gRPC, a server could read its own store.
type LogReader struct {
	def    *doorstepv1.ElectionDefinition
	order  []string
	latest map[string]Settled
}

// Add reads one log entry, exactly as hashed into the log.
func (r *LogReader) Add(raw []byte) error {
	e, err := ballotlog.DecodeEntry(raw)
	if err != nil {
		return err
	}
	if e.GetRecord() == nil || e.GetResult().GetStatus() != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
		return nil
	}
	rec, err := signed.Decode(e.GetRecord().GetBody())
	if err != nil {
		return err
	}
	act := rec.GetCommittee()
	if d := act.GetDefineElection(); d != nil {
		r.def = d
	}
	a := act.GetAdjudication()
	var key string
	switch sub := a.GetSubject().(type) {
	case *doorstepv1.Adjudication_Unit:
		key = "u\x00" + sub.Unit.GetUnitId()
	case *doorstepv1.Adjudication_Owner:
		key = "o\x00" + sub.Owner.GetOwnerKey() + "\x00" + sub.Owner.GetItemId()
	default:
		return nil
	}
	if r.latest == nil {
		r.latest = map[string]Settled{}
	}
	if _, seen := r.latest[key]; !seen {
		r.order = append(r.order, key)
	}
	r.latest[key] = Settled{Adjudication: a, At: e.GetReceived().AsTime()}
	return nil
}

// Definition is the election's definition from the log, or nil.
func (r *LogReader) Definition() *doorstepv1.ElectionDefinition { return r.def }

// Settled lists the latest decision per subject, in the order the
// subjects were first decided.
func (r *LogReader) Settled() []Settled {
	out := make([]Settled, 0, len(r.order))
	for _, k := range r.order {
		out = append(out, r.latest[k])
	}
	return out
}
