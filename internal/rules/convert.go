package rules

import (
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// Definition converts and validates an election definition.
func Definition(p *doorstepv1.ElectionDefinition) (*election.Definition, error) {
	d := &election.Definition{
		ID:           p.GetElectionId(),
		Title:        p.GetTitle(),
		CommitteeKey: p.GetCommitteePublicKey(),
		RulesVersion: p.GetRulesVersion(),
		FutureSkew:   time.Duration(p.GetFutureSkewMs()) * time.Millisecond,
		// The objection period defaults to none: the committee certifies
		// when it is ready, after the sync deadline.
		ObjectionPeriod: time.Duration(p.GetObjectionPeriodMs()) * time.Millisecond,
	}
	if d.FutureSkew == 0 {
		d.FutureSkew = election.DefaultFutureSkew
	}
	switch p.GetContestPolicy() {
	case doorstepv1.ContestPolicy_CONTEST_POLICY_UNSPECIFIED, doorstepv1.ContestPolicy_CONTEST_POLICY_HOLD:
		d.Policy = election.PolicyHold
	case doorstepv1.ContestPolicy_CONTEST_POLICY_FIRST:
		d.Policy = election.PolicyFirst
	case doorstepv1.ContestPolicy_CONTEST_POLICY_LAST:
		d.Policy = election.PolicyLast
	}
	if p.GetSyncDeadline() != nil {
		if err := p.GetSyncDeadline().CheckValid(); err != nil {
			return nil, election.Errorf(election.CodeInvalid, "sync_deadline", "%v", err)
		}
		d.SyncDeadline = p.GetSyncDeadline().AsTime()
	}
	for _, it := range p.GetItems() {
		item := election.Item{ID: it.GetItemId(), Title: it.GetTitle()}
		switch k := it.GetKind().(type) {
		case *doorstepv1.Item_Motion:
			item.Kind = election.KindMotion
			switch k.Motion.GetThreshold() {
			case doorstepv1.ThresholdClass_THRESHOLD_CLASS_ORDINARY:
				item.Threshold = election.Ordinary
			case doorstepv1.ThresholdClass_THRESHOLD_CLASS_SPECIAL:
				item.Threshold = election.Special
			}
		case *doorstepv1.Item_Candidates:
			item.Kind = election.KindCandidates
			item.Seats = int(min(k.Candidates.GetSeats(), 1<<16))
			for _, c := range k.Candidates.GetCandidates() {
				item.Candidates = append(item.Candidates, election.Candidate{ID: c.GetCandidateId(), Name: c.GetName()})
			}
		}
		d.Items = append(d.Items, item)
	}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// DefinitionProto converts a domain definition to its message.
func DefinitionProto(d *election.Definition) *doorstepv1.ElectionDefinition {
	p := &doorstepv1.ElectionDefinition{
		ElectionId:         d.ID,
		Title:              d.Title,
		CommitteePublicKey: d.CommitteeKey,
		RulesVersion:       d.RulesVersion,
		FutureSkewMs:       d.FutureSkew.Milliseconds(),
		ObjectionPeriodMs:  d.ObjectionPeriod.Milliseconds(),
		ContestPolicy:      doorstepv1.ContestPolicy(d.Policy),
	}
	if !d.SyncDeadline.IsZero() {
		p.SyncDeadline = timestamppb.New(d.SyncDeadline)
	}
	for _, it := range d.Items {
		pi := &doorstepv1.Item{ItemId: it.ID, Title: it.Title}
		switch it.Kind {
		case election.KindMotion:
			pi.Kind = &doorstepv1.Item_Motion{Motion: &doorstepv1.Motion{Threshold: doorstepv1.ThresholdClass(it.Threshold)}}
		case election.KindCandidates:
			ce := &doorstepv1.CandidateElection{Seats: uint32(it.Seats)}
			for _, c := range it.Candidates {
				ce.Candidates = append(ce.Candidates, &doorstepv1.Candidate{CandidateId: c.ID, Name: c.Name})
			}
			pi.Kind = &doorstepv1.Item_Candidates{Candidates: ce}
		}
		p.Items = append(p.Items, pi)
	}
	return p
}

// Units converts roster units from their messages (unvalidated: build an
// election.Roster to validate).
func Units(ps []*doorstepv1.Unit) []election.Unit {
	us := make([]election.Unit, len(ps))
	for i, p := range ps {
		us[i] = election.Unit{ID: p.GetUnitId(), Area: p.GetAreaCentiM2(), OwnerKey: p.GetOwnerKey(), DeveloperHeld: p.GetDeveloperHeld(), Building: p.GetBuilding()}
	}
	return us
}

// UnitsProto converts roster units to their messages.
func UnitsProto(us []election.Unit) []*doorstepv1.Unit {
	ps := make([]*doorstepv1.Unit, len(us))
	for i, u := range us {
		ps[i] = &doorstepv1.Unit{UnitId: u.ID, AreaCentiM2: u.Area, OwnerKey: u.OwnerKey, DeveloperHeld: u.DeveloperHeld, Building: u.Building}
	}
	return ps
}

// Selections converts a ballot's selections to the domain form.
func Selections(ps []*doorstepv1.Selection) []election.Selection {
	ss := make([]election.Selection, len(ps))
	for i, p := range ps {
		ss[i] = election.Selection{ItemID: p.GetItemId(), Choice: election.Choice(p.GetChoice()), Candidates: p.GetCandidateIds()}
	}
	return ss
}
