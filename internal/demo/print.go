package demo

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// printer writes whole lines from many goroutines, each stamped with the
// time since the day began.
type printer struct {
	mu    sync.Mutex // guards w: one line at a time
	w     io.Writer
	now   func() time.Time
	start time.Time
}

// say prints one stamped line.
func (p *printer) say(format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	el := p.now().Sub(p.start).Seconds()
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "[%5.1fs] %s\n", el, line)
}

// plain prints one line as it is.
func (p *printer) plain(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, format+"\n", args...)
}
