package proctest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/proctest"
)

func TestMain(m *testing.M) { os.Exit(proctest.Main(m)) }

func TestBuildOnce(t *testing.T) {
	first := proctest.Build(t, proctest.Doorstep)
	if again := proctest.Build(t, proctest.Doorstep); again != first {
		t.Errorf("second build = %s; want the first binary %s", again, first)
	}
	if st, err := os.Stat(first); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("binary %s: %v, %v; want an executable file", first, st, err)
	}
}

func TestKillAndExit(t *testing.T) {
	tallyd := proctest.Build(t, proctest.Tallyd)
	doorstep := proctest.Build(t, proctest.Doorstep)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("killed while serving", func(t *testing.T) {
		p := proctest.Start(t, tallyd, proctest.Options{}, "-data", t.TempDir(), "-listen", "127.0.0.1:0")
		if err := p.WaitStderr(ctx, "tallyd: serving on"); err != nil {
			t.Fatal(err)
		}
		if !p.Kill() {
			t.Errorf("Kill of a serving tallyd = false; want true")
		}
		if !p.Exited() {
			t.Error("process still running after Kill")
		}
		if p.Kill() != true {
			t.Error("a second Kill changed how the process ended")
		}
	})

	t.Run("exited by itself", func(t *testing.T) {
		p := proctest.Start(t, doorstep, proctest.Options{Stdin: strings.NewReader("")}, "no-such-command")
		err := p.Wait(ctx)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 2 {
			t.Errorf("exit = %v; want exit status 2", err)
		}
		if p.Kill() {
			t.Error("Kill of an exited process = true; want false")
		}
		if !strings.Contains(p.Stderr(), `unknown command "doorstep no-such-command"`) {
			t.Errorf("stderr = %q", p.Stderr())
		}
	})
}
