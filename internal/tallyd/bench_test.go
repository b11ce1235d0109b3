package tallyd_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// benchElection starts a real tallyd in dir with an open election whose
// roster has units units, and enrolls devices devices.
func benchElection(tb testing.TB, dir string, units, devices int) (*tallyd.Server, *signedtest.Author, []*signedtest.Author, []string) {
	tb.Helper()
	// The same collector setting cmd/tallyd runs with.
	srv, err := tallyd.Start(context.Background(), tallyd.Config{DataDir: dir, Listen: "127.0.0.1:0", GCPercent: tallyd.DefaultGCPercent})
	if err != nil {
		tb.Fatal(err)
	}
	conn, err := client.New(srv.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	ec, sc := doorstepv1.NewElectionServiceClient(conn), doorstepv1.NewSyncServiceClient(conn)
	ctx := context.Background()
	now := time.Now()
	com := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "committee", now.Add(-time.Hour))
	def, _ := exampleElection(tb)
	def.ElectionId, def.CommitteePublicKey, def.SyncDeadline = testElection, com.Public(), tsOf(now.Add(72*time.Hour))
	if _, err := ec.CreateElection(ctx, &doorstepv1.CreateElectionRequest{Record: com.Committee(tb, signedtest.Define(def))}); err != nil {
		tb.Fatal(err)
	}
	roster := make([]election.Unit, units)
	ids := make([]string, units)
	for i := range roster {
		ids[i] = fmt.Sprintf("%d-%d-%d", i/1000+1, i/100%10+1, i%100+101)
		roster[i] = election.Unit{ID: ids[i], Area: 6000 + int64(i%5000), OwnerKey: "owner-" + ids[i]}
	}
	submit := func(recs ...*doorstepv1.SignedRecord) {
		resp, err := ec.SubmitCommitteeRecords(ctx, &doorstepv1.SubmitCommitteeRecordsRequest{ElectionId: testElection, Records: recs})
		if err != nil {
			tb.Fatal(err)
		}
		for _, r := range resp.Results {
			if r.Status != doorstepv1.RecordStatus_RECORD_STATUS_ACCEPTED {
				tb.Fatalf("committee record: %v %s", r.Reason, r.Message)
			}
		}
	}
	for i := 0; i < units; i += 5000 {
		submit(com.Committee(tb, signedtest.Roster(roster[i:min(i+5000, units)])))
	}
	submit(com.Committee(tb, signedtest.Open(roster)))
	devs := make([]*signedtest.Author, devices)
	for i := range devs {
		tok := fmt.Sprintf("token-%d", i)
		submit(com.Committee(tb, signedtest.Grant(tok, tok)))
		devs[i] = signedtest.NewAuthor(testElection, "", fmt.Sprintf("device-%d", i), now)
		resp, err := sc.Enroll(ctx, &doorstepv1.EnrollRequest{ElectionId: testElection, EnrollmentToken: signedtest.Token(tok), DevicePublicKey: devs[i].Public()})
		if err != nil {
			tb.Fatal(err)
		}
		devs[i].ID = resp.DeviceId
	}
	return srv, com, devs, ids
}

// presign makes each device's ballots, one per unit, round robin, in
// batches of batch records.
func presign(tb testing.TB, devs []*signedtest.Author, ids []string, n, batch int) [][][]*doorstepv1.SignedRecord {
	per := make([][]*doorstepv1.SignedRecord, len(devs))
	var wg sync.WaitGroup
	for d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A second per ballot, ending now: records dated in the past, as
			// they are when a device syncs after a day at the doors.
			devs[d].Clock = time.Now().Add(-time.Duration(n/len(devs)+1) * time.Second)
			for i := d; i < n; i += len(devs) {
				per[d] = append(per[d], devs[d].Ballot(nil, ids[i%len(ids)], "", signedtest.Yes("rules"), signedtest.No("roof"), signedtest.Pick("committee", "c1", "c2", "c3")))
			}
		}()
	}
	wg.Wait()
	out := make([][][]*doorstepv1.SignedRecord, len(devs))
	for d, recs := range per {
		for i := 0; i < len(recs); i += batch {
			out[d] = append(out[d], recs[i:min(i+batch, len(recs))])
		}
	}
	return out
}

// BenchmarkIngest drives 100 concurrent devices, each on its own
// connection, pushing batches of pre-signed ballots to a real tallyd on
// loopback with fsync on: nothing is acknowledged before it is on disk.
//
//	go test -run '^$' -bench BenchmarkIngest -benchtime 200000x ./internal/tallyd/
func BenchmarkIngest(b *testing.B) {
	const devices, batch = 100, 100
	n := max(b.N, devices*batch)
	srv, _, devs, ids := benchElection(b, b.TempDir(), n, devices)
	defer srv.Close()
	batches := presign(b, devs, ids, n, batch)
	conns := make([]*grpc.ClientConn, devices)
	for i := range conns {
		c, err := client.New(srv.Addr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		conns[i] = c
	}
	runtime.GC()
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, devices)
	for d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := doorstepv1.NewSyncServiceClient(conns[d])
			for _, recs := range batches[d] {
				resp, err := cl.PushRecords(context.Background(), &doorstepv1.PushRecordsRequest{ElectionId: testElection, Records: recs})
				if err != nil {
					errs <- err
					return
				}
				for _, r := range resp.Results {
					if r.Status == doorstepv1.RecordStatus_RECORD_STATUS_REJECTED {
						errs <- fmt.Errorf("rejected: %v %s", r.Reason, r.Message)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	rate := float64(n) / elapsed.Seconds()
	b.ReportMetric(rate, "ballots/s")
	fmt.Printf("ingest: %.0f ballots/s (%d ballots, %d devices, batches of %d, fsync before ack, gc-percent %d, %d cores)\n", rate, n, devices, batch, tallyd.DefaultGCPercent, runtime.GOMAXPROCS(0))
}
