package fakeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// SandboxKey is the API key the server's --sandbox mode uses. It is one of
// the default keys of [Options.Keys].
const SandboxKey = "bp_sandbox_key"

// TestKey is the other default key of [Options.Keys].
const TestKey = "bp_test_key"

// Key is the account state behind one API key.
type Key struct {
	// Credits is the starting balance.
	Credits int
	// Lapsed makes every authenticated request fail with 402 "An active Pro
	// plan is required".
	Lapsed bool
	// Username and DisplayName are served by GET /v1/me (defaults
	// "fake_user" and "Fake User").
	Username, DisplayName string
	// UserFlags is served by GET /v1/me.
	UserFlags int
	// SameAccountAs makes this key a second key of the account of the key
	// it names: the two share the balance, the plan and the runs (each sees
	// the runs the other started), and the rate limit (the reference leaves
	// open whether the API limits per key or per account). The other fields
	// are then ignored.
	SameAccountAs string
}

// Options configure a [Server]. The zero value is usable: an empty
// catalogue, the default keys and the real API's limits.
type Options struct {
	// IDs is the randomness run ids are made of (default crypto/rand): a
	// seeded source makes them the same from one run of a test, or of the
	// sandbox (--sandbox-seed), to the next.
	IDs io.Reader
	// NewAccount, when set, is asked about a key that is not in Keys: an
	// account is created for it on its first request when it answers ok
	// (the sandbox's isolated episodes). Forget drops it.
	NewAccount func(key string) (Key, bool)
	// Catalogue is the set of published prompts (see [LoadCatalogue]).
	Catalogue []Prompt
	// Keys are the allowed API keys and their accounts. Default:
	// {"bp_test_key": {Credits: 100000}, "bp_sandbox_key": {Credits: 100000}}.
	Keys map[string]Key
	// SyncWindow is how long POST /v1/runs is held before it answers 504
	// (real time, not scaled). Default 120s; negative: no hold at all (504 at
	// once unless the run finished instantly).
	SyncWindow time.Duration
	// TimeScale multiplies run durations (0.01 = 100 times faster). Default 1.
	TimeScale float64
	// RateLimit is the number of requests per second allowed per key: a
	// strict token bucket of Burst tokens refilled at RateLimit per second,
	// as the reference describes. It is deliberately unforgiving, so that a
	// client which bursts as hard as the limit allows is caught here rather
	// than by the real API. Default 5; negative disables rate limiting.
	RateLimit float64
	// Burst is the token bucket's size. Default 5.
	Burst int
	// URLTTL is how long media output URLs stay valid after the run
	// finished. Default 24h.
	URLTTL time.Duration
	// RefundFailed refunds the whole reservation of a failed run (tokens 0,
	// list-row credits null). By default a failed run is settled like a
	// successful one, to the fixture's credits.
	RefundFailed bool
	// Now is the clock for createdAt, since/until filters, URL expiry and the
	// request log. Default time.Now. Run durations always use the real clock.
	Now func() time.Time
	// BaseURL is the absolute server root for media URLs, e.g.
	// "https://sandbox.example" (a trailing "/v1" is ignored). By default it
	// is derived from each request's Host.
	BaseURL string
}

// Server is the fake API. It is an http.Handler serving /v1/... and the media
// files; it is safe for concurrent use.
type Server struct {
	opts Options
	// resourcesChanged makes the next answer ask for /v1/resources again.
	resourcesChanged atomic.Bool
	baseURL          string
	prompts          []*Prompt
	byPrompt         map[string]*Prompt // lower-case promptId
	byVersion        map[string]versionRef
	bySlug           map[string]*Prompt
	routes           []route

	closed    chan struct{}
	closeOnce sync.Once

	mu       sync.Mutex
	accounts map[string]*account
	runs     map[string]*run // by lower-case id
	runList  []*run          // creation order
	pending  []*run          // not final yet
	seq      int64
	faults   map[string][]*faultEntry
	log      []Request
	logSeq   int
	counts   map[string]int
	n429     int
}

type versionRef struct {
	prompt *Prompt
	index  int
	spec   *inputSpec
}

type account struct {
	Key
	tokens float64
	last   time.Time
}

