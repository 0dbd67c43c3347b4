// Package faulttest makes dependencies fail on purpose in tests: a TCP
// proxy that can cut every connection through it, and a redis-server of the
// test's own that can be killed and started again.
package faulttest

import (
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy forwards TCP connections from its own loopback address to a target.
// Cut drops every connection through it and makes it drop new ones at once
// (with a reset, like a host that refuses them) until Resume: to clients
// the target looks down, while the target itself keeps running, so tests
// can take away a shared PostgreSQL or a broker without stopping it.
// Blackhole is the network partition: new connections are accepted and
// never answered, so clients find out only through their own timeouts.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	mode  mode
	conns map[net.Conn]struct{} // both ends of every open forwarding, and held connections
	wg    sync.WaitGroup        // the accept loop and every forwarding goroutine
}

type mode int

const (
	forwarding mode = iota
	refusing
	silent
)

// NewProxy starts a proxy to target (host:port). It stops when the test
// ends, closing every connection.
func NewProxy(tb testing.TB, target string) *Proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faulttest: proxy listen: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go p.accept()
	tb.Cleanup(p.close)
	return p
}

// NewURLProxy starts a proxy to the host of rawURL (a database or Redis
// URL) and returns it with rawURL pointed at the proxy instead.
func NewURLProxy(tb testing.TB, rawURL string) (*Proxy, string) {
	tb.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		tb.Fatalf("faulttest: parse %q: %v", rawURL, err)
	}
	p := NewProxy(tb, u.Host)
	u.Host = p.Addr()
	return p, u.String()
}

// Addr is the proxy's host:port, for clients to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every connection through the proxy and refuses new ones until
// Resume.
func (p *Proxy) Cut() { p.set(refusing) }

// Blackhole closes every connection through the proxy and, until Resume,
// accepts new ones but never answers them.
func (p *Proxy) Blackhole() { p.set(silent) }

// Resume forwards new connections again; connections held by Blackhole are
// reset, so their clients find out at once.
func (p *Proxy) Resume() { p.set(forwarding) }

// set switches to m, resetting every connection unless m is forwarding, and
// every held one when it is.
func (p *Proxy) set(m mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if m != forwarding || p.mode == silent {
		for c := range p.conns {
			reset(c)
		}
		clear(p.conns)
	}
	p.mode = m
}

func (p *Proxy) close() {
	p.ln.Close()
	p.set(refusing)
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		} else if err != nil {
			continue
		}
		p.wg.Add(1)
		go p.forward(client)
	}
}

// forward connects client to the target and copies both ways until either
// side closes or Cut closes both.
func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	p.mu.Lock()
	switch p.mode {
	case refusing:
		p.mu.Unlock()
		reset(client)
		return
	case silent:
		p.conns[client] = struct{}{} // held until the mode changes
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		reset(client)
		return
	}
	p.mu.Lock()
	if p.mode != forwarding { // Cut or Blackhole ran while we dialled
		p.mu.Unlock()
		reset(client)
		reset(server)
		return
	}
	p.conns[client] = struct{}{}
	p.conns[server] = struct{}{}
	p.mu.Unlock()

	var copies sync.WaitGroup
	copies.Add(2)
	pipe := func(dst, src net.Conn) {
		defer copies.Done()
		_, _ = io.Copy(dst, src)
		// One direction ended: end the other too, as a real peer would.
		dst.Close()
		src.Close()
	}
	go pipe(server, client)
	go pipe(client, server)
	copies.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// reset closes c with a TCP reset rather than an orderly close, so the peer
// sees "connection reset" as it would from a crashed or unreachable host.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

// NewProxiedListener listens on a free loopback port behind a new proxy and
// returns a listener that reports the proxy's address as its own. A server
// that advertises its listener's address, as a Kafka broker does in its
// metadata, then sends its clients back through the proxy rather than
// around it.
func NewProxiedListener(tb testing.TB) (net.Listener, *Proxy) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("faulttest: listen: %v", err)
	}
	tb.Cleanup(func() { ln.Close() })
	p := NewProxy(tb, ln.Addr().String())
	return advertisedListener{Listener: ln, addr: p.ln.Addr()}, p
}

type advertisedListener struct {
	net.Listener
	addr net.Addr
}

func (l advertisedListener) Addr() net.Addr { return l.addr }
