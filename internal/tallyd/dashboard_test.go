package tallyd_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
	"github.com/doorstep-vote/doorstep/internal/browsertest"
	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/servercert"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
	"github.com/doorstep-vote/doorstep/internal/tallyd"
)

// dashElection is an open election on a tallyd serving the dashboard,
// with one enrolled device to push ballots.
type dashElection struct {
	*webElection
	sc  *scenarioElection
	dev *signedtest.Author
}

// newDashElection starts it over TLS, or over plain HTTP on loopback (a
// secure context for browsers) when plaintext is set.
func newDashElection(t *testing.T, plaintext bool) *dashElection {
	t.Helper()
	clk := &clock{t: base}
	h := startHarnessWith(t, tallyd.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", WebListen: "127.0.0.1:0", Now: clk.Now, Plaintext: plaintext}, clk)
	com := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "committee", base.Add(-time.Hour))
	sc := loadScenario(t, com.Public())
	h.create(t, com, com.Committee(t, signedtest.Define(sc.def)))
	h.committee(t, com.Committee(t, signedtest.Roster(sc.units)), com.Committee(t, signedtest.Open(sc.units)),
		com.Committee(t, signedtest.Grant("tok-a", "A")))
	dev := signedtest.NewAuthor(testElection, "", "canvasser A", base.Add(-time.Hour))
	h.enroll(t, dev, "tok-a")
	w := &webElection{h: h, com: com}
	tr := &http.Transport{ForceAttemptHTTP2: true}
	if plaintext {
		w.base = "http://" + h.srv.WebAddr()
	} else {
		tc, err := servercert.ClientConfig(h.srv.Pin(), "")
		if err != nil {
			t.Fatal(err)
		}
		tr.TLSClientConfig = tc
		w.base = "https://" + h.srv.WebAddr()
	}
	t.Cleanup(tr.CloseIdleConnections)
	w.http = &http.Client{Transport: tr}
	return &dashElection{webElection: w, sc: sc, dev: dev}
}

// token makes a sign-in token as a, at the server's time.
func (d *dashElection) token(t *testing.T, a *signedtest.Author, electionID string) string {
	t.Helper()
	tok, err := (&callauth.Signer{ElectionID: electionID, KeyID: a.ID, Key: a.Key, Now: d.h.clock.Now}).SignInToken()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// browser is an HTTP client with its own cookies, like one browser.
func (d *dashElection) browser(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: d.http.Transport, Jar: jar}
}

