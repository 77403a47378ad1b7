package bpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testKey is distinctive so that a leak is easy to find.
const testKey = "bp_sk_CANARY_7c1f0e93ab_do_not_print"

// Ids used across the tests (from the reference's examples).
const (
	promptID  = "01234567-89ab-cdef-0123-456789abcdef"
	versionID = "a1b2c3d4-5678-90ab-cdef-1234567890ab"
	runID     = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c01"
)

// seen is one request as the test server received it.
type seen struct {
	Method   string
	Path     string
	RawQuery string
	Header   http.Header
	Body     []byte
}

// apiServer is an httptest server that records every request it receives.
type apiServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []seen
}

func (s *apiServer) requests() []seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]seen(nil), s.reqs...)
}

func (s *apiServer) count() int { return len(s.requests()) }

// newServer starts a recording server whose handler is h and returns it with
// a client pointed at its /v1. The client has no rate limit and a 1 ms
// backoff base unless opts says otherwise.
func newServer(t *testing.T, h http.HandlerFunc, opts ...func(*Options)) (*apiServer, *Client) {
	t.Helper()
	s := &apiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, seen{Method: r.Method, Path: r.URL.EscapedPath(), RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
		s.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(s.Close)
	o := Options{BaseURL: s.URL + "/v1", APIKey: testKey, HTTPClient: s.Client(), RateLimit: -1}
	for _, f := range opts {
		f(&o)
	}
	c := New(o)
	c.backoffBase = time.Millisecond
	return s, c
}

// reply writes a JSON body with the given status.
func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// success wraps a data payload in a SUCCESS envelope.
func success(data string) string { return `{"status":"SUCCESS","data":` + data + `}` }

// failure builds an error envelope.
func failure(code, msg, data string) string {
	m, _ := json.Marshal(msg)
	if data == "" {
		data = "null"
	}
	return `{"status":"` + code + `","message":` + string(m) + `,"data":` + data + `}`
}

// hangUp hijacks the connection and closes it without answering.
func hangUp(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	_ = conn.Close()
}

// sequence answers the n-th request (0-based) with steps[n], repeating the
// last step.
func sequence(steps ...http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	n := 0
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := min(n, len(steps)-1)
		n++
		mu.Unlock()
		steps[i](w, r)
	}
}

// answer returns a handler that replies with status and body.
func answer(status int, body string, headers ...string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		reply(w, status, body)
	}
}

// syncWriter serialises writes to w (slog handlers may write concurrently).
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// PollConcurrently runs n pollers for window, each through its own client
// derived from root with WithAPIKey(key), calling GetRun(runID) until the
// window ends. It reports unexpected errors through t and returns the
// number of successful polls. It is exported (in a test file) for the
// external tests against the fake.
func PollConcurrently(t *testing.T, root *Client, key APIKey, n int, runID string, window time.Duration) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), window)
	defer cancel()
	var wg sync.WaitGroup
	var polls atomic.Int32
	for range n {
		c := root.WithAPIKey(key)
		wg.Go(func() {
			for ctx.Err() == nil {
				_, err := c.GetRun(ctx, runID)
				switch {
				case err == nil:
					polls.Add(1)
				case errors.Is(err, context.DeadlineExceeded):
					return
				default:
					t.Errorf("poll: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	return int(polls.Load())
}
