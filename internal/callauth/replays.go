package callauth

import (
	"errors"
	"sync"
	"time"
)

// ErrBusy means the replay cache is full of signatures still inside their
// window: the server takes no more signed calls until some expire.
var ErrBusy = errors.New("the server is taking too many signed calls at once; try again in a moment")

// Replays remembers the nonces of signed calls until their window ends, so
// that a signature is accepted once. It holds at most Max nonces: when it
// is full of live ones it refuses new calls rather than forget one, which
// would let a captured call be replayed. It is safe for concurrent use.
type Replays struct {
	Max int // 0 means 1<<18

	mu   sync.Mutex
	seen map[string]time.Time // guarded by mu: key id and nonce → end of its window
}

// Use records a call's nonce, first used at now, and fails with ErrReplay
// if it was used before within its window, or with ErrBusy.
func (r *Replays) Use(keyID, nonce string, now time.Time) error {
	max := r.Max
	if max <= 0 {
		max = 1 << 18
	}
	k := keyID + "\x00" + nonce
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seen == nil {
		r.seen = make(map[string]time.Time)
	}
	if until, ok := r.seen[k]; ok && now.Before(until) {
		return ErrReplay
	}
	if len(r.seen) >= max {
		for n, until := range r.seen {
			if !now.Before(until) {
				delete(r.seen, n)
			}
		}
		if len(r.seen) >= max {
			return ErrBusy
		}
	}
	// A call's time may be up to Window ahead of now, and is good until
	// Window after that.
	r.seen[k] = now.Add(2 * Window)
	return nil
}
