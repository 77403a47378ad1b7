package fakeapi

import (
	"net/http"
	"time"
)

// FaultKind is what an injected Fault does.
type FaultKind int

const (
	// FaultStatus answers Status with Body (or {"error": ...}) before
	// authentication, as a proxy would: the request has no effect.
	FaultStatus FaultKind = iota
	// FaultDrop closes the connection without answering; the request has
	// no effect.
	FaultDrop
	// FaultDropAfterCreate serves the request (POST /generate starts the
	// generation), then closes the connection without answering.
	FaultDropAfterCreate
)

// Fault is a failure injected with InjectFault.
type Fault struct {
	Kind FaultKind
	// Status and Body answer FaultStatus (Body default: {"error": "Internal
	// server error"} or the status text).
	Status int
	Body   string
	// RetryAfter, when set, is sent as the Retry-After header.
	RetryAfter string
	// Count is how many requests it applies to (0 = 1; negative: until
	// ClearFaults).
	Count int
	// Latency delays the answer.
	Latency time.Duration
}

type faultEntry struct {
	f    Fault
	left int
}

// InjectFault makes the next requests to route ("POST /generate", "GET
// /generate/{id}", "GET /account", "GET /models") fail as f says.
func (s *Server) InjectFault(route string, f Fault) {
	left := f.Count
	if left == 0 {
		left = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], &faultEntry{f: f, left: left})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]*faultEntry{}
}

func (s *Server) takeFault(route string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[route]
	if len(q) == 0 {
		return nil
	}
	e := q[0]
	if e.left > 0 {
		e.left--
		if e.left == 0 {
			s.faults[route] = q[1:]
		}
	}
	f := e.f
	return &f
}

// fault answers f and reports whether the request is done.
func (s *Server) fault(w *recorder, _ *http.Request, f *Fault) bool {
	switch f.Kind {
	case FaultDrop:
		w.status = -1
		abort(w.ResponseWriter)
		return true
	case FaultStatus:
		if f.Status == 0 {
			return false // latency only
		}
		if f.RetryAfter != "" {
			w.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Body != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(f.Status)
			_, _ = w.Write([]byte(f.Body))
			return true
		}
		msg := http.StatusText(f.Status)
		if f.Status >= 500 {
			msg = "Internal server error"
		}
		writeError(w, f.Status, msg)
		return true
	}
	return false
}

// abort closes the connection without an answer.
func abort(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// discard is a ResponseWriter that keeps nothing: the answer of a request
// whose connection is then dropped.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}

// Request is one request the fake received.
type Request struct {
	Route  string // e.g. "POST /generate"
	At     time.Time
	Status int // -1 when the connection was dropped
}

type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (s *Server) logRequest(route string, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = append(s.log, Request{Route: route, At: s.opts.Now(), Status: status})
}

// Requests returns every request received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.log...)
}

// Count returns how many requests route received ("" for all).
func (s *Server) Count(route string) int {
	n := 0
	for _, r := range s.Requests() {
		if route == "" || r.Route == route {
			n++
		}
	}
	return n
}
