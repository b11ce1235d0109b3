package browsertest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowser: the browser starts, renders a page that runs a script, and
// a screenshot is kept.
func TestBrowser(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `<!doctype html><meta charset="utf-8"><p id="out">…</p><script>document.getElementById("out").textContent = "投票 " + (40 + 2)</script>`)
	}))
	defer srv.Close()
	b := Start(t)
	ctx, cancel := b.Tab(time.Minute)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL)); err != nil {
		t.Fatal(err)
	}
	got, err := chromedp.Run(ctx, chromedp.Text("#out"))
	if err != nil {
		t.Fatal(err)
	}
	if got != "投票 42" {
		t.Fatalf("page says %q, want %q", got, "投票 42")
	}
	p := Screenshot(ctx, t, "browsertest.png")
	b2, err := os.ReadFile(p)
	if err != nil || !bytes.HasPrefix(b2, []byte("\x89PNG\r\n\x1a\n")) {
		t.Fatalf("screenshot is not a PNG file (%v)", err)
	}
}
