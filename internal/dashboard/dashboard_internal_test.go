package dashboard

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/i18n"
)

func TestWriteEvent(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
	}{
		{"one line", "<p>1</p>", "event: overview\ndata: <p>1</p>\n\n"},
		{"lines", "<p>\n1\r\n</p>", "event: overview\ndata: <p>\ndata: 1\ndata: </p>\n\n"},
		{"blank lines stay data", "a\n\nb", "event: overview\ndata: a\ndata: \ndata: b\n\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeEvent(&b, "overview", []byte(tc.data)); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestSessions(t *testing.T) {
	var s sessions
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	id, err := s.add(session{electionID: "e", keyID: "committee", expires: now.Add(time.Hour)}, now)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := s.add(session{electionID: "e", keyID: "committee", expires: now.Add(time.Hour)}, now)
	if len(id) < 40 || id == other {
		t.Errorf("session ids %q and %q: want long and random", id, other)
	}
	if got, ok := s.get(id, now.Add(59*time.Minute)); !ok || got.electionID != "e" {
		t.Errorf("live session: %+v %v", got, ok)
	}
	if _, ok := s.get(id, now.Add(time.Hour)); ok {
		t.Error("an expired session is still live")
	}
	if _, ok := s.get("made-up", now); ok {
		t.Error("a made-up id is a session")
	}
	s.end(other)
	if _, ok := s.get(other, now); ok {
		t.Error("an ended session is still live")
	}
	// Full: expired sessions make room, live ones do not.
	for range maxSessions {
		if _, err := s.add(session{expires: now.Add(time.Minute)}, now); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.add(session{expires: now.Add(time.Hour)}, now); err != errFull {
		t.Errorf("one more when full: %v, want errFull", err)
	}
	if _, err := s.add(session{expires: now.Add(time.Hour)}, now.Add(2*time.Minute)); err != nil {
		t.Errorf("one more when the others have expired: %v", err)
	}
}

func TestLang(t *testing.T) {
	h := &handler{}
	for _, tc := range []struct {
		name, query, cookie, accept string
		want                        i18n.Lang
		remembered                  bool
	}{
		{"default", "", "", "", i18n.ZH, false},
		{"browser", "", "", "en-GB,en;q=0.9", i18n.EN, false},
		{"remembered", "", "en", "zh-CN", i18n.EN, false},
		{"switch", "zh", "en", "en", i18n.ZH, true},
		{"unknown switch", "fr", "", "en", i18n.EN, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, Path+"?lang="+tc.query, nil)
			if tc.cookie != "" {
				r.AddCookie(&http.Cookie{Name: langCookie, Value: tc.cookie})
			}
			r.Header.Set("Accept-Language", tc.accept)
			w := httptest.NewRecorder()
			if got := h.lang(w, r); got != tc.want {
				t.Errorf("lang = %s, want %s", got, tc.want)
			}
			if set := len(w.Result().Cookies()) > 0; set != tc.remembered {
				t.Errorf("remembered: %v, want %v", set, tc.remembered)
			}
		})
	}
}
