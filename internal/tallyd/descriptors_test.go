//go:build linux || darwin

package tallyd_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/client"
	"github.com/doorstep-vote/doorstep/internal/connlimit"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// floodServerEnv, set to a number, makes TestDescriptorFlood the server
// end: a tallyd allowed that many open files.
const floodServerEnv = "DOORSTEP_TEST_FLOOD_SERVER_FILES"

// TestDescriptorFlood: a tallyd that may open only a few hundred files
// (as in a container started with a low nofile limit) is flooded with more
// idle connections than that, and an honest call still gets through.
//
// This is what failed before the limits: the flood used up the
// descriptors, Accept failed with "too many open files" (gRPC retries it,
// at most once a second), and the honest connection waited in the
// kernel's queue until gRPC's 120 s handshake deadline freed descriptors.
// Run once with the cap and the deadline taken out of tallyd.Start, this
// test's honest call failed with DeadlineExceeded after its 20 s. Now the
// cap fits under the descriptor limit, what is over it is closed at once,
// and the flood's connections are dropped at the handshake deadline.
//
// The server runs in a child process (this test binary again), so that
// only it has the low limit.
func TestDescriptorFlood(t *testing.T) {
	if files := os.Getenv(floodServerEnv); files != "" {
		floodServer(t, files)
		return
	}
	const files, flood = 256, 320
	cmd := exec.Command(os.Args[0], "-test.run=^TestDescriptorFlood$", "-test.v")
	cmd.Env = append(os.Environ(), floodServerEnv+"="+strconv.Itoa(files))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()
	// The child's first line of its own is its address and pin; the rest
	// of its output is kept for a failure's report.
	first := make(chan []string, 1)
	var rest strings.Builder
	outDone := make(chan struct{})
	go func() {
		defer close(outDone)
		out := bufio.NewScanner(stdout)
		for out.Scan() {
			if f := strings.Fields(out.Text()); len(f) == 3 && f[0] == "flood-server" {
				first <- f
				continue
			}
			rest.WriteString(out.Text() + "\n")
		}
		close(first)
	}()
	f, ok := <-first
	if !ok {
		<-outDone
		cmd.Wait()
		t.Fatalf("the server process did not start:\n%s%s", rest.String(), stderr.String())
	}
	addr, pin := f[1], f[2]

	var held []net.Conn
	for i := range flood {
		c, err := net.Dial("tcp", addr)
		if errors.Is(err, syscall.ECONNRESET) {
			continue
		}
		if err != nil {
			t.Fatalf("flood connection %d: %v", i, err)
		}
		defer c.Close()
		held = append(held, c)
	}
	conn, err := client.ForPin(pin).New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := doorstepv1.NewSyncServiceClient(conn).GetServerInfo(c, &doorstepv1.GetServerInfoRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Errorf("an honest call during a flood of %d connections to a server allowed %d files: %v", flood, files, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i, c := range held {
		if !closedByServer(c, deadline) {
			t.Errorf("flood connection %d is still open well past the handshake deadline", i)
		}
	}
	stdin.Close()
	<-outDone
	if err := cmd.Wait(); err != nil {
		t.Errorf("server process: %v", err)
	}
	log := stderr.String()
	want := fmt.Sprintf("holding_at_most=%d", files-connlimit.Reserve)
	if !strings.Contains(log, want) {
		t.Errorf("the server did not say it holds at most %d connections (%s):\n%s", files-connlimit.Reserve, want, log)
	}
	if !strings.Contains(log, "refusing connections") {
		t.Errorf("the server did not log refusing connections:\n%s", log)
	}
	if t.Failed() {
		t.Logf("server output:\n%s", rest.String())
	}
}

// floodServer is the child's side: lower the open-file limit, serve,
// print the address and pin, and stop when the parent closes stdin.
func floodServer(t *testing.T, files string) {
	n, err := strconv.ParseUint(files, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	rl.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	srv, err := tallyd.Start(context.Background(), tallyd.Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", HandshakeTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("flood-server %s %s\n", srv.Addr(), srv.Pin())
	io.Copy(io.Discard, os.Stdin)
	if err := srv.Close(); err != nil {
		t.Error(err)
	}
}
