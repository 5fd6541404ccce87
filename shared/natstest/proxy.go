package natstest

import (
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP to a NATS server, so that a test can cut one client off
// while the server and its other clients go on. Cut, it drops every
// connection and refuses new ones, as a partition that resets connections;
// paused, it forwards nothing and drops nothing, as a partition that
// silently loses packets (TCP keeps what it could not send and sends it once
// the path is back).
type Proxy struct {
	ln       net.Listener
	upstream string

	mu      sync.Mutex
	cut     bool
	paused  bool
	resumed *sync.Cond
	open    []net.Conn
}

// NewProxy forwards a loopback port to upstream (host:port) until the test
// ends.
func NewProxy(tb testing.TB, upstream string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &Proxy{ln: ln, upstream: upstream}
	p.resumed = sync.NewCond(&p.mu)
	go p.accept()
	tb.Cleanup(func() {
		ln.Close()
		p.SetPaused(false)
		p.SetCut(true)
	})
	return p
}

// URL is the nats:// URL clients connect to instead of the server's.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.mu.Unlock()
			c.Close()
			continue
		}
		u, err := net.Dial("tcp", p.upstream)
		if err != nil {
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.open = append(p.open, c, u)
		p.mu.Unlock()
		go p.pipe(u, c)
		go p.pipe(c, u)
	}
}

// pipe copies src to dst, holding each read while the proxy is paused.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		for p.paused {
			p.resumed.Wait()
		}
		p.mu.Unlock()
		if _, err := dst.Write(buf[:n]); err != nil {
			src.Close()
			return
		}
	}
}

// SetCut cuts (true) or restores (false) the path.
func (p *Proxy) SetCut(cut bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = cut
	if cut {
		for _, c := range p.open {
			c.Close()
		}
		p.open = nil
	}
}

// SetPaused holds (true) or releases (false) everything on the path.
func (p *Proxy) SetPaused(paused bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = paused
	p.resumed.Broadcast()
}
