package cli_test

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/cli"
	"github.com/doorstep-vote/doorstep/internal/enrollcode"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until buf holds want, or fails.
func waitFor(t *testing.T, buf *syncBuffer, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(buf.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the output:\n%s", want, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTallyWatch runs 'doorstep tally watch' against a real tallyd: the
// first view at once, a new block when a ballot arrives, the device with
// its label, plain blocks (no redraw codes) when the output is not a
// terminal, and a clean stop when the context ends (Ctrl-C).
func TestTallyWatch(t *testing.T) {
	srv, e := startWatchedElection(t)
	out := e.mustRun(t, "device", "enroll", "--election", exampleElection, "--label", "王芳 3栋", "--qr", "none")
	code, err := enrollcode.Parse(codeRE.FindString(out))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		lang               string
		counted0, counted1 string
		device             string
	}{
		{"en", "Counted: 0 of 288 units", "Counted: 1 of 288 units", "Devices"},
		{"zh", "已计入 1 户，共 288 户", "", "采集设备"},
	} {
		t.Run(tc.lang, func(t *testing.T) {
			var stdout, stderr syncBuffer
			env := &cli.Env{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr, Now: time.Now,
				Getenv: func(k string) string { return e.vars[k] }, ConfigDir: e.config}
			c, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan int, 1)
			go func() {
				done <- cli.Main(c, env, []string{"tally", "watch", "--election", exampleElection, "--lang", tc.lang})
			}()
			waitFor(t, &stdout, tc.counted0)
			if tc.lang == "en" {
				// A ballot arrives: the view shows it in a new block.
				dev := signedtest.NewAuthor(exampleElection, "", "test device", time.Now().Add(-time.Minute))
				pushOne(t, srv, dev, code)
				waitFor(t, &stdout, tc.counted1)
			}
			waitFor(t, &stdout, tc.device)
			waitFor(t, &stdout, "王芳 3栋")
			cancel()
			select {
			case got := <-done:
				if got != 0 {
					t.Errorf("tally watch stopped with exit %d, stderr %q", got, stderr.String())
				}
			case <-time.After(10 * time.Second):
				t.Fatal("tally watch did not stop when its context ended")
			}
			if s := stdout.String(); strings.Contains(s, "\x1b[") {
				t.Errorf("redraw codes written to a pipe:\n%q", s)
			}
		})
	}
	if code, _, errs := e.run(t, "tally", "watch", "--election", exampleElection, "--lang", "fr"); code != 2 || !strings.Contains(errs, "zh") {
		t.Errorf("--lang fr: exit %d, stderr %q; want a usage error naming the languages", code, errs)
	}
}

// startWatchedElection starts a tallyd with the example election open,
// made by a committee machine.
func startWatchedElection(t *testing.T) (*cmServer, *cmEnv) {
	t.Helper()
	srv := startCmServer(t, t.TempDir())
	e := newCmEnv(t)
	e.vars["DOORSTEP_SERVER"] = srv.srv.Addr()
	e.vars["DOORSTEP_OPERATOR_TOKEN"] = srv.srv.OperatorToken()
	electionFile, rosterFile := writeExamples(t)
	e.mustRun(t, "committee", "init")
	e.mustRun(t, "election", "create", "--file", electionFile)
	e.mustRun(t, "roster", "import", "--election", exampleElection, "--file", rosterFile)
	e.mustRun(t, "election", "open", "--election", exampleElection)
	return srv, e
}

// pushOne enrolls dev with the code and pushes one ballot for 3-2-501.
func pushOne(t *testing.T, srv *cmServer, dev *signedtest.Author, code enrollcode.Code) {
	t.Helper()
	conn, err := srv.srv.Client().New(srv.srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sync := doorstepv1.NewSyncServiceClient(conn)
	enr, err := sync.Enroll(ctx, &doorstepv1.EnrollRequest{ElectionId: exampleElection, EnrollmentToken: code.Token, DevicePublicKey: dev.Public(), Label: "王芳 3栋"})
	if err != nil {
		t.Fatal(err)
	}
	dev.ID = enr.GetDeviceId()
	b := dev.Ballot(t, "3-2-501", "", signedtest.Yes("rules"))
	if _, err := sync.PushRecords(ctx, &doorstepv1.PushRecordsRequest{ElectionId: exampleElection, Records: []*doorstepv1.SignedRecord{b}},
		(&callauth.Signer{ElectionID: exampleElection, KeyID: dev.ID, Key: dev.Key}).CallOption()); err != nil {
		t.Fatal(err)
	}
}
