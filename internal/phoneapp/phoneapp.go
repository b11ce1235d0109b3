// Package phoneapp is the canvasser's phone: an offline web app (a PWA)
// that tallyd serves under /app/. The app itself is TypeScript under web/,
// built by esbuild into web/dist, which is committed and embedded here, so
// a machine with only Go serves it. The app speaks Connect to tallyd's
// browser side and makes, signs and chains records exactly as api/SPEC.md
// says; this package only serves its files.
package phoneapp

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed web/dist
var dist embed.FS

// Path is where tallyd mounts the app.
const Path = "/app/"

// asset is one built file, read once at start.
type asset struct {
	body  []byte
	ctype string
	etag  string
}

// contentTypes names the files the build makes; anything else is not served.
var contentTypes = map[string]string{
	".html":        "text/html; charset=utf-8",
	".js":          "text/javascript; charset=utf-8",
	".css":         "text/css; charset=utf-8",
	".svg":         "image/svg+xml",
	".png":         "image/png",
	".webmanifest": "application/manifest+json",
	".json":        "application/json",
}

// Handler serves the app under Path: the page, its script and styles, the
// web app manifest and the service worker. Every answer is revalidated
// (no-cache with a content ETag): the service worker keeps the offline
// copy, and the browser's HTTP cache must never keep an old worker or page
// past an update.
func Handler() http.Handler {
	files := map[string]asset{}
	sub, err := fs.Sub(dist, "web/dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the folder
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return nil
		}
		b, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		files[p] = asset{body: b, ctype: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // embedded files always read
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, Path)
		if !ok {
			http.Redirect(w, r, Path, http.StatusMovedPermanently)
			return
		}
		if name == "" {
			name = "index.html"
		}
		a, ok := files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", "no-cache")
		h.Set("ETag", a.etag)
		if name == "sw.js" {
			// The worker controls the whole app, and only the app.
			h.Set("Service-Worker-Allowed", Path)
		}
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
	})
}
