package dashboard

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"sync"
	"time"
)

// maxSessions bounds the sessions held at once: far above a committee's
// and its auditors' browsers, far below what would hurt the server.
const maxSessions = 4096

// errFull is no room for one more session.
var errFull = errors.New("the dashboard has too many people signed in: sign out elsewhere, or try again later")

// session is one browser signed in to one election's dashboard, as the
// key that signed its sign-in token.
type session struct {
	electionID, keyID string
	expires           time.Time
}

// sessions are the signed-in browsers, by the random id their cookie
// carries. They live in memory only: a restart of tallyd signs everyone
// out, which costs a new link and keeps nothing secret on disk.
type sessions struct {
	mu sync.Mutex
	m  map[string]session // guarded by mu
}

// add starts a session and returns its id.
func (s *sessions) add(sess session, now time.Time) (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[string]session)
	}
	if len(s.m) >= maxSessions {
		for k, v := range s.m {
			if !now.Before(v.expires) {
				delete(s.m, k)
			}
		}
		if len(s.m) >= maxSessions {
			return "", errFull
		}
	}
	s.m[id] = sess
	return id, nil
}

// get returns the live session id names.
func (s *sessions) get(id string, now time.Time) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[id]
	if ok && !now.Before(sess.expires) {
		delete(s.m, id)
		return session{}, false
	}
	return sess, ok
}

// end ends the session id names.
func (s *sessions) end(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, id)
}
