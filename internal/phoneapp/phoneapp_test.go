package phoneapp_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/doorstep-vote/doorstep/internal/phoneapp"
)

// TestHandler checks what the phone gets: each file with its content type,
// revalidated on every load (the service worker keeps the offline copy),
// ETags that answer 304, the manifest and worker scoped to the app.
func TestHandler(t *testing.T) {
	srv := httptest.NewServer(phoneapp.Handler())
	defer srv.Close()
	get := func(t *testing.T, path string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(b)
	}
	for _, c := range []struct {
		path, ctype, contains string
	}{
		{"/app/", "text/html; charset=utf-8", `<script src="app.js" defer></script>`},
		{"/app/index.html", "text/html; charset=utf-8", `rel="manifest"`},
		{"/app/app.js", "text/javascript; charset=utf-8", "doorstep-record-v1"},
		{"/app/sw.js", "text/javascript; charset=utf-8", "doorstep-app-"},
		{"/app/style.css", "text/css; charset=utf-8", ".receipt"},
		{"/app/manifest.webmanifest", "application/manifest+json", `"display": "standalone"`},
		{"/app/icon.svg", "image/svg+xml", "<svg"},
	} {
		t.Run(c.path, func(t *testing.T) {
			resp, body := get(t, c.path)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != c.ctype {
				t.Errorf("Content-Type %q, want %q", got, c.ctype)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
				t.Errorf("Cache-Control %q, want no-cache", got)
			}
			if !strings.Contains(body, c.contains) {
				t.Errorf("body lacks %q", c.contains)
			}
			etag := resp.Header.Get("ETag")
			if etag == "" {
				t.Fatal("no ETag")
			}
			again, _ := get(t, c.path, "If-None-Match", etag)
			if again.StatusCode != http.StatusNotModified {
				t.Errorf("revalidation: %d, want 304", again.StatusCode)
			}
		})
	}
	resp, _ := get(t, "/app/sw.js")
	if got := resp.Header.Get("Service-Worker-Allowed"); got != "/app/" {
		t.Errorf("Service-Worker-Allowed %q", got)
	}
	_, manifest := get(t, "/app/manifest.webmanifest")
	var m struct{ StartURL, Scope string }
	if err := json.Unmarshal([]byte(strings.NewReplacer(`"start_url"`, `"StartURL"`, `"scope"`, `"Scope"`).Replace(manifest)), &m); err != nil {
		t.Fatal(err)
	}
	if m.StartURL != "./" || m.Scope != "./" {
		t.Errorf("manifest start_url %q scope %q, want the app's folder", m.StartURL, m.Scope)
	}
	for path, want := range map[string]int{"/app/nothing.js": 404, "/app/../go.mod": 404, "/app": 301} {
		if resp, _ := get(t, path); resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/app/", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %v %v, want 405", resp, err)
	}
}
