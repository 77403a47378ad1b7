// Package pipenet is an in-memory network for tests: a [net.Listener] whose
// connections are [net.Pipe] pairs made by its Dial method. It lets net/http
// serve and be called inside a testing/synctest bubble, where a goroutine
// blocked on a real socket (even loopback) is not durably blocked, so the
// bubble's fake clock never advances; a goroutine blocked on a net.Pipe
// made in the bubble waits on the bubble's channels and is.
//
// Everything (the listener, the server and the client using it) must be
// created inside the bubble that uses it.
package pipenet

import (
	"context"
	"net"
	"net/http"
	"sync"
)

// Listener hands out the server ends of the pipes that [Listener.Dial]
// makes. Its zero value is not usable; call [Listen].
type Listener struct {
	conns     chan net.Conn
	done      chan struct{}
	closeOnce sync.Once
}

var _ net.Listener = (*Listener)(nil)

// Listen returns an open listener.
func Listen() *Listener {
	return &Listener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// Accept waits for the next [Listener.Dial] and returns the server end of
// its pipe, or [net.ErrClosed] once the listener is closed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close makes Accept and Dial fail from now on. Connections already made
// stay open: their owners (http.Server.Close, Transport.CloseIdleConnections)
// close them, as they would TCP ones. Close is safe to call more than once.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return nil
}

// Addr returns a placeholder address: the network has no addresses.
func (l *Listener) Addr() net.Addr { return pipeAddr{} }

// Dial connects to the listener, whatever network and address say, and
// returns the client end of a new pipe once Accept has taken the other end.
// Its signature is that of http.Transport.DialContext. It fails when ctx
// ends first or the listener is closed, as a refused TCP connection would.
func (l *Listener) Dial(ctx context.Context, _, _ string) (net.Conn, error) {
	server, client := net.Pipe()
	select {
	case l.conns <- server:
		return client, nil
	case <-l.done:
		_ = server.Close()
		_ = client.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: pipeAddr{}, Err: net.ErrClosed}
	case <-ctx.Done():
		_ = server.Close()
		_ = client.Close()
		return nil, &net.OpError{Op: "dial", Net: "pipe", Addr: pipeAddr{}, Err: ctx.Err()}
	}
}

// pipeAddr is the address of every end: net.Pipe's own ends say "pipe" too.
type pipeAddr struct{}

func (pipeAddr) Network() string { return "pipe" }
func (pipeAddr) String() string  { return "pipe" }

// ServeHTTP serves h over a new Listener and returns the only HTTP client
// that reaches it (whatever the URL's host; it keeps idle connections and
// follows no redirects), and stop, which closes the server and the
// client's idle connections and waits for the server to end, so that no
// goroutine outlives a testing/synctest bubble.
func ServeHTTP(h http.Handler) (client *http.Client, stop func()) {
	ln := Listen()
	hs := &http.Server{Handler: h}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln) // ErrServerClosed once stop runs
	}()
	tr := &http.Transport{DialContext: ln.Dial, MaxIdleConnsPerHost: 128}
	client = &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return client, func() {
		_ = hs.Close()
		tr.CloseIdleConnections()
		<-served
	}
}
