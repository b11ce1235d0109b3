// Package dashboard is the election committee's browser dashboard, served
// by tallyd under Path: the live overview of an election (what
// 'doorstep tally watch' shows in a terminal), pushed to the page with
// server-sent events, readable on a phone, in Chinese or English. Pages
// are html/template and the script and styles are static files embedded
// in the binary: there is no front-end build step, and no inline script
// (the pages are served with CSP default-src 'self').
//
// Sign-in fits how the committee key is kept: the key stays in the
// committee's folder on its own machine, where 'doorstep committee
// dashboard' signs a sign-in token (callauth.SignInToken) and prints a
// link carrying it in its fragment, so it reaches neither server logs nor
// referrers. The page posts the token once; the server checks it as a
// signed call (the key, the two-minute window, the nonce used once, the
// committee or a granted auditor) and answers with a session cookie,
// HttpOnly, Secure, SameSite=Strict, bound to that election and key, for
// SessionTTL. Access is checked again on every page and event stream and
// every RecheckEvery while a stream is open, so an auditor the committee
// revokes loses the dashboard at once. Nothing is shown without a session.
package dashboard

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/i18n"
	"github.com/doorstep-vote/doorstep/internal/watchview"
)

// Path is where the dashboard is mounted.
const Path = "/dashboard/"

// SignInPath is the page a sign-in link opens; the token follows it after
// "#".
const SignInPath = Path + "signin"

// Defaults of Config's durations.
const (
	SessionTTL    = 12 * time.Hour
	RecheckEvery  = 30 * time.Second
	EventInterval = time.Second
)

// Cookie names.
const (
	sessionCookie = "doorstep_dashboard"
	langCookie    = "doorstep_lang"
)

// Config is what the dashboard needs from the server.
type Config struct {
	// Watch follows an election's overview (server.Overviews.Watch): the
	// very stream WatchTally sends.
	Watch func(ctx context.Context, electionID string, fn func(*doorstepv1.ElectionOverview) error) error
	// SignIn checks a sign-in token's metadata (server.Server.SignIn).
	SignIn func(ctx context.Context, md metadata.MD) (callauth.Caller, error)
	// Access says whether a key may still read an election
	// (server.Server.ReadAccess).
	Access func(electionID, keyID string) error
	// Definition gives an election's titles and names.
	Definition func(electionID string) (*election.Definition, bool)
	Now        func() time.Time
	Logger     *slog.Logger
	// Insecure leaves the Secure attribute off the session cookie: only
	// for plain HTTP on loopback, where browsers would drop a Secure one.
	Insecure bool
	// SessionTTL and RecheckEvery; the defaults above when zero.
	SessionTTL, RecheckEvery time.Duration
	// EventInterval is the least time between two events to one browser
	// (EventInterval above when zero): a phone on mobile data gets the
	// latest overview once a second, not every one the server makes.
	EventInterval time.Duration
}

//go:embed web
var webFiles embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"t":   func(l i18n.Lang, key string, args ...any) string { return l.T(key, args...) },
	"pct": pctText,
	"row": func(label, unit, id string, b watchview.Bar) barRow { return barRow{label, unit, id, b} },
	"langName": func(l i18n.Lang) string {
		if l == i18n.EN {
			return "English"
		}
		return "中文"
	},
	"clock": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.Local().Format("01-02 15:04")
	},
}).ParseFS(webFiles, "web/templates/*.html"))

// barRow is one bar as the templates draw it.
type barRow struct {
	Label, Unit, ID string
	B               watchview.Bar
}

func pctText(p string) string {
	if p == "" {
		return "-"
	}
	return p + "%"
}

type handler struct {
	cfg      Config
	sessions sessions
	static   http.Handler

	// drawn is the last overview drawn for each election and language, as
	// an event: the browsers watching one election share it.
	drawnMu sync.Mutex
	drawn   map[string]drawnEvent // guarded by drawnMu
}

type drawnEvent struct {
	ov    *doorstepv1.ElectionOverview
	event []byte
}

// event is ov drawn as a server-sent event in l, drawn once for all the
// browsers watching it (Watch gives them the same overview).
func (h *handler) event(electionID string, ov *doorstepv1.ElectionOverview, def *election.Definition, l i18n.Lang) ([]byte, error) {
	key := electionID + "\x00" + string(l)
	h.drawnMu.Lock()
	defer h.drawnMu.Unlock()
	if d, ok := h.drawn[key]; ok && d.ov == ov {
		return d.event, nil
	}
	var html, ev bytes.Buffer
	if err := pages.ExecuteTemplate(&html, "live", pageData{Lang: l, View: watchview.Build(ov, def, l)}); err != nil {
		return nil, err
	}
	writeEvent(&ev, "overview", html.Bytes())
	if h.drawn == nil {
		h.drawn = make(map[string]drawnEvent)
	}
	h.drawn[key] = drawnEvent{ov: ov, event: ev.Bytes()}
	return ev.Bytes(), nil
}