// New returns a fake API serving opts.Catalogue. It panics when the
// catalogue fails [ValidateCatalogue].
func New(opts Options) *Server {
	if err := ValidateCatalogue(opts.Catalogue); err != nil {
		panic(err)
	}
	if opts.Keys == nil {
		opts.Keys = map[string]Key{TestKey: {Credits: 100000}, SandboxKey: {Credits: 100000}}
	}
	if opts.SyncWindow == 0 {
		opts.SyncWindow = 120 * time.Second
	}
	if opts.TimeScale <= 0 || math.IsNaN(opts.TimeScale) || math.IsInf(opts.TimeScale, 0) {
		opts.TimeScale = 1
	}
	if opts.RateLimit == 0 {
		opts.RateLimit = 5
	}
	if opts.Burst <= 0 {
		opts.Burst = 5
	}
	if opts.URLTTL <= 0 {
		opts.URLTTL = 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:      opts,
		baseURL:   strings.TrimSuffix(strings.TrimSuffix(opts.BaseURL, "/"), "/v1"),
		byPrompt:  map[string]*Prompt{},
		byVersion: map[string]versionRef{},
		bySlug:    map[string]*Prompt{},
		closed:    make(chan struct{}),
		accounts:  map[string]*account{},
		runs:      map[string]*run{},
		faults:    map[string][]*faultEntry{},
		counts:    map[string]int{},
	}
	for i := range opts.Catalogue {
		p := clonePrompt(opts.Catalogue[i])
		s.prompts = append(s.prompts, p)
		s.byPrompt[strings.ToLower(p.PromptID)] = p
		s.bySlug[p.Slug] = p
		for j, v := range p.Versions {
			spec, _ := parseVersionSpec(v) // validated above
			s.byVersion[strings.ToLower(v.PromptVersionID)] = versionRef{prompt: p, index: j, spec: spec}
		}
	}
	for k, v := range opts.Keys {
		if v.SameAccountAs == "" {
			s.accounts[k] = &account{Key: v}
		}
	}
	for k, v := range opts.Keys {
		if v.SameAccountAs != "" {
			if s.accounts[v.SameAccountAs] == nil {
				panic("fakeapi: key " + v.SameAccountAs + " named by SameAccountAs is not a key of its own account")
			}
			s.accounts[k] = s.accounts[v.SameAccountAs]
		}
	}
	s.routes = s.routeTable()
	return s
}

func clonePrompt(p Prompt) *Prompt {
	c := p
	c.Outputs = append([]Output(nil), p.Outputs...)
	c.Versions = append([]Version(nil), p.Versions...)
	c.RunOptions = map[string]any{}
	for k, v := range p.RunOptions {
		c.RunOptions[k] = v
	}
	return &c
}

// ChangeResources makes the next answer carry the header
// "action-require: update-resources", as the API does when its models or
// run options change (reference §7.10).
func (s *Server) ChangeResources() { s.resourcesChanged.Store(true) }

// Close wakes every POST /v1/runs still held (they answer 504 with their
// runId) and makes later ones answer without holding. Runs keep their
// schedule; the fake starts no goroutines of its own. Close is safe to call
// more than once.
func (s *Server) Close() {
	s.closeOnce.Do(func() { close(s.closed) })
}

// handlerFunc is a route's handler; c carries the per-request state.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call)

type route struct {
	method string
	name   string   // the Go 1.22 mux pattern, e.g. "GET /v1/runs/{runId}"
	segs   []string // path segments; "{x}" captures one segment
	public bool     // no authentication, no rate limit
	h      handlerFunc
}

func (s *Server) routeTable() []route {
	mk := func(pattern string, public bool, h handlerFunc) route {
		method, p, _ := strings.Cut(pattern, " ")
		return route{method: method, name: pattern, segs: strings.Split(strings.Trim(p, "/"), "/"), public: public, h: h}
	}
	return []route{
		mk("GET /v1/prompts/publish", false, s.handleSearch), // before /v1/prompts/{promptId}
		mk("GET /v1/prompts/{promptId}", false, s.handlePrompt),
		mk("GET /v1/prompts/{promptId}/versions", false, s.handleVersions),
		mk("GET /v1/prompt-versions/{promptVersionId}", false, s.handlePromptVersion),
		mk("POST /v1/runs", false, s.handleCreateRun),
		mk("GET /v1/runs", false, s.handleListRuns),
		mk("GET /v1/runs/{runId}", false, s.handleGetRun),
		mk("GET /v1/me", false, s.handleMe),
		mk("GET /v1/me/credits", false, s.handleCredits),
		mk("GET /v1/resources", false, s.handleResources),
		mk("GET /v1/skills", false, s.handleSkills),
		mk("GET /v1/skills/{name}", false, s.handleSkill),
		mk("GET /v1/", true, s.handleHealth),
		mk("GET /files/{runId}/{file}", true, s.handleMedia),
	}
}

