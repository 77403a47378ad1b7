package fakeapi

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/internal/pipenet"
)

// NewTestServer starts [New](opts) on an httptest server that is closed
// (after [Server.Close]) by t.Cleanup. It returns the fake and the API base
// URL including /v1, e.g. "http://127.0.0.1:40123/v1".
func NewTestServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(func() {
		s.Close()
		ts.Close()
	})
	return s, ts.URL + "/v1"
}

// PipeHost is the host of [NewPipeServer]'s base URL. It never resolves:
// the client it returns dials the fake whatever the address.
const PipeHost = "fakeapi.invalid"

// NewPipeServer serves [New](opts) over an in-memory network of net.Pipe
// connections instead of loopback TCP, for tests inside a testing/synctest
// bubble (call it there): a goroutine blocked on a real socket is not
// durably blocked, so the bubble's clock would never advance, while one
// blocked on a pipe is. It returns the fake, the API base URL including /v1
// ("http://fakeapi.invalid/v1"), and the only client that reaches it: set it
// as bpapi.Options.HTTPClient. Like the default bpapi client it keeps idle
// connections and follows no redirects. t.Cleanup closes the fake, the
// server and the client's idle connections, so that no goroutine outlives
// the bubble.
func NewPipeServer(t testing.TB, opts Options) (*Server, string, *http.Client) {
	t.Helper()
	s := New(opts)
	client, stop := pipenet.ServeHTTP(s)
	t.Cleanup(func() {
		s.Close() // first: held POSTs answer, so their handlers return
		stop()
	})
	return s, "http://" + PipeHost + "/v1", client
}

// Clock is a test clock for [Options.Now]: real time shifted by an offset
// that [Clock.Advance] moves forward, so that time still flows (runs get
// distinct createdAt values) while tests can jump ahead, e.g. past the
// expiry of media URLs. The zero value follows real time.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now returns the shifted time; pass it as Options.Now.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}
