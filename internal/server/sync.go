package server

import (
	"context"
	"crypto/ed25519"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/ballotlog"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/store"
)

type syncService struct {
	doorstepv1.UnimplementedSyncServiceServer
	s *Server
}

func (x *syncService) GetServerInfo(ctx context.Context, req *doorstepv1.GetServerInfoRequest) (*doorstepv1.GetServerInfoResponse, error) {
	pub := x.s.store.ServerKey()
	return &doorstepv1.GetServerInfoResponse{
		ServerPublicKey: pub,
		Fingerprint:     ballotlog.Fingerprint(pub),
		LogOrigin:       x.s.store.OriginPrefix(),
		ServerTime:      timestamppb.New(x.s.now()),
	}, nil
}

func (x *syncService) Enroll(ctx context.Context, req *doorstepv1.EnrollRequest) (*doorstepv1.EnrollResponse, error) {
	if err := election.CheckID("election_id", req.GetElectionId()); err != nil {
		return nil, err
	}
	id, err := x.s.store.Enroll(ctx, req.GetElectionId(), req.GetEnrollmentToken(), ed25519.PublicKey(req.GetDevicePublicKey()), req.GetLabel())
	if err != nil {
		return nil, err
	}
	x.s.log.InfoContext(ctx, "device enrolled", "election", req.GetElectionId(), "device", id)
	return &doorstepv1.EnrollResponse{
		DeviceId:        id,
		ServerPublicKey: x.s.store.ServerKey(),
		LogOrigin:       x.s.store.Origin(req.GetElectionId()),
	}, nil
}

func (x *syncService) GetElection(ctx context.Context, req *doorstepv1.GetElectionRequest) (*doorstepv1.GetElectionResponse, error) {
	recs, err := x.s.store.CommitteeRecords(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	return &doorstepv1.GetElectionResponse{CommitteeRecords: recs}, nil
}

func (x *syncService) GetDeviceState(ctx context.Context, req *doorstepv1.GetDeviceStateRequest) (*doorstepv1.GetDeviceStateResponse, error) {
	c, _ := callerFrom(ctx)
	if c.KeyID != election.CommitteeAuthor && c.KeyID != req.GetDeviceId() {
		return nil, status.Error(codes.PermissionDenied, "a device may ask only about itself")
	}
	ch, err := x.s.store.DeviceState(ctx, req.GetElectionId(), req.GetDeviceId())
	if err != nil {
		return nil, err
	}
	if req.Unsent != nil && c.KeyID == req.GetDeviceId() {
		if err := x.s.store.NoteSync(ctx, req.GetElectionId(), c.KeyID, req.GetUnsent()); err != nil {
			return nil, err
		}
	}
	return &doorstepv1.GetDeviceStateResponse{
		HighSeq: ch.HighSeq, HighHash: ch.HighHash, MaxSeq: ch.MaxSeq, Revoked: ch.Revoked, MissingSeqs: ch.MissingSeqs,
		ServerTime: timestamppb.New(x.s.now()),
	}, nil
}

func (x *syncService) PushRecords(ctx context.Context, req *doorstepv1.PushRecordsRequest) (*doorstepv1.PushRecordsResponse, error) {
	if err := election.CheckID("election_id", req.GetElectionId()); err != nil {
		return nil, err
	}
	c, _ := callerFrom(ctx)
	var offset *time.Duration
	if dt := req.GetDeviceTime(); dt != nil && dt.CheckValid() == nil {
		// The server's clock ahead of the device's, as the push arrives:
		// the time rule puts a late ballot's claim on the server's clock
		// by it.
		d := x.s.now().Sub(dt.AsTime())
		offset = &d
	}
	res, cp, err := x.s.store.PushAs(ctx, req.GetElectionId(), store.PushMeta{Pusher: c.KeyID, Offset: offset, Unsent: req.Unsent}, req.GetRecords())
	if err != nil {
		return nil, err
	}
	for i, r := range res {
		res[i] = deviceAnswer(r)
	}
	return &doorstepv1.PushRecordsResponse{Results: res, Checkpoint: cp, ServerTime: timestamppb.New(x.s.now())}, nil
}

func (x *syncService) ListUnitStatus(ctx context.Context, req *doorstepv1.ListUnitStatusRequest) (*doorstepv1.ListUnitStatusResponse, error) {
	pos, err := decodeToken("u", req.GetPageToken())
	if err != nil {
		return nil, err
	}
	after, err := parseUint(pos)
	if err != nil {
		return nil, err
	}
	units, next, err := x.s.store.UnitStatus(ctx, req.GetElectionId(), after, pageSize(req.GetPageSize(), 1000, 5000))
	if err != nil {
		return nil, err
	}
	out := &doorstepv1.ListUnitStatusResponse{NextPageToken: encodeToken("u", strconv.FormatUint(next, 10))}
	c, _ := callerFrom(ctx)
	for _, u := range units {
		p := u.Progress
		if p == doorstepv1.UnitProgress_UNIT_PROGRESS_CONTESTED && c.KeyID != election.CommitteeAuthor {
			// A canvasser needs to know the door is done, not that the
			// ballots there disagree.
			p = doorstepv1.UnitProgress_UNIT_PROGRESS_DONE
		}
		out.Units = append(out.Units, &doorstepv1.UnitStatus{UnitId: u.UnitID, Progress: p, LastVisit: u.LastVisit, Visits: u.Visits})
	}
	return out, nil
}

// deviceAnswer is what a device is told of the server's decision on its
// record: the log holds the decision itself, for the committee and the
// auditors. Whether an accepted ballot made its unit a double visit or a
// contest depends on another device's ballot, so the device hears only
// that it was accepted: otherwise a canvasser could test guesses at
// another household's choices.
func deviceAnswer(r *doorstepv1.RecordResult) *doorstepv1.RecordResult {
	switch r.GetStatus() {
	case doorstepv1.RecordStatus_RECORD_STATUS_DUPLICATE, doorstepv1.RecordStatus_RECORD_STATUS_CONTESTED:
		c := proto.CloneOf(r)
		c.Status = doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED
		return c
	}
	return r
}
