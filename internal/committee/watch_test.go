package committee_test

import (
	"context"
	"crypto/ed25519"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd/tallydtest"
)

// TestWatchDevices: the server leaves the device list out of WatchTally
// replies while it has not changed, and the client's Watch still gives
// every overview its devices; a device list that changes right after
// another is sent when its interval is up, with nothing else changing.
func TestWatchDevices(t *testing.T) {
	srv, clk := tallydtest.StartServer(t, t.TempDir())
	st := srv.Store()
	com := signedtest.NewAuthor(tallydtest.ElectionID, election.CommitteeAuthor, "watch committee", tallydtest.Begin)
	bg := context.Background()
	if _, _, err := st.CreateElection(bg, com.Committee(t, signedtest.Define(tallydtest.Definition(com.Public())))); err != nil {
		t.Fatal(err)
	}
	submit := func(acts ...*doorstepv1.CommitteeAction) {
		t.Helper()
		for _, a := range acts {
			if _, _, err := st.SubmitCommittee(bg, tallydtest.ElectionID, []*doorstepv1.SignedRecord{com.Committee(t, a)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	enroll := func(name string) {
		t.Helper()
		key := signedtest.NewKey("watch device " + name)
		if _, err := st.Enroll(bg, tallydtest.ElectionID, signedtest.Token(name), key.Public().(ed25519.PublicKey), "canvasser "+name); err != nil {
			t.Fatalf("enroll %s: %v", name, err)
		}
	}
	submit(signedtest.Roster(tallydtest.Units), signedtest.Grant("a", "canvasser a"), signedtest.Grant("b", "canvasser b"))
	enroll("a")
	enroll("b")
	submit(signedtest.Open(tallydtest.Units))

	c, err := committee.Dial(srv.Addr(), srv.Pin(), tallydtest.ElectionID, com.Key, 10*time.Second, clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The stream as it comes, on a connection of its own.
	signer := &callauth.Signer{ElectionID: tallydtest.ElectionID, KeyID: election.CommitteeAuthor, Key: com.Key, Now: clk.Now}
	conn, err := srv.Client().New(srv.Addr(), grpc.WithDefaultCallOptions(signer.CallOption()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// What the stream sends, and what Watch gives.
	var mu sync.Mutex
	var sent []*doorstepv1.WatchTallyResponse
	var given []*doorstepv1.ElectionOverview
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		st, err := doorstepv1.NewElectionServiceClient(conn).WatchTally(ctx, &doorstepv1.WatchTallyRequest{ElectionId: tallydtest.ElectionID})
		if err != nil {
			t.Errorf("WatchTally: %v", err)
			return
		}
		for {
			resp, err := st.Recv()
			if err != nil {
				if ctx.Err() == nil {
					t.Errorf("WatchTally: %v", err)
				}
				return
			}
			mu.Lock()
			sent = append(sent, resp)
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		err := c.Watch(ctx, func(ov *doorstepv1.ElectionOverview) error {
			mu.Lock()
			defer mu.Unlock()
			given = append(given, ov)
			return nil
		}, nil)
		if err != nil {
			t.Errorf("Watch: %v", err)
		}
	}()
	size := func() uint64 {
		_, cp, err := st.Tally(ctx, tallydtest.ElectionID)
		if err != nil {
			t.Fatal(err)
		}
		return cp.GetSize()
	}
	// seen waits until both watchers have an overview at or past the log's
	// size now whose devices satisfy ok, and returns the stream's first
	// reply at or past that size, its last reply that carried devices, and
	// Watch's latest overview.
	seen := func(what string, ok func([]*doorstepv1.DeviceSummary) bool) (at, full *doorstepv1.WatchTallyResponse, ov *doorstepv1.ElectionOverview) {
		t.Helper()
		want := size()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			at, full, ov = nil, nil, nil
			for _, r := range sent {
				if at == nil && r.GetOverview().GetTally().GetCheckpoint().GetSize() >= want {
					at = r
				}
				if !r.GetDevicesUnchanged() {
					full = r
				}
			}
			if len(given) > 0 {
				ov = given[len(given)-1]
			}
			mu.Unlock()
			if at != nil && ov.GetTally().GetCheckpoint().GetSize() >= want && ok(full.GetOverview().GetDevices()) && ok(ov.GetDevices()) {
				return at, full, ov
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	devices := func(n int) func([]*doorstepv1.DeviceSummary) bool {
		return func(ds []*doorstepv1.DeviceSummary) bool { return len(ds) == n }
	}

	at, _, _ := seen("the first overview", devices(2))
	mu.Lock()
	first := sent[0]
	mu.Unlock()
	if at != first || at.GetDevicesUnchanged() {
		t.Errorf("first reply: devices_unchanged %v; want the devices sent", at.GetDevicesUnchanged())
	}

	// A grant changes the log, not the devices.
	submit(signedtest.Grant("c", "canvasser c"))
	at, _, _ = seen("the grant", devices(2))
	if !at.GetDevicesUnchanged() || len(at.GetOverview().GetDevices()) != 0 {
		t.Errorf("after a grant: devices_unchanged %v with %d devices; want the devices left out", at.GetDevicesUnchanged(), len(at.GetOverview().GetDevices()))
	}

	// Two enrollments in a row: the second's row may be held back, and is
	// sent when its interval is up though nothing else changes.
	enroll("c")
	seen("the third device", devices(3))
	submit(signedtest.Grant("d", "canvasser d"))
	enroll("d")
	_, _, ov := seen("the fourth device", devices(4))
	labels := map[string]bool{}
	for _, d := range ov.GetDevices() {
		labels[d.GetLabel()] = true
	}
	for _, l := range []string{"canvasser a", "canvasser b", "canvasser c", "canvasser d"} {
		if !labels[l] {
			t.Errorf("Watch's devices %v lack %q", labels, l)
		}
	}
	cancel()
	wg.Wait()
}
