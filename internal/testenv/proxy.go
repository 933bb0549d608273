package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy forwards TCP to a target (Redis) and can be cut and restored, to take it "down",
// or made to lose replies: the request reaches the target and runs there, and the
// connection is closed instead of the answer coming back.
type Proxy struct {
	Addr   string
	target string
	// Drop, when set, is asked before each chunk the target sends back; true loses the
	// chunk and closes the connection.
	drop    atomic.Pointer[func([]byte) bool]
	mu      sync.Mutex
	ln      net.Listener
	conns   []net.Conn
	Dropped atomic.Int64
}

// NewProxy listens on a free loopback port and forwards to target until the test ends.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	p := &Proxy{target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p.Addr = ln.Addr().String()
	p.serve(ln)
	tb.Cleanup(p.Down)
	return p
}

// DropReplies makes the proxy lose the replies (each chunk the target sends back) for
// which drop says true, closing that connection (nil: lose none).
func (p *Proxy) DropReplies(drop func(reply []byte) bool) {
	if drop == nil {
		p.drop.Store(nil)
		return
	}
	p.drop.Store(&drop)
}

func (p *Proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			r, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, r)
			p.mu.Unlock()
			go func() { io.Copy(r, c); r.Close() }()
			go p.back(c, r)
		}
	}()
}

// back copies the target's answers to the client, losing those Drop picks.
func (p *Proxy) back(c, r net.Conn) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if d := p.drop.Load(); d != nil && (*d)(buf[:n]) {
				p.Dropped.Add(1)
				r.Close()
				return
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				r.Close()
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Down closes the listener and every connection.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Up listens again on the same address.
func (p *Proxy) Up(tb testing.TB) {
	tb.Helper()
	ln, err := net.Listen("tcp", p.Addr)
	if err != nil {
		tb.Fatal(err)
	}
	p.serve(ln)
}