func (d *dashElection) signIn(t *testing.T, c *http.Client, tok string, header ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, d.base+"/dashboard/session", strings.NewReader(tok))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (d *dashElection) get(t *testing.T, c *http.Client, path string) (int, string) {
	t.Helper()
	resp, err := c.Get(d.base + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// events opens the event stream and returns a function reading the next
// overview's data, and one closing the stream.
func (d *dashElection) events(t *testing.T, c *http.Client) (next func() (string, error), stop func()) {
	t.Helper()
	cx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, err := http.NewRequestWithContext(cx, http.MethodGet, d.base+"/dashboard/events?lang=en", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("event stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	next = func() (string, error) {
		var data strings.Builder
		event := ""
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return "", err
			}
			line = strings.TrimSuffix(line, "\n")
			switch {
			case line == "" && event != "":
				if event != "overview" {
					return "", fmt.Errorf("event %q, want overview", event)
				}
				return data.String(), nil
			case strings.HasPrefix(line, "event: "):
				event = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				data.WriteString(strings.TrimPrefix(line, "data: ") + "\n")
			}
		}
	}
	return next, func() { cancel(); resp.Body.Close() }
}

// TestDashboardSignIn: nothing without a session; a sign-in token signed
// by the committee's or a granted auditor's key works once, within the
// window, for its election, and gives a cookie browsers keep to this
// server's dashboard; the event stream carries the live overview and ends
// when the committee revokes the auditor.
func TestDashboardSignIn(t *testing.T) {
	d := newDashElection(t, false)
	anon := d.browser(t)
	if code, body := d.get(t, anon, "/dashboard/"); code != http.StatusUnauthorized || strings.Contains(body, "units-counted") {
		t.Errorf("page without a session: %d, and it shows figures: %v", code, strings.Contains(body, "units-counted"))
	}
	if code, _ := d.get(t, anon, "/dashboard/events"); code != http.StatusUnauthorized {
		t.Errorf("event stream without a session: %d, want 401", code)
	}

	t.Run("refused tokens", func(t *testing.T) {
		c := d.browser(t)
		other := signedtest.NewAuthor(testElection, election.CommitteeAuthor, "not the committee", base)
		for _, tc := range []struct {
			name, tok string
			header    []string
			want      int
		}{
			{"garbage", "not-a-token", nil, http.StatusBadRequest},
			{"empty", "", nil, http.StatusBadRequest},
			{"too long", strings.Repeat("A", callauth.MaxTokenBytes+10), nil, http.StatusBadRequest},
			{"another election", d.token(t, d.com, "other-election"), nil, http.StatusUnauthorized},
			{"a device's key", d.token(t, d.dev, testElection), nil, http.StatusUnauthorized},
			{"a key posing as the committee", d.token(t, other, testElection), nil, http.StatusUnauthorized},
			{"posted from another site", d.token(t, d.com, testElection), []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
			{"posted from another origin", d.token(t, d.com, testElection), []string{"Origin", "https://evil.example"}, http.StatusForbidden},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if resp := d.signIn(t, c, tc.tok, tc.header...); resp.StatusCode != tc.want {
					t.Errorf("sign-in: %d, want %d", resp.StatusCode, tc.want)
				}
			})
		}
		if code, _ := d.get(t, c, "/dashboard/"); code != http.StatusUnauthorized {
			t.Errorf("after refused sign-ins the page answers %d, want 401", code)
		}
	})

	t.Run("expired", func(t *testing.T) {
		tok := d.token(t, d.com, testElection)
		d.h.clock.Set(d.h.clock.Now().Add(callauth.Window + time.Second))
		if resp := d.signIn(t, d.browser(t), tok); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("sign-in with a token past its window: %d, want 401", resp.StatusCode)
		}
	})

	t.Run("committee", func(t *testing.T) {
		c := d.browser(t)
		tok := d.token(t, d.com, testElection)
		resp := d.signIn(t, c, tok)
		if resp.StatusCode != http.StatusNoContent {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
		var ck *http.Cookie
		for _, k := range resp.Cookies() {
			if k.Name == "doorstep_dashboard" {
				ck = k
			}
		}
		if ck == nil || !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/dashboard/" || ck.MaxAge != 12*3600 || len(ck.Value) < 40 {
			t.Errorf("session cookie %+v; want HttpOnly, Secure, SameSite=Strict, Path=/dashboard/, 12 h, a long random value", ck)
		}
		// Once only: the same token again is a replay.
		if resp := d.signIn(t, d.browser(t), tok); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("the same token again: %d, want 401", resp.StatusCode)
		}
		code, body := d.get(t, c, "/dashboard/?lang=en")
		if code != http.StatusOK || !strings.Contains(body, `id="units-counted">0<`) || !strings.Contains(body, "Election dashboard") {
			t.Errorf("page: %d\n%s", code, body)
		}
		next, stop := d.events(t, c)
		defer stop()
		first, err := next()
		if err != nil || !strings.Contains(first, `id="units-counted">0<`) {
			t.Fatalf("first overview: %v\n%s", err, first)
		}
		d.h.push(t, d.dev.Ballot(t, d.sc.units[0].ID, "", signedtest.Yes(d.sc.rules)))
		second, err := next()
		if err != nil || !strings.Contains(second, `id="units-counted">1<`) {
			t.Fatalf("overview after a ballot: %v\n%s", err, second)
		}
		// Signing out ends the session.
		req, _ := http.NewRequest(http.MethodPost, d.base+"/dashboard/signout", nil)
		if resp, err := c.Do(req); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
		}
		if code, _ := d.get(t, c, "/dashboard/"); code != http.StatusUnauthorized {
			t.Errorf("after signing out: %d, want 401", code)
		}
	})

	t.Run("auditor revoked", func(t *testing.T) {
		aud := signedtest.NewAuthor(testElection, "", "auditor", base)
		aud.ID = rules.AuditorID(aud.Public())
		d.h.committee(t, d.com.Committee(t, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_AuditorGrant{
			AuditorGrant: &doorstepv1.AuditorGrant{PublicKey: aud.Public(), Label: "observer"}}}))
		c := d.browser(t)
		if resp := d.signIn(t, c, d.token(t, aud, testElection)); resp.StatusCode != http.StatusNoContent {
			t.Fatalf("auditor sign-in: %d", resp.StatusCode)
		}
		next, stop := d.events(t, c)
		defer stop()
		if _, err := next(); err != nil {
			t.Fatal(err)
		}
		d.h.committee(t, d.com.Committee(t, &doorstepv1.CommitteeAction{Action: &doorstepv1.CommitteeAction_AuditorRevocation{
			AuditorRevocation: &doorstepv1.AuditorRevocation{AuditorId: aud.ID, Reason: "left"}}}))
		if data, err := next(); err == nil {
			t.Errorf("the stream went on after the revocation:\n%s", data)
		}
		if code, body := d.get(t, c, "/dashboard/"); code != http.StatusUnauthorized || strings.Contains(body, "units-counted") {
			t.Errorf("page after the revocation: %d", code)
		}
	})
}

