// Package browsertest starts a real headless Chromium for the web front
// ends' tests, driven by chromedp. It finds Debian's chromium (or
// $DOORSTEP_CHROMIUM), gives it a fresh profile, and keeps screenshots
// where CI collects them ($DOORSTEP_ARTIFACTS).
//
// Without a browser the tests skip, saying how to install one; with
// DOORSTEP_REQUIRE_BROWSER=1 (set by .ci/run) they fail instead, so CI can
// never pass by quietly skipping them.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// RequireEnv makes a missing browser a failure rather than a skip.
const RequireEnv = "DOORSTEP_REQUIRE_BROWSER"

// ArtifactsEnv names the folder screenshots are written to.
const ArtifactsEnv = "DOORSTEP_ARTIFACTS"

// Path finds the browser: $DOORSTEP_CHROMIUM, else chromium or
// google-chrome on PATH; "" when there is none.
func Path() string {
	if p := os.Getenv("DOORSTEP_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Browser is one running Chromium with a fresh profile.
type Browser struct {
	t       testing.TB
	Profile string // the user-data-dir; reuse it to reopen the same browser
	alloc   context.Context
	cancel  context.CancelFunc
}

// Options are extra chromedp allocator options (flags).
type Options []chromedp.ExecAllocatorOption

// Start starts Chromium with a fresh profile; it is stopped when the test
// ends. It skips the test (or fails it, under DOORSTEP_REQUIRE_BROWSER)
// when no browser is installed.
func Start(t testing.TB, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	return StartProfile(t, t.TempDir(), extra...)
}

// StartProfile starts Chromium on an existing profile folder: a browser
// closed and opened again, with its storage (IndexedDB, service workers)
// as it was left.
func StartProfile(t testing.TB, profile string, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	path := Path()
	if path == "" {
		if os.Getenv(RequireEnv) != "" {
			t.Fatalf("no Chromium found and %s is set: install it (apt-get install -y chromium) or set DOORSTEP_CHROMIUM", RequireEnv)
		}
		t.Skip("no Chromium found: install it (apt-get install -y chromium) to run the browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.UserDataDir(profile),
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(412, 915), // a phone's viewport
	}
	if os.Geteuid() == 0 {
		// Chromium refuses to run as root with its sandbox on.
		opts = append(opts, chromedp.NoSandbox)
	}
	opts = append(opts, extra...)
	alloc, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{t: t, Profile: profile, alloc: alloc, cancel: cancel}
	t.Cleanup(b.Close)
	return b
}

// Tab opens a new tab; its context ends with the browser or after limit.
func (b *Browser) Tab(limit time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := chromedp.NewContext(b.alloc, chromedp.WithLogf(b.t.Logf))
	ctx, cancelT := context.WithTimeout(ctx, limit)
	return ctx, func() { cancelT(); cancel() }
}

// Close stops the browser and waits for it to exit, so its profile can be
// opened again.
func (b *Browser) Close() {
	if b.cancel != nil {
		b.cancel()
		b.cancel = nil
	}
}

// Screenshot captures the tab's full page and keeps it as name (a .png)
// in $DOORSTEP_ARTIFACTS, or in the test's temporary folder; it returns
// the file's path.
func Screenshot(ctx context.Context, t testing.TB, name string) string {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100 makes a PNG; less, a JPEG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := os.Getenv(ArtifactsEnv)
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("screenshot folder: %v", err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatalf("keep screenshot: %v", err)
	}
	t.Logf("screenshot: %s", p)
	return p
}
