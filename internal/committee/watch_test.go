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
	// size now, and returns the stream's latest reply and Watch's latest
	// overview.
	seen := func(what string, ok func(*doorstepv1.ElectionOverview) bool) (*doorstepv1.WatchTallyResponse, *doorstepv1.ElectionOverview) {
		t.Helper()
		want := size()
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			var resp *doorstepv1.WatchTallyResponse
			var ov *doorstepv1.ElectionOverview
			if len(sent) > 0 && len(given) > 0 {
				resp, ov = sent[len(sent)-1], given[len(given)-1]
			}
			mu.Unlock()
			if resp != nil && resp.GetOverview().GetTally().GetCheckpoint().GetSize() >= want &&
				ov.GetTally().GetCheckpoint().GetSize() >= want && ok(ov) {
				return resp, ov
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	anyOverview := func(*doorstepv1.ElectionOverview) bool { return true }
	devices := func(n int) func(*doorstepv1.ElectionOverview) bool {
		return func(ov *doorstepv1.ElectionOverview) bool { return len(ov.GetDevices()) == n }
	}

	resp, ov := seen("the first overview", anyOverview)
	if resp.GetDevicesUnchanged() || len(resp.GetOverview().GetDevices()) != 2 || len(ov.GetDevices()) != 2 {
		t.Fatalf("first reply: devices_unchanged %v with %d devices, Watch gave %d; want the 2 devices sent", resp.GetDevicesUnchanged(), len(resp.GetOverview().GetDevices()), len(ov.GetDevices()))
	}

	// A grant changes the log, not the devices.
	submit(signedtest.Grant("c", "canvasser c"))
	resp, ov = seen("the grant", anyOverview)
	if !resp.GetDevicesUnchanged() || len(resp.GetOverview().GetDevices()) != 0 {
		t.Errorf("after a grant: devices_unchanged %v with %d devices; want the devices left out", resp.GetDevicesUnchanged(), len(resp.GetOverview().GetDevices()))
	}
	if len(ov.GetDevices()) != 2 {
		t.Errorf("after a grant Watch gave %d devices, want the 2 it had", len(ov.GetDevices()))
	}

	// Two enrollments in a row: the second's row is held back, then sent
	// when its interval is up though nothing else changes.
	enroll("c")
	resp, ov = seen("the third device", devices(3))
	if resp.GetDevicesUnchanged() || len(resp.GetOverview().GetDevices()) != 3 {
		t.Errorf("with a new device: devices_unchanged %v with %d devices; want the 3 devices sent", resp.GetDevicesUnchanged(), len(resp.GetOverview().GetDevices()))
	}
	submit(signedtest.Grant("d", "canvasser d"))
	enroll("d")
	resp, ov = seen("the fourth device", devices(4))
	if resp.GetDevicesUnchanged() || len(resp.GetOverview().GetDevices()) != 4 {
		t.Errorf("with a fourth device: devices_unchanged %v with %d devices; want the 4 devices sent", resp.GetDevicesUnchanged(), len(resp.GetOverview().GetDevices()))
	}
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
