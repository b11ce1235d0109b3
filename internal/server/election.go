package server

import (
	"context"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/store"
	"github.com/doorstep-vote/doorstep/internal/tally"
)

type electionService struct {
	doorstepv1.UnimplementedElectionServiceServer
	s *Server
}

func (x *electionService) CreateElection(ctx context.Context, req *doorstepv1.CreateElectionRequest) (*doorstepv1.CreateElectionResponse, error) {
	if req.GetRecord() == nil {
		return nil, election.Errorf(election.CodeInvalid, "record", "is required: a define_election record signed by the committee key")
	}
	res, cp, err := x.s.store.CreateElection(ctx, req.GetRecord())
	if err != nil {
		return nil, err
	}
	return &doorstepv1.CreateElectionResponse{Result: res, Checkpoint: cp}, nil
}

func (x *electionService) SubmitCommitteeRecords(ctx context.Context, req *doorstepv1.SubmitCommitteeRecordsRequest) (*doorstepv1.SubmitCommitteeRecordsResponse, error) {
	if err := election.CheckID("election_id", req.GetElectionId()); err != nil {
		return nil, err
	}
	res, cp, err := x.s.store.SubmitCommittee(ctx, req.GetElectionId(), req.GetRecords())
	if err != nil {
		return nil, err
	}
	return &doorstepv1.SubmitCommitteeRecordsResponse{Results: res, Checkpoint: cp}, nil
}

