// Package hlc is a hybrid logical clock: wall milliseconds in the high 48
// bits and a counter in the low 16. Values only grow, even when the wall
// clock steps back, and they move past any value observed from elsewhere,
// so records made after a sync sort after what the device saw.
package hlc

import (
	"sync"
	"time"
)

// Clock issues hybrid clock values. The zero value is not usable; use New.
type Clock struct {
	now func() time.Time

	mu   sync.Mutex
	last uint64 // guarded by mu
}

// New returns a clock that starts after last (the value persisted by the
// owner, or 0).
func New(now func() time.Time, last uint64) *Clock {
	return &Clock{now: now, last: last}
}

// Now returns a value greater than every value returned or observed before.
func (c *Clock) Now() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	wall := uint64(c.now().UnixMilli()) << 16
	if wall > c.last {
		c.last = wall
	} else {
		c.last++
	}
	return c.last
}

// Observe moves the clock past a value seen from another clock.
func (c *Clock) Observe(v uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v > c.last {
		c.last = v
	}
}

// Last returns the latest value issued or observed, for persisting.
func (c *Clock) Last() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Wall returns the wall-clock part of a value.
func Wall(v uint64) time.Time { return time.UnixMilli(int64(v >> 16)) }