// match finds the route of r and sets its path values.
func (s *Server) match(r *http.Request) *route {
	p := strings.Trim(r.URL.Path, "/")
	if r.URL.Path == "/v1" || r.URL.Path == "/v1/" {
		p = "v1"
	} else if strings.HasSuffix(r.URL.Path, "/") || strings.Contains(r.URL.Path, "//") {
		return nil
	}
	segs := strings.Split(p, "/")
	method := r.Method
	if method == http.MethodHead {
		method = http.MethodGet
	}
	for i := range s.routes {
		rt := &s.routes[i]
		if rt.method != method || len(rt.segs) != len(segs) {
			continue
		}
		ok := true
		for j, seg := range rt.segs {
			if strings.HasPrefix(seg, "{") {
				if segs[j] == "" {
					ok = false
					break
				}
				continue
			}
			if seg != segs[j] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		for j, seg := range rt.segs {
			if strings.HasPrefix(seg, "{") {
				r.SetPathValue(strings.Trim(seg, "{}"), segs[j])
			}
		}
		return rt
	}
	return nil
}

// call is the per-request state shared by ServeHTTP and the handlers.
type call struct {
	route     string
	key       string
	acct      *account
	status    int
	dropAfter bool // FaultDropAfterCreate: answer nothing once the work is done
	// answerAfter is a FaultStatusAfterCreate: answer it once the work is done.
	answerAfter *Fault
}

// statusWriter records the status a handler answers with.
type statusWriter struct {
	http.ResponseWriter
	c *call
}

func (w *statusWriter) WriteHeader(code int) {
	if w.c.status == 0 {
		w.c.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.c.status == 0 {
		w.c.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// discardWriter swallows a response (FaultDropAfterCreate).
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// ServeHTTP serves the fake API (/v1/...) and the media files (/files/...).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt := s.match(r)
	c := &call{}
	if rt != nil {
		c.route = rt.name
	}
	c.key = bearerKey(r)
	idx := s.logStart(r, c)
	defer func() { s.logEnd(idx, c) }()
	sw := &statusWriter{ResponseWriter: w, c: c}

	if f, ok := s.takeFault(c.route); ok {
		if done := s.applyFault(sw, w, r, c, f); done {
			return
		}
	}
	if rt == nil {
		writeError(sw, http.StatusNotFound, "Not found")
		return
	}
	if s.resourcesChanged.Swap(false) {
		// As the live API tells the official CLI to reload /v1/resources.
		w.Header().Set("Action-Require", "update-resources")
	}
	if !rt.public {
		if !s.authorize(sw, c) {
			return
		}
	}
	if c.dropAfter {
		rt.h(&discardWriter{h: http.Header{}}, r, c)
		dropConnection(w)
		c.status = 0
		return
	}
	if f := c.answerAfter; f != nil {
		rt.h(&discardWriter{h: http.Header{}}, r, c)
		if f.RetryAfter != "" {
			sw.Header().Set("Retry-After", f.RetryAfter)
		}
		if f.Body != "" {
			writeBody(sw, f.Status, sniffType(f.Body), []byte(f.Body))
		} else {
			writeError(sw, f.Status, faultMessage(f.Status))
		}
		return
	}
	rt.h(sw, r, c)
}

// bearerKey extracts the key of "Authorization: Bearer <key>" ("bearer" in
// any case); "" when absent or in another scheme.
func bearerKey(r *http.Request) string {
	scheme, key, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(key)
}

// authorize runs the auth and rate-limit checks; false means answered.
func (s *Server) authorize(w http.ResponseWriter, c *call) bool {
	s.mu.Lock()
	acct := s.accounts[c.key]
	if acct == nil && c.key != "" && s.opts.NewAccount != nil {
		if k, ok := s.opts.NewAccount(c.key); ok {
			acct = &account{Key: k}
			s.accounts[c.key] = acct
		}
	}
	if c.key == "" || acct == nil {
		s.mu.Unlock()
		writeError(w, http.StatusUnauthorized, "Missing or invalid API key")
		return false
	}
	if acct.Lapsed {
		s.mu.Unlock()
		writeError(w, http.StatusPaymentRequired, "An active Pro plan is required")
		return false
	}
	ok, retry := s.allow(acct, time.Now())
	s.mu.Unlock()
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(retry))
		writeError(w, http.StatusTooManyRequests, "Rate limit exceeded")
		return false
	}
	c.acct = acct
	return true
}

// allow takes one token from acct's bucket; when empty it returns the whole
// seconds until a token is available (at least 1). Called with s.mu held.
func (s *Server) allow(acct *account, now time.Time) (bool, int) {
	rate, burst := s.opts.RateLimit, float64(s.opts.Burst)
	if rate < 0 {
		return true, 0
	}
	if acct.last.IsZero() {
		acct.tokens = burst
	} else {
		acct.tokens = math.Min(burst, acct.tokens+now.Sub(acct.last).Seconds()*rate)
	}
	acct.last = now
	if acct.tokens >= 1 {
		acct.tokens--
		return true, 0
	}
	return false, max(1, int(math.Ceil((1-acct.tokens)/rate)))
}

// The error codes of reference §4.1, by HTTP status.
var errorCodes = map[int]string{
	http.StatusBadRequest:          "BAD_REQUEST_ERROR",
	http.StatusUnauthorized:        "UNAUTHORIZED_ERROR",
	http.StatusPaymentRequired:     "PAYMENT_REQUIRED_ERROR",
	http.StatusNotFound:            "NOT_FOUND_ERROR",
	http.StatusGone:                "GONE_ERROR",
	http.StatusUnprocessableEntity: "VALIDATION_ERROR",
	http.StatusTooManyRequests:     "TOO_MANY_REQUESTS_ERROR",
	http.StatusInternalServerError: "SERVER_ERROR",
	http.StatusGatewayTimeout:      "GATEWAY_TIMEOUT_ERROR",
}

func errorCode(status int) string {
	if code, ok := errorCodes[status]; ok {
		return code
	}
	return "SERVER_ERROR"
}

// envelope is the wire shape of every answer (reference §2.2).
type envelope struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	Data    any    `json:"data"`
}

func encodeJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(fmt.Sprintf("fakeapi: encode: %v", err))
	}
	return buf.Bytes()
}

func writeBody(w http.ResponseWriter, status int, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeData(w http.ResponseWriter, data any) {
	writeBody(w, http.StatusOK, "application/json", encodeJSON(envelope{Status: "SUCCESS", Data: data}))
}

func writeError(w http.ResponseWriter, status int, message string) {
	writeBody(w, status, "application/json", encodeJSON(envelope{Status: errorCode(status), Message: message}))
}

// sleepCtx waits d or until ctx is done; false when ctx ended first.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// HashKey is how the request log identifies a key (hex SHA-256); the log
// never holds a key in clear.
func HashKey(key string) string {
	if key == "" {
		return ""
	}
	return hashHex(key)
}

// SetCredits sets key's balance, adding the key (with an active plan) if it
// is not known yet.
func (s *Server) SetCredits(key string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.account(key).Credits = n
}

// Credits returns key's balance after settling every finished run (0 for an
// unknown key).
func (s *Server) Credits(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settleLocked(time.Now())
	if a := s.accounts[key]; a != nil {
		return a.Credits
	}
	return 0
}

// SetLapsed marks key's Pro plan as lapsed (every request answers 402) or
// active again, adding the key if it is not known yet.
func (s *Server) SetLapsed(key string, lapsed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.account(key).Lapsed = lapsed
}

// Forget drops key's account and its runs, as if it never existed.
func (s *Server) Forget(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.accounts, key)
	keep := func(r *run) bool { return r.key != key }
	for id, r := range s.runs {
		if !keep(r) {
			delete(s.runs, id)
		}
	}
	s.runList = slices.DeleteFunc(s.runList, func(r *run) bool { return !keep(r) })
	s.pending = slices.DeleteFunc(s.pending, func(r *run) bool { return !keep(r) })
}

// account returns key's account, creating it. Called with s.mu held.
func (s *Server) account(key string) *account {
	a := s.accounts[key]
	if a == nil {
		a = &account{}
		s.accounts[key] = a
	}
	return a
}