func (x *electionService) GetTally(ctx context.Context, req *doorstepv1.GetTallyRequest) (*doorstepv1.GetTallyResponse, error) {
	res, cp, err := x.s.store.Tally(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	st, err := x.s.store.ElectionStatus(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	return &doorstepv1.GetTallyResponse{Tally: TallyProto(res, cp), Status: statusProto(st)}, nil
}

func (x *electionService) ListContestedUnits(ctx context.Context, req *doorstepv1.ListContestedUnitsRequest) (*doorstepv1.ListContestedUnitsResponse, error) {
	var after store.ContestedCursor
	if tok := req.GetPageToken(); tok != "" {
		if key, err := decodeToken("o", tok); err == nil {
			after = store.ContestedCursor{Owners: true, Key: key}
		} else if after.Key, err = decodeToken("c", tok); err != nil {
			return nil, err
		}
	}
	def, ok := x.s.store.Definition(req.GetElectionId())
	if !ok {
		return nil, election.Errorf(election.CodeNotFound, "election_id", "there is no election %q on this server: check the election id and the server address", req.GetElectionId())
	}
	page, err := x.s.store.Contested(ctx, req.GetElectionId(), after, pageSize(req.GetPageSize(), 100, 1000))
	if err != nil {
		return nil, err
	}
	out := &doorstepv1.ListContestedUnitsResponse{}
	for _, u := range page.Units {
		cu := &doorstepv1.ContestedUnit{UnitId: u.UnitID}
		for _, b := range u.Ballots {
			cu.Ballots = append(cu.Ballots, &doorstepv1.ContestedBallot{
				RecordId: b.RecordID, DeviceId: b.DeviceID, Hlc: b.HLC, Selections: marksProto(def, b.Marks),
				DeviceLabel: b.DeviceLabel, AuthorTime: timeProto(b.AuthorTime), Comment: b.Comment,
				SignerKind: b.SignerKind, SignerName: b.SignerName, LateDoubtful: b.LateDoubtful,
			})
		}
		out.Units = append(out.Units, cu)
	}
	for _, o := range page.SplitOwners {
		if o.Item < 0 || o.Item >= len(def.Items) {
			continue
		}
		so := &doorstepv1.SplitOwner{OwnerKey: o.OwnerKey, ItemId: def.Items[o.Item].ID, UnitIds: o.UnitIDs}
		for _, u := range o.UnitIDs {
			if m, ok := o.Choices[u]; ok {
				so.Choices = append(so.Choices, &doorstepv1.UnitChoice{UnitId: u, Selection: markProto(def, o.Item, m)})
			}
		}
		out.SplitOwners = append(out.SplitOwners, so)
	}
	switch {
	case page.Next.Owners:
		out.NextPageToken = encodeToken("o", page.Next.Key)
	case page.Next.Key != "":
		out.NextPageToken = encodeToken("c", page.Next.Key)
	}
	return out, nil
}

func (x *electionService) GetCommitteeState(ctx context.Context, req *doorstepv1.GetCommitteeStateRequest) (*doorstepv1.GetCommitteeStateResponse, error) {
	c, err := x.s.store.CommitteeState(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	return &doorstepv1.GetCommitteeStateResponse{HighSeq: c.HighSeq, HighHash: c.HighHash}, nil
}

// marksProto renders validated marks as selections, for showing a ballot
// to the committee without the raw record.
func marksProto(d *election.Definition, m election.Marks) []*doorstepv1.Selection {
	out := make([]*doorstepv1.Selection, 0, len(m))
	for i, mk := range m {
		out = append(out, markProto(d, i, mk))
	}
	return out
}

// markProto renders the mark on item i as a selection.
func markProto(d *election.Definition, i int, mk election.Mark) *doorstepv1.Selection {
	{
		it := &d.Items[i]
		s := &doorstepv1.Selection{ItemId: it.ID}
		switch mk.Kind {
		case election.MarkYes:
			s.Choice = doorstepv1.Choice_CHOICE_YES
		case election.MarkNo:
			s.Choice = doorstepv1.Choice_CHOICE_NO
		case election.MarkAbstain:
			s.Choice = doorstepv1.Choice_CHOICE_ABSTAIN
		case election.MarkInvalid:
			s.Choice = doorstepv1.Choice_CHOICE_UNSPECIFIED
		case election.MarkPicks:
			for _, p := range mk.Picks {
				s.CandidateIds = append(s.CandidateIds, it.Candidates[p].ID)
			}
		}
		return s
	}
}

// TallyProto renders a tally result for the wire, with its canonical bytes.
func TallyProto(r *tally.Result, cp *doorstepv1.Checkpoint) *doorstepv1.Tally {
	t := &doorstepv1.Tally{
		ElectionId:         r.ElectionID,
		Checkpoint:         cp,
		RosterArea:         r.RosterArea,
		RosterHeadcount:    uint64(r.RosterHeadcount),
		RosterUnits:        uint64(r.RosterUnits),
		UnitsCounted:       uint64(r.UnitsCounted),
		UnitsContested:     uint64(r.UnitsContested),
		UnitsDoubleVisited: uint64(r.UnitsDouble),
		CanonicalJson:      r.CanonicalJSON(),
	}
	count := func(c tally.Count) *doorstepv1.Count {
		return &doorstepv1.Count{Area: c.Area, Headcount: uint64(c.Headcount)}
	}
	for _, it := range r.Items {
		pi := &doorstepv1.ItemTally{
			ItemId:        it.ItemID,
			Outcome:       outcomes[it.Outcome],
			QuorumMet:     it.QuorumMet,
			Participating: count(it.Participating),
			Yes:           count(it.Yes),
			No:            count(it.No),
			Abstain:       count(it.Abstain),
			Invalid:       count(it.Invalid),
			HeldHeadcount: uint64(it.HeldHeadcount),
		}
		for _, c := range it.Candidates {
			pi.Candidates = append(pi.Candidates, &doorstepv1.CandidateTally{
				CandidateId: c.CandidateID, Support: count(c.Support), Qualified: c.Qualified,
				Elected: c.Elected, Tied: c.Tied, Rank: uint32(c.Rank),
			})
		}
		t.Items = append(t.Items, pi)
	}
	return t
}

var outcomes = map[string]doorstepv1.Outcome{
	"passed":    doorstepv1.Outcome_OUTCOME_PASSED,
	"failed":    doorstepv1.Outcome_OUTCOME_FAILED,
	"no_quorum": doorstepv1.Outcome_OUTCOME_NO_QUORUM,
	"elected":   doorstepv1.Outcome_OUTCOME_ELECTED,
	"tie":       doorstepv1.Outcome_OUTCOME_TIE,
}