// TestDashboardInBrowser signs in to the dashboard through the link in a
// real headless Chromium, pushes ballots through real gRPC, and reads the
// figures change on the page.
func TestDashboardInBrowser(t *testing.T) {
	d := newDashElection(t, true)
	b := browsertest.Start(t)
	ctx, cancel := b.Tab(2 * time.Minute)
	defer cancel()

	// No session: the page shows no figures, the stream refuses.
	if err := chromedp.Do(ctx, chromedp.Navigate(d.base+"/dashboard/?lang=en")); err != nil {
		t.Fatal(err)
	}
	if msg, err := chromedp.Run(ctx, chromedp.Text("#msg")); err != nil || !strings.Contains(msg, "Sign in first") {
		t.Errorf("page without a session says %q (%v)", msg, err)
	}
	if none, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("units-counted") === null`)); err != nil || !none {
		t.Errorf("figures shown without a session (%v)", err)
	}
	if code, err := chromedp.Run(ctx, chromedp.Evaluate[int](`fetch("/dashboard/events").then(r => r.status)`, chromedp.EvalAwaitPromise)); err != nil || code != http.StatusUnauthorized {
		t.Errorf("event stream without a session: %d (%v), want 401", code, err)
	}

	// The link 'doorstep committee dashboard' prints.
	link := d.base + "/dashboard/signin?lang=en#" + d.token(t, d.com, testElection)
	if err := chromedp.Do(ctx, chromedp.Navigate(link), chromedp.WaitVisible("#units-counted")); err != nil {
		t.Fatal(err)
	}
	wait := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			page, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			t.Fatalf("%s: %v\npage:\n%s", what, err, page)
		}
	}
	wait("live", `document.getElementById("conn").className === "live"`)
	// text reads an element's text in the page at once: the live part may
	// be replaced by the next event between finding a node and reading it.
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`(function(){var e=document.querySelector(%q);return e?e.innerText:"(no "+%q+")"})()`, sel, sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}
	if got := text("#units-counted"); got != "0" {
		t.Errorf("units counted at first: %q, want 0", got)
	}
	if u, err := url.Parse(func() string { s, _ := chromedp.Run(ctx, chromedp.Location()); return s }()); err != nil || u.Fragment != "" || u.Path != "/dashboard/" {
		t.Errorf("after sign-in the address is %v; want /dashboard/ with no token left in it", u)
	}
	if cookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || strings.Contains(cookies, "doorstep_dashboard") {
		t.Errorf("the session cookie is readable by scripts: %q (%v)", cookies, err)
	}

	// Ballots arrive through real gRPC; the page follows.
	var last *doorstepv1.RecordResult
	for i := range 5 {
		res := d.h.push(t, d.dev.Ballot(t, d.sc.units[i].ID, "", signedtest.Yes(d.sc.rules), signedtest.Pick(d.sc.cand, d.sc.cands[0])))
		last = res[0]
	}
	wait("five units counted", `document.getElementById("units-counted").textContent === "5"`)
	if got, want := text("#checkpoint-size"), fmt.Sprint(last.GetLogIndex()+1); got < want && len(got) <= len(want) {
		t.Errorf("checkpoint on the page %s, want at least %s", got, want)
	}
	tally := d.h.tally(t, d.com.Key)
	var rulesItem *doorstepv1.ItemTally
	for _, it := range tally.GetItems() {
		if it.GetItemId() == d.sc.rules {
			rulesItem = it
		}
	}
	p := rulesItem.GetParticipating()
	wantPct := election.Percent(int64(p.GetHeadcount()), int64(tally.GetRosterHeadcount())) + "%"
	if got := text("#item-" + d.sc.rules + "-quorum-head .pct"); got != wantPct {
		t.Errorf("participation by owners on the page %q, want %q (the server's tally)", got, wantPct)
	}
	if got := text("#contested"); got != "0" {
		t.Errorf("contested %q, want 0", got)
	}
	if got := text(".devices tbody td"); got != "A" {
		t.Errorf("first device on the page %q, want the label the committee gave it, A", got)
	}
	browsertest.Screenshot(ctx, t, "dashboard.png")

	// In Chinese, by the switch on the page.
	if err := chromedp.Do(ctx, chromedp.Navigate(d.base+"/dashboard/?lang=zh"), chromedp.WaitVisible("#units-counted")); err != nil {
		t.Fatal(err)
	}
	// The live part is replaced as the stream's first event arrives, so
	// read it in the page, not by a node found a moment before.
	wait("the Chinese heading", `document.querySelector(".items h2").textContent === "表决事项"`)
	wait("five units counted in Chinese", `document.getElementById("units-counted").textContent === "5"`)
}
