package hlc_test

import (
	"testing"
	"time"

	"github.com/doorstep-vote/doorstep/internal/hlc"
)

func TestClockOnlyGrows(t *testing.T) {
	now := time.Unix(1000, 0)
	c := hlc.New(func() time.Time { return now }, 0)
	a := c.Now()
	b := c.Now() // same millisecond: the counter moves
	now = now.Add(-time.Hour)
	d := c.Now() // the wall clock stepped back
	if !(a < b && b < d) {
		t.Fatalf("values did not grow: %d %d %d", a, b, d)
	}
	if got := hlc.Wall(a); !got.Equal(time.Unix(1000, 0)) {
		t.Errorf("Wall = %v, want the wall time", got)
	}
	c.Observe(d + 1000)
	if e := c.Now(); e <= d+1000 {
		t.Errorf("after observing %d, Now gave %d", d+1000, e)
	}
	if c.Last() == 0 {
		t.Errorf("Last is zero")
	}
	restarted := hlc.New(func() time.Time { return now }, c.Last())
	if restarted.Now() <= c.Last() {
		t.Errorf("a clock restarted from Last went backwards")
	}
}