// New returns the dashboard's handler, to be mounted at Path.
func New(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = SessionTTL
	}
	if cfg.RecheckEvery <= 0 {
		cfg.RecheckEvery = RecheckEvery
	}
	if cfg.EventInterval <= 0 {
		cfg.EventInterval = EventInterval
	}
	static, err := fs.Sub(webFiles, "web/static")
	if err != nil {
		panic(err) // the embedded folder is there at build time
	}
	h := &handler{cfg: cfg, static: http.StripPrefix(Path+"static/", http.FileServerFS(static))}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path+"{$}", h.page)
	mux.HandleFunc("GET "+SignInPath, h.signInPage)
	mux.HandleFunc("POST "+Path+"session", h.signIn)
	mux.HandleFunc("POST "+Path+"signout", h.signOut)
	mux.HandleFunc("GET "+Path+"events", h.events)
	mux.HandleFunc("GET "+Path+"static/{file}", h.staticFile)
	return mux
}

// lang picks the page's language: ?lang= (and remembers it), the
// remembered one, the browser's, else Chinese.
func (h *handler) lang(w http.ResponseWriter, r *http.Request) i18n.Lang {
	if q := r.URL.Query().Get("lang"); q != "" {
		if l, err := i18n.Parse(q); err == nil {
			http.SetCookie(w, &http.Cookie{Name: langCookie, Value: string(l), Path: Path, MaxAge: 365 * 24 * 3600,
				Secure: !h.cfg.Insecure, SameSite: http.SameSiteStrictMode})
			return l
		}
	}
	if c, err := r.Cookie(langCookie); err == nil {
		if l, err := i18n.Parse(c.Value); err == nil {
			return l
		}
	}
	return i18n.FromAcceptLanguage(r.Header.Get("Accept-Language"), i18n.ZH)
}

// session returns the request's live session, with access still granted.
func (h *handler) session(r *http.Request) (string, session, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return "", session{}, errNoSession
	}
	sess, ok := h.sessions.get(c.Value, h.cfg.Now())
	if !ok {
		return "", session{}, errNoSession
	}
	if err := h.cfg.Access(sess.electionID, sess.keyID); err != nil {
		h.sessions.end(c.Value)
		return "", session{}, err
	}
	return c.Value, sess, nil
}

var errNoSession = errors.New("no session")

// pageData is what the pages render.
type pageData struct {
	Lang       i18n.Lang
	Langs      []i18n.Lang
	ElectionID string
	Title      string
	Message    string
	View       *watchview.View
	Events     string
}

func (h *handler) render(w http.ResponseWriter, code int, name string, d pageData) {
	var buf bytes.Buffer
	if err := pages.ExecuteTemplate(&buf, name, d); err != nil {
		h.cfg.Logger.Error("dashboard: render page", "page", name, "err", err)
		http.Error(w, "the dashboard could not draw this page; the server logged why", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	w.Write(buf.Bytes())
}

// page is the dashboard itself: the overview as it is now, drawn on the
// server, which the script then keeps live.
func (h *handler) page(w http.ResponseWriter, r *http.Request) {
	l := h.lang(w, r)
	d := pageData{Lang: l, Langs: i18n.Langs}
	_, sess, err := h.session(r)
	if err != nil {
		d.Message = l.T("dash.need_signin")
		if !errors.Is(err, errNoSession) {
			d.Message = l.T("dash.access_ended")
		}
		h.render(w, http.StatusUnauthorized, "signedout", d)
		return
	}
	d.ElectionID = sess.electionID
	def, _ := h.cfg.Definition(sess.electionID)
	if def != nil {
		d.Title = def.Title
	}
	// The first overview, so the page reads right before the script runs.
	c, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	errStop := errors.New("got one")
	err = h.cfg.Watch(c, sess.electionID, func(ov *doorstepv1.ElectionOverview) error {
		d.View = watchview.Build(ov, def, l)
		return errStop
	})
	if d.View == nil {
		h.cfg.Logger.Warn("dashboard: read the overview", "election", sess.electionID, "err", err)
		http.Error(w, l.T("dash.unavailable"), http.StatusServiceUnavailable)
		return
	}
	d.Events = Path + "events?lang=" + url.QueryEscape(string(l))
	h.render(w, http.StatusOK, "page", d)
}

func (h *handler) signInPage(w http.ResponseWriter, r *http.Request) {
	l := h.lang(w, r)
	h.render(w, http.StatusOK, "signin", pageData{Lang: l, Langs: i18n.Langs})
}

// signIn exchanges a sign-in token, once, for a session cookie.
func (h *handler) signIn(w http.ResponseWriter, r *http.Request) {
	l := h.lang(w, r)
	if !sameOrigin(r) {
		http.Error(w, l.T("dash.signin_elsewhere"), http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, callauth.MaxTokenBytes+1))
	if err != nil {
		http.Error(w, l.T("dash.signin_bad"), http.StatusBadRequest)
		return
	}
	md, err := callauth.ParseSignInToken(strings.TrimSpace(string(body)))
	if err != nil {
		http.Error(w, l.T("dash.signin_bad"), http.StatusBadRequest)
		return
	}
	c, err := h.cfg.SignIn(r.Context(), md)
	if err != nil {
		h.cfg.Logger.Info("dashboard: sign-in refused", "err", err)
		http.Error(w, l.T("dash.signin_refused", statusMessage(err)), http.StatusUnauthorized)
		return
	}
	id, err := h.sessions.add(session{electionID: c.ElectionID, keyID: c.KeyID, expires: h.cfg.Now().Add(h.cfg.SessionTTL)}, h.cfg.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: Path, MaxAge: int(h.cfg.SessionTTL / time.Second),
		HttpOnly: true, Secure: !h.cfg.Insecure, SameSite: http.SameSiteStrictMode})
	h.cfg.Logger.Info("dashboard: signed in", "election", c.ElectionID, "key", c.KeyID)
	w.WriteHeader(http.StatusNoContent)
}

// statusMessage is the server's own words for a refusal.
func statusMessage(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Message()
	}
	return err.Error()
}

