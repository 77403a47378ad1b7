package fakeapi

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"net/http"
	"net/url"
	"time"
)

// maxLog bounds the request log (the oldest entries are dropped); Count and
// Count429 keep counting past it.
const maxLog = 100000

// Request is one entry of the request log.
type Request struct {
	// Method and Path are the request's method and URL path.
	Method string
	Path   string
	// Route is the matched route name (a Go 1.22 mux pattern such as
	// "GET /v1/runs/{runId}"), or "" when no route matched.
	Route string
	// Query is the request's query string, decoded.
	Query url.Values
	// Status is the HTTP status answered; 0 while the request is in flight,
	// or when no answer was sent (dropped connection, client gone).
	Status int
	// Time is when the request arrived, on the Options.Now clock.
	Time time.Time
	// KeyHash is [HashKey] of the bearer key sent ("" when none).
	KeyHash string

	id int // position in arrival order, to find the entry again
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// logStart records an arriving request and returns its log position.
func (s *Server) logStart(r *http.Request, c *call) int {
	req := Request{
		Method:  r.Method,
		Path:    r.URL.Path,
		Route:   c.route,
		Query:   r.URL.Query(),
		Time:    s.opts.Now(),
		KeyHash: HashKey(c.key),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.log) >= maxLog {
		s.log = append(s.log[:0:0], s.log[len(s.log)-maxLog/2:]...)
	}
	s.counts[c.route]++
	s.logSeq++
	req.id = s.logSeq
	s.log = append(s.log, req)
	return req.id
}

// logEnd records the status the request was answered with.
func (s *Server) logEnd(id int, c *call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.status == http.StatusTooManyRequests {
		s.n429++
	}
	// Find the entry from the end: in-flight requests are recent.
	for i := len(s.log) - 1; i >= 0; i-- {
		if s.log[i].id == id {
			s.log[i].Status = c.status
			return
		}
	}
}

// Requests returns a copy of the request log, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Request, len(s.log))
	for i, r := range s.log {
		r.Query = maps.Clone(r.Query)
		out[i] = r
	}
	return out
}

// Count returns how many requests were recorded for route (a route name
// such as "POST /v1/runs"), whatever their status, including faulted and
// rate-limited ones; "*" counts every request and "" the requests that
// matched no route. It panics on an unknown route name, so that a typo
// cannot make a test pass.
func (s *Server) Count(route string) int {
	if route != "" {
		s.mustKnowRoute(route)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if route == "*" {
		n := 0
		for _, c := range s.counts {
			n += c
		}
		return n
	}
	return s.counts[route]
}

// Count429 returns how many requests were answered 429 (by the rate limiter
// or by an injected fault).
func (s *Server) Count429() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n429
}
