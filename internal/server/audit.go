package server

import (
	"context"

	"golang.org/x/mod/sumdb/tlog"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/store"
)

// auditService serves the ballot log read-only. The auth interceptors have
// already checked the call signature where methodRoles asks for one.
type auditService struct {
	doorstepv1.UnimplementedAuditServiceServer
	s *Server
}

func (x *auditService) GetCheckpoint(ctx context.Context, req *doorstepv1.GetCheckpointRequest) (*doorstepv1.GetCheckpointResponse, error) {
	if err := election.CheckID("election_id", req.GetElectionId()); err != nil {
		return nil, err
	}
	cp, err := x.s.store.Checkpoint(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	vkey, err := x.s.store.VerifierKey(req.GetElectionId())
	if err != nil {
		return nil, err
	}
	return &doorstepv1.GetCheckpointResponse{Checkpoint: cp, VerifierKey: vkey}, nil
}

func (x *auditService) StreamLogEntries(req *doorstepv1.StreamLogEntriesRequest, stream doorstepv1.AuditService_StreamLogEntriesServer) error {
	ctx := stream.Context()
	if err := election.CheckID("election_id", req.GetElectionId()); err != nil {
		return err
	}
	end, err := x.treeSize(ctx, req.GetElectionId(), req.GetEnd(), "end")
	if err != nil {
		return err
	}
	start, err := asSize("start", req.GetStart())
	if err != nil {
		return err
	}
	return x.s.store.LogEntries(ctx, req.GetElectionId(), start, end, func(idx int64, entry []byte) error {
		return stream.Send(&doorstepv1.StreamLogEntriesResponse{Index: uint64(idx), Entry: entry})
	})
}

func (x *auditService) GetInclusionProof(ctx context.Context, req *doorstepv1.GetInclusionProofRequest) (*doorstepv1.GetInclusionProofResponse, error) {
	size, err := x.treeSize(ctx, req.GetElectionId(), req.GetTreeSize(), "tree_size")
	if err != nil {
		return nil, err
	}
	index, err := asSize("index", req.GetIndex())
	if err != nil {
		return nil, err
	}
	p, err := x.s.store.InclusionProof(ctx, req.GetElectionId(), index, size)
	if err != nil {
		return nil, err
	}
	return &doorstepv1.GetInclusionProofResponse{Proof: hashBytes(p)}, nil
}

func (x *auditService) GetConsistencyProof(ctx context.Context, req *doorstepv1.GetConsistencyProofRequest) (*doorstepv1.GetConsistencyProofResponse, error) {
	newSize, err := x.treeSize(ctx, req.GetElectionId(), req.GetNewSize(), "new_size")
	if err != nil {
		return nil, err
	}
	oldSize, err := asSize("old_size", req.GetOldSize())
	if err != nil {
		return nil, err
	}
	p, err := x.s.store.ConsistencyProof(ctx, req.GetElectionId(), oldSize, newSize)
	if err != nil {
		return nil, err
	}
	return &doorstepv1.GetConsistencyProofResponse{Proof: hashBytes(p)}, nil
}

// LookupReceipt is public, so it is limited per caller address before
// anything else (a refused lookup costs a map look-up, no store read).
func (x *auditService) LookupReceipt(ctx context.Context, req *doorstepv1.LookupReceiptRequest) (*doorstepv1.LookupReceiptResponse, error) {
	if !x.s.receipts.allow(ctx) {
		return nil, errTooManyLookups
	}
	if err := election.CheckID("election_id", req.GetElectionId()); err != nil {
		return nil, err
	}
	r, err := x.s.store.LookupReceipt(ctx, req.GetElectionId(), req.GetReceiptCode(), req.GetUnitId())
	if err != nil {
		return nil, err
	}
	return &doorstepv1.LookupReceiptResponse{
		Status:         r.Status,
		UnitId:         r.UnitID,
		LogIndex:       uint64(r.LogIndex),
		Checkpoint:     r.Checkpoint,
		InclusionProof: hashBytes(r.Proof),
		LeafHash:       leafBytes(r),
	}, nil
}

func (x *auditService) GetPublishedTally(ctx context.Context, req *doorstepv1.GetPublishedTallyRequest) (*doorstepv1.GetPublishedTallyResponse, error) {
	if err := election.CheckID("election_id", req.GetElectionId()); err != nil {
		return nil, err
	}
	res, cp, err := x.s.store.Published(ctx, req.GetElectionId())
	if err != nil {
		return nil, err
	}
	return &doorstepv1.GetPublishedTallyResponse{Tally: TallyProto(res, cp)}, nil
}

// treeSize reads a requested tree size, 0 meaning the log's size now.
func (x *auditService) treeSize(ctx context.Context, electionID string, n uint64, field string) (int64, error) {
	if n == 0 {
		return x.s.store.LogSize(ctx, electionID)
	}
	return asSize(field, n)
}

// asSize refuses sizes a log cannot reach, so they never wrap negative.
func asSize(field string, n uint64) (int64, error) {
	if n > 1<<62 {
		return 0, election.Errorf(election.CodeInvalid, field, "%d is past any log's end", n)
	}
	return int64(n), nil
}

func hashBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func leafBytes(r *store.Receipt) []byte {
	if r.Status == doorstepv1.ReceiptStatus_RECEIPT_STATUS_NOT_FOUND {
		return nil
	}
	return r.LeafHash[:]
}