// sameOrigin reports whether a browser's POST comes from a page of this
// server (Fetch Metadata or Origin), so no other site can post a token.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true // not a browser's cross-site request
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

func (h *handler) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		h.sessions.end(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: Path, MaxAge: -1, HttpOnly: true, Secure: !h.cfg.Insecure, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, Path, http.StatusSeeOther)
}

// events streams the overview as server-sent events: each is the page's
// live part drawn anew, from the same shared overview WatchTally sends. A
// slow browser gets the latest overview, never a backlog. The stream ends
// when the session expires or the key loses access.
func (h *handler) events(w http.ResponseWriter, r *http.Request) {
	l := h.lang(w, r)
	id, sess, err := h.session(r)
	if err != nil {
		http.Error(w, l.T("dash.need_signin"), http.StatusUnauthorized)
		return
	}
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming is not supported on this connection", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl.Flush()

	ctx, cancel := context.WithCancel(r.Context())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // ends the stream when access or the session does
		defer wg.Done()
		h.watchAccess(ctx, cancel, id, sess)
	}()
	defer func() { cancel(); wg.Wait() }()
	def, _ := h.cfg.Definition(sess.electionID)
	first := true
	err = h.cfg.Watch(ctx, sess.electionID, func(ov *doorstepv1.ElectionOverview) error {
		// A revocation is a change too: it ends the stream before the
		// next overview.
		if !first {
			if err := h.cfg.Access(sess.electionID, sess.keyID); err != nil {
				h.sessions.end(id)
				return err
			}
		}
		first = false
		ev, err := h.event(sess.electionID, ov, def, l)
		if err != nil {
			return err
		}
		if _, err := w.Write(ev); err != nil {
			return err
		}
		fl.Flush()
		// Pause before the next: Watch then gives the latest overview,
		// whatever came in between.
		t := time.NewTimer(h.cfg.EventInterval)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		return nil
	})
	if err != nil && ctx.Err() == nil {
		h.cfg.Logger.Info("dashboard: event stream ended", "election", sess.electionID, "err", err)
	}
}

// watchAccess cancels when the session expires or its key loses access,
// checking every RecheckEvery, until ctx ends.
func (h *handler) watchAccess(ctx context.Context, cancel context.CancelFunc, id string, sess session) {
	t := time.NewTicker(h.cfg.RecheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, ok := h.sessions.get(id, h.cfg.Now()); !ok {
			cancel()
			return
		}
		if err := h.cfg.Access(sess.electionID, sess.keyID); err != nil {
			h.sessions.end(id)
			cancel()
			return
		}
	}
}

// writeEvent writes one server-sent event; data may span lines.
func writeEvent(w io.Writer, name string, data []byte) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "event: %s\n", name)
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		b.WriteString("data: ")
		b.Write(bytes.TrimSuffix(line, []byte("\r")))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// staticFile serves the script and styles, which hold nothing secret.
func (h *handler) staticFile(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	h.static.ServeHTTP(w, r)
}
