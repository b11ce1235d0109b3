package proctest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Import paths of the commands tests run.
const (
	Doorstep = "github.com/doorstep-vote/doorstep/cmd/doorstep"
	Tallyd   = "github.com/doorstep-vote/doorstep/cmd/tallyd"
)

var builds struct {
	mu   sync.Mutex
	dir  string            // guarded by mu: made by Main, removed when it returns
	bins map[string]string // guarded by mu: import path → binary
	errs map[string]error  // guarded by mu: import path → why it did not build
}

// Main runs the tests of a package that builds commands and removes the
// binaries afterwards. Call it from TestMain: os.Exit(proctest.Main(m)).
func Main(m *testing.M) int {
	builds.mu.Lock()
	dir, err := os.MkdirTemp("", "doorstep-proctest-")
	builds.dir = dir
	builds.bins, builds.errs = map[string]string{}, map[string]error{}
	builds.mu.Unlock()
	if err != nil {
		fmt.Fprintf(os.Stderr, "proctest: %v\n", err)
		return 1
	}
	code := m.Run()
	builds.mu.Lock()
	builds.dir = ""
	builds.mu.Unlock()
	os.RemoveAll(dir)
	return code
}

// Build builds the command at importPath once per test binary, with the go
// command that runs the tests, and returns the binary's path. A later call
// returns the same binary (or the same failure). The binaries are built
// without the race detector: tests kill them at random moments, so they
// test what survives a crash, not how the process got there.
func Build(tb testing.TB, importPath string) string {
	tb.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir == "" {
		tb.Fatal("proctest.Build needs TestMain to run the tests through proctest.Main")
	}
	if bin, ok := builds.bins[importPath]; ok {
		return bin
	}
	if err, ok := builds.errs[importPath]; ok {
		tb.Fatal(err)
	}
	bin := filepath.Join(builds.dir, path.Base(importPath))
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	out, err := exec.Command(goCommand(), "build", "-o", bin, importPath).CombinedOutput()
	if err != nil {
		err = fmt.Errorf("go build %s: %w\n%s", importPath, err, out)
		builds.errs[importPath] = err
		tb.Fatal(err)
	}
	builds.bins[importPath] = bin
	return bin
}

// goCommand is the go command on PATH (go test puts its own first), else
// the one in the toolchain that built the test.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// Proc is a running command whose output is collected as it runs.
type Proc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	err    error // set before done closes
	killed bool  // set before done closes
}

// Options are how Start runs a command.
type Options struct {
	// Env is added to the test process's environment.
	Env []string
	// Dir is the working folder; the test's when empty.
	Dir string
	// Stdin, when set, is copied to the command's standard input and then
	// closed. A Reader that never ends keeps the input open.
	Stdin io.Reader
}

// Start starts bin with args. The process is killed, if still running,
// when the test ends.
func Start(tb testing.TB, bin string, opt Options, args ...string) *Proc {
	tb.Helper()
	p := &Proc{
		cmd:    exec.Command(bin, args...),
		stdout: &syncBuffer{},
		stderr: &syncBuffer{},
		done:   make(chan struct{}),
	}
	p.cmd.Env = append(os.Environ(), opt.Env...)
	p.cmd.Dir = opt.Dir
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	// exec copies a Reader that is not a file in a goroutine of its own,
	// which Wait ends once the process has exited.
	p.cmd.Stdin = opt.Stdin
	// Wait must not block on a killed command's input copier: the copier
	// stops when the process's end of the pipe is closed.
	p.cmd.WaitDelay = time.Second
	if err := p.cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", filepath.Base(bin), err)
	}
	go func() {
		err := p.cmd.Wait()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
				p.killed = true
			}
		}
		p.err = err
		close(p.done)
	}()
	tb.Cleanup(func() { p.Kill() })
	return p
}

// Kill sends SIGKILL, unless the process has ended, and waits for it to
// end. It reports whether the signal ended the process; false means the
// process had already exited by itself (see Wait for how).
func (p *Proc) Kill() bool {
	select {
	case <-p.done:
	default:
		// The process may exit between the check and the signal; Wait
		// tells which happened.
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return p.killed
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the process to end and returns how it ended, as
// exec.Cmd.Wait does, or ctx's error.
func (p *Proc) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Stdout and Stderr return what the process wrote so far.
func (p *Proc) Stdout() string { return p.stdout.String() }
func (p *Proc) Stderr() string { return p.stderr.String() }

// WaitStderr waits until the process has written s to its standard error,
// and fails when it ends first or ctx ends.
func (p *Proc) WaitStderr(ctx context.Context, s string) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for {
		if strings.Contains(p.Stderr(), s) {
			return nil
		}
		select {
		case <-p.done:
			if strings.Contains(p.Stderr(), s) {
				return nil
			}
			return fmt.Errorf("%s ended (%v) before saying %q; it said:\n%s", filepath.Base(p.cmd.Path), p.err, s, p.Stderr())
		case <-ctx.Done():
			return fmt.Errorf("%s did not say %q: %w; it said:\n%s", filepath.Base(p.cmd.Path), s, ctx.Err(), p.Stderr())
		case <-t.C:
		}
	}
}

// syncBuffer is a bytes.Buffer that the process's output copier writes
// while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer // guarded by mu
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
