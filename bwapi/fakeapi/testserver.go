package fakeapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/bpmcp/bpmcp/internal/pipenet"
)

// NewTestServer starts New(opts) on an httptest server closed by
// t.Cleanup, and returns it with the API base URL (".../api/v1").
func NewTestServer(t testing.TB, opts Options) (*Server, string) {
	t.Helper()
	s := New(opts)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts.URL + "/api/v1"
}

// PipeHost is the host of NewPipeServer's base URL; it never resolves.
const PipeHost = "betterwaifu.invalid"

// NewPipeServer serves New(opts) over in-memory pipes, for tests inside a
// testing/synctest bubble, and returns the fake, its base URL and the only
// HTTP client that reaches it.
func NewPipeServer(t testing.TB, opts Options) (*Server, string, *http.Client) {
	t.Helper()
	s := New(opts)
	client, stop := pipenet.ServeHTTP(s)
	t.Cleanup(stop)
	return s, "http://" + PipeHost + "/api/v1", client
}
