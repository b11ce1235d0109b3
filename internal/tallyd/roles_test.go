package tallyd_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

// TestRoleTable calls every method of Doorstep's services as every kind of
// caller, through real gRPC, and checks the README's role table cell by
// cell: an allowed caller is never refused for who it is (the call may
// still fail on its content), a caller not allowed always is.
func TestRoleTable(t *testing.T) {
	e := newAttackElection(t)
	h := e.h
	auditor := signedtest.NewAuthor(testElection, "", "auditor", base)
	auditor.ID = rules.AuditorID(auditor.Public())
	gone := signedtest.NewAuthor(testElection, "", "revoked auditor", base)
	gone.ID = rules.AuditorID(gone.Public())
	grant := func(a *signedtest.Author) *doorstepv1.CommitteeAction {
		return &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_AuditorGrant{AuditorGrant: &doorstepv1.AuditorGrant{PublicKey: a.Public(), Label: "auditor"}}}
	}
	revokeAuditor := &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_AuditorRevocation{AuditorRevocation: &doorstepv1.AuditorRevocation{AuditorId: gone.ID, Reason: "left"}}}
	h.committee(t, e.com.Committee(t, grant(auditor)), e.com.Committee(t, grant(gone)), e.com.Committee(t, revokeAuditor),
		e.com.Committee(t, signedtest.Grant("tok-r", "R")))
	R := signedtest.NewAuthor(testElection, "", "revoked device", base)
	h.enroll(t, R, "tok-r")
	h.committee(t, e.com.Committee(t, signedtest.Revoke(R.ID, 0)))

	signed := func(id string, key ed25519.PrivateKey) []grpc.CallOption {
		return []grpc.CallOption{(&callauth.Signer{ElectionID: testElection, KeyID: id, Key: key, Now: e.clk.Now}).CallOption()}
	}
	callers := []struct {
		name string
		opts []grpc.CallOption
		as   string // the role column it stands for
		self string // its own device id, for the calls about a device
	}{
		{"public", nil, "public", ""},
		{"device", signed(e.A.ID, e.A.Key), "device", e.A.ID},
		{"revoked device", signed(R.ID, R.Key), "revoked", R.ID},
		{"committee", signed(election.CommitteeAuthor, e.com.Key), "committee", ""},
		{"auditor", signed(auditor.ID, auditor.Key), "auditor", ""},
		{"revoked auditor", signed(gone.ID, gone.Key), "none", ""},
		{"operator", []grpc.CallOption{callauth.Operator(h.srv.OperatorToken())}, "operator", ""},
		{"stranger key", signed(e.A.ID, signedtest.NewKey("stranger")), "none", ""},
	}
	sync, elec, aud := h.sync, h.elec, doorstepv1.NewAuditServiceClient(h.conn)
	// allowed is the role table of the README; "revoked" and "none" are
	// callers the table lets in nowhere but public methods (a revoked
	// device may still push, so its later records are logged as rejected).
	type call struct {
		method  string
		allowed map[string]bool
		do      func(c context.Context, self string, opts []grpc.CallOption) error
	}
	all := func(roles ...string) map[string]bool {
		m := map[string]bool{}
		for _, r := range roles {
			m[r] = true
		}
		return m
	}
	public := all("public", "device", "revoked", "committee", "auditor", "none", "operator")
	calls := []call{
		{"SyncService.GetServerInfo", public, func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := sync.GetServerInfo(c, &doorstepv1.GetServerInfoRequest{}, o...)
			return err
		}},
		{"SyncService.Enroll", public, func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := sync.Enroll(c, &doorstepv1.EnrollRequest{ElectionId: testElection, EnrollmentToken: signedtest.Token("nobody"), DevicePublicKey: make([]byte, 5)}, o...)
			return err
		}},
		{"SyncService.GetElection", all("device", "committee", "auditor"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := sync.GetElection(c, &doorstepv1.GetElectionRequest{ElectionId: testElection}, o...)
			return err
		}},
		{"SyncService.GetDeviceState", all("device", "committee"), func(c context.Context, self string, o []grpc.CallOption) error {
			if self == "" {
				self = e.A.ID
			}
			_, err := sync.GetDeviceState(c, &doorstepv1.GetDeviceStateRequest{ElectionId: testElection, DeviceId: self}, o...)
			return err
		}},
		{"SyncService.PushRecords", all("device", "revoked"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := sync.PushRecords(c, &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: []*doorstepv1.SignedRecord{{Body: []byte{1}}}}, o...)
			return err
		}},
		{"SyncService.ListUnitStatus", all("device", "committee"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := sync.ListUnitStatus(c, &doorstepv1.ListUnitStatusRequest{ElectionId: testElection}, o...)
			return err
		}},
		{"ElectionService.CreateElection", all("operator"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := elec.CreateElection(c, &doorstepv1.CreateElectionRequest{Record: &doorstepv1.SignedRecord{Body: []byte{1}}}, o...)
			return err
		}},
		{"ElectionService.SubmitCommitteeRecords", all("committee"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := elec.SubmitCommitteeRecords(c, &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection, Records: []*doorstepv1.SignedRecord{{Body: []byte{1}}}}, o...)
			return err
		}},
		{"ElectionService.GetTally", all("committee", "auditor"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := elec.GetTally(c, &doorstepv1.GetTallyRequest{ElectionId: testElection}, o...)
			return err
		}},
		{"ElectionService.ListContestedUnits", all("committee", "auditor"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := elec.ListContestedUnits(c, &doorstepv1.ListContestedUnitsRequest{ElectionId: testElection}, o...)
			return err
		}},
		{"ElectionService.GetCommitteeState", all("committee"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := elec.GetCommitteeState(c, &doorstepv1.GetCommitteeStateRequest{ElectionId: testElection}, o...)
			return err
		}},
		{"ElectionService.WatchTally", all("committee", "auditor"), func(c context.Context, _ string, o []grpc.CallOption) error {
			st, err := elec.WatchTally(c, &doorstepv1.WatchTallyRequest{ElectionId: testElection}, o...)
			if err != nil {
				return err
			}
			_, err = st.Recv() // the first overview comes at once
			return err
		}},
		{"ElectionService.ListDevices", all("committee", "auditor"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := elec.ListDevices(c, &doorstepv1.ListDevicesRequest{ElectionId: testElection}, o...)
			return err
		}},
		{"ElectionService.ListComments", all("committee", "auditor"), func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := elec.ListComments(c, &doorstepv1.ListCommentsRequest{ElectionId: testElection}, o...)
			return err
		}},
		{"AuditService.GetCheckpoint", public, func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := aud.GetCheckpoint(c, &doorstepv1.GetCheckpointRequest{ElectionId: testElection}, o...)
			return err
		}},
		{"AuditService.GetInclusionProof", public, func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := aud.GetInclusionProof(c, &doorstepv1.GetInclusionProofRequest{ElectionId: testElection, Index: 0}, o...)
			return err
		}},
		{"AuditService.GetConsistencyProof", public, func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := aud.GetConsistencyProof(c, &doorstepv1.GetConsistencyProofRequest{ElectionId: testElection, OldSize: 1}, o...)
			return err
		}},
		{"AuditService.LookupReceipt", public, func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := aud.LookupReceipt(c, &doorstepv1.LookupReceiptRequest{ElectionId: testElection, ReceiptCode: "00000-00000"}, o...)
			return err
		}},
		{"AuditService.GetPublishedTally", public, func(c context.Context, _ string, o []grpc.CallOption) error {
			_, err := aud.GetPublishedTally(c, &doorstepv1.GetPublishedTallyRequest{ElectionId: testElection}, o...)
			return err
		}},
		{"AuditService.StreamLogEntries", all("committee", "auditor"), func(c context.Context, _ string, o []grpc.CallOption) error {
			st, err := aud.StreamLogEntries(c, &doorstepv1.StreamLogEntriesRequest{ElectionId: testElection, End: 1}, o...)
			if err != nil {
				return err
			}
			for {
				if _, err := st.Recv(); errors.Is(err, io.EOF) {
					return nil
				} else if err != nil {
					return err
				}
			}
		}},
	}
	// Every method of every Doorstep service has a row here.
	want := map[string]bool{}
	for _, sd := range []grpc.ServiceDesc{doorstepv1.SyncService_ServiceDesc, doorstepv1.ElectionService_ServiceDesc, doorstepv1.AuditService_ServiceDesc} {
		svc := sd.ServiceName[len("doorstep.v1."):]
		for _, m := range sd.Methods {
			want[svc+"."+m.MethodName] = true
		}
		for _, m := range sd.Streams {
			want[svc+"."+m.StreamName] = true
		}
	}
	for _, c := range calls {
		delete(want, c.method)
	}
	if len(want) > 0 {
		t.Fatalf("methods with no row in the role test: %v", want)
	}
	for _, c := range calls {
		for _, who := range callers {
			t.Run(c.method+"/"+who.name, func(t *testing.T) {
				cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				err := c.do(cctx, who.self, who.opts)
				refused := statusCode(err) == codes.Unauthenticated || statusCode(err) == codes.PermissionDenied
				if c.allowed[who.as] && refused {
					t.Errorf("allowed by the table, refused: %v", err)
				}
				if !c.allowed[who.as] && !refused {
					t.Errorf("not allowed by the table, but got %v", err)
				}
			})
		}
	}
}
