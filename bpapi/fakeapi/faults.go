package fakeapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// FaultKind selects what an injected [Fault] does besides (or instead of)
// answering a status.
type FaultKind int

const (
	// FaultNone answers Fault.Status with an envelope (or Fault.Body); with
	// Status 0 only Fault.Latency applies and the request is then served
	// normally.
	FaultNone FaultKind = iota
	// FaultHTML answers an HTML error page as a proxy would (status 502
	// unless Fault.Status is set; Fault.Body replaces the page).
	FaultHTML
	// FaultTruncated answers a JSON envelope cut in the middle, with
	// Content-Type application/json (status 200 unless Fault.Status is set).
	FaultTruncated
	// FaultEmpty answers an empty body with Content-Type application/json
	// (status 200 unless Fault.Status is set).
	FaultEmpty
	// FaultDrop closes the connection without answering; the API never sees
	// the request. Note that net/http's Transport silently retries an
	// idempotent request (GET) dropped on a reused keep-alive connection, so
	// a client may not see a single drop: use Count 2 or more, or a fresh
	// connection. Dropping needs a hijackable (HTTP/1) connection; elsewhere
	// the handler aborts with http.ErrAbortHandler.
	FaultDrop
	// FaultDropAfterCreate serves the request (for POST /v1/runs: validates
	// and creates the run, reserving credits, without holding), then closes
	// the connection without answering: the "request reached the API" case.
	FaultDropAfterCreate
	// FaultStatusAfterCreate serves the request like FaultDropAfterCreate
	// (for POST /v1/runs: the run is created, without holding), then
	// answers Fault.Status (500 unless set) with an envelope or Fault.Body:
	// a proxy that reports an error, or a 429, although the API did the
	// work.
	FaultStatusAfterCreate
)

// Fault is a failure injected with [Server.InjectFault]. Faults other than
// FaultDropAfterCreate and FaultStatusAfterCreate are answered before
// authentication, as by a proxy in front of the API: the request has no
// effect.
type Fault struct {
	// Status is the HTTP status to answer (0 = no status fault). Without
	// Body, the answer is an envelope with the code of reference §4.1 for
	// that status (SERVER_ERROR for statuses the API does not document) and
	// "data": null.
	Status int
	// Count is how many matching requests the fault applies to (0 = 1;
	// negative = until [Server.ClearFaults]).
	Count int
	// RetryAfter is a Retry-After header value to send. It is sent only
	// when set, also for 429 faults, so that tests can exercise a 429
	// without the header.
	RetryAfter string
	// Body is a raw body to send instead of an envelope, with Status (e.g.
	// an HTML page, or a 504 without an envelope).
	Body string
	// Kind is the kind of fault.
	Kind FaultKind
	// Latency is a delay before answering (or before serving, for a
	// Latency-only fault); a client that goes away during it gets nothing.
	Latency time.Duration
}

type faultEntry struct {
	f    Fault
	left int // < 0: unlimited
}

// InjectFault makes the next matching requests to route fail as f says.
// route is a route name such as "POST /v1/runs" or "GET /v1/runs/{runId}"
// (see the package documentation), or "*" for any request. Faults for the
// same route apply in the order they were injected; a route's own faults
// come before "*" faults. It panics on an unknown route name, so that a typo
// cannot make a test pass without its fault.
func (s *Server) InjectFault(route string, f Fault) {
	s.mustKnowRoute(route)
	left := f.Count
	if left == 0 {
		left = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[route] = append(s.faults[route], &faultEntry{f: f, left: left})
}

// mustKnowRoute panics unless route is "*" or a route name.
func (s *Server) mustKnowRoute(route string) {
	if route == "*" {
		return
	}
	names := make([]string, 0, len(s.routes))
	for _, rt := range s.routes {
		if rt.name == route {
			return
		}
		names = append(names, strconv.Quote(rt.name))
	}
	panic("fakeapi: unknown route name " + strconv.Quote(route) + "; use \"*\" or one of " + strings.Join(names, ", "))
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]*faultEntry{}
}

// takeFault consumes one use of the first fault matching route.
func (s *Server) takeFault(route string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range []string{route, "*"} {
		list := s.faults[name]
		if len(list) == 0 {
			continue
		}
		e := list[0]
		if e.left > 0 {
			e.left--
			if e.left == 0 {
				s.faults[name] = list[1:]
			}
		}
		return e.f, true
	}
	return Fault{}, false
}

const htmlPage = `<!DOCTYPE html>
<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>cloudflare</center>
</body>
</html>
`

// applyFault answers according to f; false means "serve the request
// normally" (a latency-only fault, or FaultDropAfterCreate, which sets
// c.dropAfter). raw is the connection's own writer, for hijacking.
func (s *Server) applyFault(w http.ResponseWriter, raw http.ResponseWriter, r *http.Request, c *call, f Fault) bool {
	if !sleepCtx(r.Context(), f.Latency) {
		return true // the client went away; nothing is sent
	}
	if f.RetryAfter != "" && f.Kind != FaultDrop && f.Kind != FaultDropAfterCreate && f.Kind != FaultStatusAfterCreate {
		w.Header().Set("Retry-After", f.RetryAfter)
	}
	status := func(def int) int {
		if f.Status != 0 {
			return f.Status
		}
		return def
	}
	switch f.Kind {
	case FaultDrop:
		dropConnection(raw)
		return true
	case FaultDropAfterCreate:
		c.dropAfter = true
		return false
	case FaultStatusAfterCreate:
		f.Status = status(http.StatusInternalServerError)
		c.answerAfter = &f
		return false
	case FaultHTML:
		body := f.Body
		if body == "" {
			body = htmlPage
		}
		writeBody(w, status(http.StatusBadGateway), "text/html; charset=utf-8", []byte(body))
		return true
	case FaultTruncated:
		full := `{"status":"SUCCESS","data":{"runId":"01234567-89ab-cdef-0123-456789abcdef","outputs":[{"type":"text","data":"A witty caption"}],"runStatus":"succeeded","tokens":132}}`
		writeBody(w, status(http.StatusOK), "application/json", []byte(full[:len(full)/2]))
		return true
	case FaultEmpty:
		writeBody(w, status(http.StatusOK), "application/json", nil)
		return true
	}
	if f.Status == 0 {
		return false
	}
	if f.Body != "" {
		writeBody(w, f.Status, sniffType(f.Body), []byte(f.Body))
		return true
	}
	writeError(w, f.Status, faultMessage(f.Status))
	return true
}

func sniffType(body string) string {
	t := strings.TrimSpace(body)
	switch {
	case strings.HasPrefix(t, "<"):
		return "text/html; charset=utf-8"
	case strings.HasPrefix(t, "{") || strings.HasPrefix(t, "["):
		return "application/json"
	default:
		return "text/plain; charset=utf-8"
	}
}

func faultMessage(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "Rate limit exceeded"
	case http.StatusInternalServerError:
		return "Internal server error"
	case http.StatusGatewayTimeout:
		return "The request timed out while waiting for the run to finish."
	case http.StatusGone:
		return "The resource is no longer available"
	case http.StatusUnauthorized:
		return "Missing or invalid API key"
	case http.StatusPaymentRequired:
		return "Not enough credits"
	case http.StatusNotFound:
		return "Not found"
	}
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Error"
}

// dropConnection closes the client connection without an answer.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (e.g. httptest.ResponseRecorder or HTTP/2): abort
		// the response the way net/http does.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}
