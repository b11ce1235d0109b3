package store

import (
	"sync"

	doorstepv1 "github.com/doorstep-vote/doorstep/api/doorstep/v1"
)

// refusals counts the records refused at the door, by reason: they are in
// no log, so this is where the operator sees them. The counters are
// bounded by the number of reason codes.
type refusals struct {
	mu sync.Mutex
	n  map[doorstepv1.ReasonCode]int64 // guarded by mu
}

func (r *refusals) add(reason doorstepv1.ReasonCode) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = make(map[doorstepv1.ReasonCode]int64)
	}
	r.n[reason]++
}

// Refused returns how many records were refused at the door since the
// store opened, by reason.
func (s *Store) Refused() map[doorstepv1.ReasonCode]int64 {
	s.refused.mu.Lock()
	defer s.refused.mu.Unlock()
	out := make(map[doorstepv1.ReasonCode]int64, len(s.refused.n))
	for k, v := range s.refused.n {
		out[k] = v
	}
	return out
}
