package cli_test

import (
	"crypto/ed25519"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/callauth"
	"github.com/doorstep-vote/doorstep/internal/committee"
	"github.com/doorstep-vote/doorstep/internal/election"
	"github.com/doorstep-vote/doorstep/internal/rules"
	"github.com/doorstep-vote/doorstep/internal/signedtest"
)

var linkRE = regexp.MustCompile(`(?m)^  (https?://\S+)$`)

// checkLink parses the sign-in link in out and checks that its token is
// a sign-in for electionID signed by pub as keyID, at about now.
func checkLink(t *testing.T, out, base, electionID, keyID string, pub ed25519.PublicKey) *url.URL {
	t.Helper()
	m := linkRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no link in:\n%s", out)
	}
	u, err := url.Parse(m[1])
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host; got != base || u.Path != "/dashboard/signin" || u.Fragment == "" {
		t.Errorf("link %s: want %s/dashboard/signin#TOKEN", u, base)
	}
	md, err := callauth.ParseSignInToken(u.Fragment)
	if err != nil {
		t.Fatal(err)
	}
	hash, err := callauth.RequestHash(callauth.SignInRequest(electionID))
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := callauth.Check(md, callauth.SignInMethod, hash, pub, time.Now())
	if err != nil {
		t.Fatalf("the link's token does not check: %v", err)
	}
	if c.ElectionID != electionID || c.KeyID != keyID {
		t.Errorf("token for %+v, want election %s key %s", c, electionID, keyID)
	}
	// Signed for sign-in only: no service method accepts it.
	if _, _, err := callauth.Check(md, "/doorstep.v1.ElectionService/GetTally", hash, pub, time.Now()); err == nil {
		t.Error("the sign-in token checks as a signature of another method")
	}
	return u
}

// TestDashboardLinks: 'doorstep committee dashboard' and 'doorstep audit
// dashboard' print a link whose token the key signed on this machine, for
// the election, for sign-in only.
func TestDashboardLinks(t *testing.T) {
	e := newCmEnv(t)
	e.mustRun(t, "committee", "init")
	key, err := committee.LoadKey(filepath.Join(e.config, "committee"))
	if err != nil {
		t.Fatal(err)
	}
	out := e.mustRun(t, "committee", "dashboard", "--election", exampleElection, "--web", "https://tally.example.org:7443", "--lang", "en")
	u := checkLink(t, out, "https://tally.example.org:7443", exampleElection, election.CommitteeAuthor, key.Public().(ed25519.PublicKey))
	if u.Query().Get("lang") != "en" {
		t.Errorf("link %s: want lang=en", u)
	}
	cmWant(t, out, "within 2m0s", "once")

	// Without --web: the host of DOORSTEP_SERVER on tallyd's web port.
	e.vars["DOORSTEP_SERVER"] = "10.0.0.5:7070"
	out = e.mustRun(t, "committee", "dashboard", "--election", exampleElection)
	checkLink(t, out, "https://10.0.0.5:7443", exampleElection, election.CommitteeAuthor, key.Public().(ed25519.PublicKey))

	// An auditor's own key file.
	aud := signedtest.NewKey("auditor")
	file := filepath.Join(t.TempDir(), "auditor.key")
	if err := os.WriteFile(file, aud, 0o600); err != nil {
		t.Fatal(err)
	}
	out = e.mustRun(t, "audit", "dashboard", "--election", exampleElection, "--key", file, "--web", "https://tally.example.org:7443")
	id := rules.AuditorID(aud.Public().(ed25519.PublicKey))
	cmWant(t, out, "Auditor "+id)
	checkLink(t, out, "https://tally.example.org:7443", exampleElection, id, aud.Public().(ed25519.PublicKey))

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"committee", "dashboard"}, "--election is required"},
		{[]string{"committee", "dashboard", "--election", exampleElection, "--web", "ftp://x"}, "--web"},
		{[]string{"committee", "dashboard", "--election", exampleElection, "--lang", "fr"}, "--lang"},
		{[]string{"audit", "dashboard", "--election", exampleElection}, "--key is required"},
	} {
		code, _, errs := e.run(t, tc.args...)
		if code == 0 || !strings.Contains(errs, tc.want) {
			t.Errorf("doorstep %s: exit %d, stderr %q; want it refused naming %s", strings.Join(tc.args, " "), code, errs, tc.want)
		}
	}
}
