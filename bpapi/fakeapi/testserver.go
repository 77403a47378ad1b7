package fakeapi

import (
	"net/http/httptest"
	"sync"
	"testing"
	"time"
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
