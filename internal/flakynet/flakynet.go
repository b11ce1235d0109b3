// Package flakynet is a TCP proxy on loopback whose link can be taken down,
// brought back and made to drop connections at random: the mobile network
// of a rainy stairwell, for the demo and for tests that sync through it.
package flakynet

import (
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
)

// Proxy forwards connections from its own loopback address to a target.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	up     bool                  // guarded by mu
	conns  map[net.Conn]struct{} // guarded by mu: both sides of every live pair
	rng    *rand.Rand            // guarded by mu
	cutMax int                   // guarded by mu: cut after a random 1..cutMax bytes; 0 never
	cuts   int                   // guarded by mu

	wg   sync.WaitGroup
	done chan struct{}
}

// Listen starts a proxy to target on 127.0.0.1 and a free port. The link
// starts up.
func Listen(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, up: true, conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is where clients connect.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// SetUp brings the link up or takes it down. Down closes every connection
// and refuses new ones, as a phone losing signal does.
func (p *Proxy) SetUp(up bool) {
	p.mu.Lock()
	p.up = up
	var cut []net.Conn
	if !up {
		for c := range p.conns {
			cut = append(cut, c)
		}
	}
	p.mu.Unlock()
	for _, c := range cut {
		c.Close()
	}
}

// Up reports whether the link is up.
func (p *Proxy) Up() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.up
}

// SetChaos makes each forwarded direction of a connection drop after a
// random number of bytes between 1 and maxBytes (0 turns it off), drawn
// from r so runs can be replayed.
func (p *Proxy) SetChaos(r *rand.Rand, maxBytes int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rng, p.cutMax = r, maxBytes
}

// Cuts is how many connections chaos has dropped.
func (p *Proxy) Cuts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts
}

// Close stops the proxy and every connection through it.
func (p *Proxy) Close() error {
	close(p.done)
	err := p.ln.Close()
	p.SetUp(false)
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		up := p.up
		p.mu.Unlock()
		if !up {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	if !p.up {
		p.mu.Unlock()
		client.Close()
		server.Close()
		return
	}
	p.conns[client], p.conns[server] = struct{}{}, struct{}{}
	limitA, limitB := p.limit(), p.limit()
	p.mu.Unlock()
	var pair sync.WaitGroup
	pair.Add(2)
	go func() { defer pair.Done(); p.pipe(server, client, limitA) }()
	go func() { defer pair.Done(); p.pipe(client, server, limitB) }()
	pair.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// limit must be called with mu held.
func (p *Proxy) limit() int64 {
	if p.cutMax <= 0 || p.rng == nil {
		return -1
	}
	return 1 + p.rng.Int64N(int64(p.cutMax))
}

// pipe copies src to dst, cutting both after limit bytes (never if < 0).
func (p *Proxy) pipe(dst, src net.Conn, limit int64) {
	defer dst.Close()
	defer src.Close()
	if limit < 0 {
		io.Copy(dst, src)
		return
	}
	n, _ := io.CopyN(dst, src, limit)
	if n == limit {
		p.mu.Lock()
		p.cuts++
		p.mu.Unlock()
	}
}
