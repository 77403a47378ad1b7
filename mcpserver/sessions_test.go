package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

const (
	pingBody        = `{"jsonrpc":"2.0","id":2,"method":"ping"}`
	initializedBody = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
	legacyVersion   = "2025-11-25"
)

// session starts a session with initialize and notifications/initialized
// and returns its id.
func (e *httpEnv) session(t *testing.T) string {
	t.Helper()
	resp := e.post(t, nil, "")
	id := resp.Header.Get(server.HeaderKeySessionID)
	if resp.StatusCode != http.StatusOK || id == "" {
		t.Fatalf("initialize: HTTP %d, session %q", resp.StatusCode, id)
	}
	if resp := e.post(t, sessionHeaders(id), initializedBody); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("notifications/initialized: HTTP %d", resp.StatusCode)
	}
	return id
}

func sessionHeaders(id string) map[string]string {
	return map[string]string{server.HeaderKeySessionID: id, "MCP-Protocol-Version": legacyVersion}
}

// eventually waits until cond holds, checking every 10 ms. It is for
// effects of mcp-go's session sweeper, which runs on a ticker of its own
// and signals nothing; it fails the test after 30 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	eventuallyWithin(t, 30*time.Second, what, cond)
}

// eventuallyWithin is eventually with its own bound.
func eventuallyWithin(t *testing.T, bound time.Duration, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(bound)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out after %v waiting until %s", bound, what)
		}
	}
}

// A session id the server never issued, or one that was deleted, is
// answered 404 on every method, as the transport spec requires; the client
// then starts a new session. Without an id, GET and DELETE are 400.
func TestUnknownSessionIs404(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	deleted := e.session(t)
	if resp := e.send(t, http.MethodDelete, sessionHeaders(deleted), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE of an open session: HTTP %d", resp.StatusCode)
	}
	ids := map[string]string{
		"never issued": "mcp-session-" + "0f8fad5b-d9cb-469f-a165-70867728950e", // mcp-go's own format
		"made up":      "whatever",
		"deleted":      deleted,
	}
	for name, id := range ids {
		for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
			resp := e.send(t, method, sessionHeaders(id), pingBody)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("%s id, %s: HTTP %d, want 404", name, method, resp.StatusCode)
			}
		}
	}
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		if resp := e.send(t, method, map[string]string{"MCP-Protocol-Version": legacyVersion}, ""); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s without a session id: HTTP %d, want 400", method, resp.StatusCode)
		}
	}
	if n := e.transport.sessions.count(); n != 0 {
		t.Errorf("%d sessions open, want 0", n)
	}
}

// A session idle past its TTL is gone: mcp-go's state of it is swept, and
// its id gets 404 afterwards. A session in use stays.
func TestIdleSessionExpires(t *testing.T) {
	t.Parallel()
	e := newHTTPEnv(t, HTTPOptions{SessionIdleTTL: 200 * time.Millisecond})
	id := e.session(t)
	if err := e.mcp.SendNotificationToSpecificClient(id, "notifications/message", nil); err != nil {
		t.Fatalf("the open session is unknown to mcp-go: %v", err)
	}
	eventually(t, "the idle session is swept", func() bool {
		return e.transport.sessions.count() == 0 &&
			errors.Is(e.mcp.SendNotificationToSpecificClient(id, "notifications/message", nil), server.ErrSessionNotFound)
	})
	for _, method := range []string{http.MethodPost, http.MethodGet, http.MethodDelete} {
		if resp := e.send(t, method, sessionHeaders(id), pingBody); resp.StatusCode != http.StatusNotFound {
			t.Errorf("expired session, %s: HTTP %d, want 404", method, resp.StatusCode)
		}
	}
}

// Past the session cap initialize gets 503 with Retry-After, while open
// sessions carry on; a session that ends, by DELETE or by expiring, frees
// its place.
func TestSessionCap(t *testing.T) {
	t.Parallel()
	e := newHTTPEnv(t, HTTPOptions{MaxSessions: 3})
	ids := []string{e.session(t), e.session(t), e.session(t)}

	refused := e.post(t, nil, "")
	body, _ := io.ReadAll(refused.Body)
	if refused.StatusCode != http.StatusServiceUnavailable || refused.Header.Get("Retry-After") == "" ||
		!json.Valid(body) || !strings.Contains(string(body), "too many open sessions") {
		t.Fatalf("initialize at the cap: HTTP %d, Retry-After %q, %s", refused.StatusCode, refused.Header.Get("Retry-After"), body)
	}
	// A session id does not smuggle a new session past the cap.
	if resp := e.post(t, sessionHeaders(ids[0]), ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("initialize with a session id at the cap: HTTP %d, want 503", resp.StatusCode)
	}
	for _, id := range ids {
		if resp := e.post(t, sessionHeaders(id), pingBody); resp.StatusCode != http.StatusOK {
			t.Errorf("ping on an open session at the cap: HTTP %d", resp.StatusCode)
		}
	}
	if resp := e.send(t, http.MethodDelete, sessionHeaders(ids[0]), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: HTTP %d", resp.StatusCode)
	}
	if resp := e.post(t, nil, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("initialize after a session was deleted: HTTP %d, want 200", resp.StatusCode)
	}

	// Expiry frees places too.
	short := newHTTPEnv(t, HTTPOptions{MaxSessions: 2, SessionIdleTTL: 200 * time.Millisecond})
	short.session(t)
	short.session(t)
	if resp := short.post(t, nil, ""); resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("initialize at the cap: HTTP %d, want 503", resp.StatusCode)
	}
	eventually(t, "the idle sessions are swept", func() bool { return short.transport.sessions.count() == 0 })
	short.session(t)
	short.session(t)
}

// A session may hold one GET stream, and the server MaxStreams in all;
// a stream ends with its session.
func TestGetStreamCaps(t *testing.T) {
	t.Parallel()
	e := newHTTPEnv(t, HTTPOptions{MaxStreams: 2})
	a, b, c := e.session(t), e.session(t), e.session(t)
	get := func(id string) *http.Response {
		t.Helper()
		return e.send(t, http.MethodGet, sessionHeaders(id), "")
	}
	streamA := get(a)
	if streamA.StatusCode != http.StatusOK || streamA.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("first GET: HTTP %d, %s", streamA.StatusCode, streamA.Header.Get("Content-Type"))
	}
	if resp := get(a); resp.StatusCode != http.StatusConflict {
		t.Errorf("second GET on one session: HTTP %d, want 409", resp.StatusCode)
	}
	if resp := get(b); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET on another session: HTTP %d", resp.StatusCode)
	}
	refused := get(c)
	body, _ := io.ReadAll(refused.Body)
	if refused.StatusCode != http.StatusTooManyRequests || refused.Header.Get("Retry-After") == "" ||
		!json.Valid(body) || !strings.Contains(string(body), "too many open GET streams") {
		t.Errorf("GET past the global cap: HTTP %d, Retry-After %q, %s", refused.StatusCode, refused.Header.Get("Retry-After"), body)
	}
	// Deleting session a ends its stream, which frees a place.
	if resp := e.send(t, http.MethodDelete, sessionHeaders(a), ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE: HTTP %d", resp.StatusCode)
	}
	if _, err := io.Copy(io.Discard, streamA.Body); err != nil {
		t.Fatalf("the deleted session's stream: %v", err)
	}
	if resp := get(c); resp.StatusCode != http.StatusOK {
		t.Errorf("GET after a stream ended: HTTP %d, want 200", resp.StatusCode)
	}

	// Stateless mode has no sessions; the global cap still holds.
	stateless := newHTTPEnv(t, HTTPOptions{Stateless: true, MaxStreams: 1})
	noSession := map[string]string{"MCP-Protocol-Version": legacyVersion}
	if resp := stateless.send(t, http.MethodGet, noSession, ""); resp.StatusCode != http.StatusOK {
		t.Fatalf("stateless GET: HTTP %d", resp.StatusCode)
	}
	if resp := stateless.send(t, http.MethodGet, noSession, ""); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("stateless GET past the cap: HTTP %d, want 429", resp.StatusCode)
	}
}

// The session manager's rules, on a clock the test moves.
func TestSessionManager(t *testing.T) {
	const ttl = time.Minute
	type env struct {
		m     *sessionManager
		clock *time.Time
	}
	cases := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{"issued ids are valid, others not", func(t *testing.T, e env) {
			id := e.m.Generate()
			if _, err := e.m.Validate(id); err != nil {
				t.Errorf("issued id: %v", err)
			}
			if _, err := e.m.Validate("mcp-session-x"); err == nil {
				t.Error("an id never issued is valid")
			}
		}},
		{"a terminated id is invalid", func(t *testing.T, e env) {
			id := e.m.Generate()
			_, _ = e.m.Terminate(id)
			if _, err := e.m.Validate(id); err == nil {
				t.Error("a terminated id is valid")
			}
			if notAllowed, err := e.m.Terminate(id); notAllowed || err != nil {
				t.Errorf("terminating twice: %v, %v", notAllowed, err)
			}
		}},
		{"an idle id expires; a used one does not", func(t *testing.T, e env) {
			idle, used := e.m.Generate(), e.m.Generate()
			*e.clock = e.clock.Add(ttl / 2)
			_, _ = e.m.Validate(used)
			*e.clock = e.clock.Add(ttl/2 + time.Second)
			if _, err := e.m.Validate(idle); err == nil {
				t.Error("an id idle past its TTL is valid")
			}
			if _, err := e.m.Validate(used); err != nil {
				t.Errorf("an id used within its TTL: %v", err)
			}
			if n := e.m.count(); n != 1 {
				t.Errorf("%d sessions open, want 1", n)
			}
		}},
		{"an open stream keeps its session", func(t *testing.T, e env) {
			id := e.m.Generate()
			_, closed := e.m.openStream(id, func() {})
			*e.clock = e.clock.Add(2 * ttl)
			if !e.m.known(id) {
				t.Fatal("a session with an open stream expired")
			}
			closed()
			*e.clock = e.clock.Add(ttl / 2)
			if !e.m.known(id) {
				t.Error("the session expired less than its TTL after its stream ended")
			}
		}},
		{"one stream per session", func(t *testing.T, e env) {
			id := e.m.Generate()
			status, closed := e.m.openStream(id, func() {})
			if status != 0 {
				t.Fatalf("first stream: %d", status)
			}
			if status, _ := e.m.openStream(id, func() {}); status != http.StatusConflict {
				t.Errorf("second stream on a session: %d, want 409", status)
			}
			closed()
			if status, _ := e.m.openStream(id, func() {}); status != 0 {
				t.Errorf("a stream after the first closed: %d", status)
			}
			if status, _ := e.m.openStream("unknown", func() {}); status != http.StatusNotFound {
				t.Errorf("a stream on an unknown session: %d, want 404", status)
			}
		}},
		{"terminate closes the session's stream", func(t *testing.T, e env) {
			id := e.m.Generate()
			ctx, cancel := context.WithCancel(context.Background())
			_, closed := e.m.openStream(id, cancel)
			_, _ = e.m.Terminate(id)
			if ctx.Err() == nil {
				t.Error("the stream of a terminated session is still open")
			}
			closed() // after its session ended: a no-op
			if e.m.count() != 0 {
				t.Errorf("%d sessions open, want 0", e.m.count())
			}
		}},
		{"the cap, and expired sessions give their place", func(t *testing.T, e env) {
			for range 3 {
				if !e.m.admit() {
					t.Fatal("refused below the cap")
				}
				e.m.Generate()
			}
			if e.m.admit() {
				t.Fatal("admitted at the cap")
			}
			*e.clock = e.clock.Add(ttl + time.Second)
			if !e.m.admit() {
				t.Error("refused although every session expired")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clock := time.Unix(1e9, 0)
			m := newSessionManager(ttl, 3, slog.New(slog.DiscardHandler))
			m.now = func() time.Time { return clock }
			tc.run(t, env{m, &clock})
		})
	}
}

// The map of sessions shrinks back after a peak (Go maps never shrink by
// themselves).
func TestSessionMapShrinks(t *testing.T) {
	m := newSessionManager(time.Minute, 1<<20, slog.New(slog.DiscardHandler))
	ids := make([]string, 5000)
	for i := range ids {
		ids[i] = m.Generate()
	}
	for _, id := range ids[:4900] {
		_, _ = m.Terminate(id)
	}
	if m.highWater > 4*len(m.live) {
		t.Errorf("high water %d with %d sessions open: the map was not rebuilt", m.highWater, len(m.live))
	}
	for _, id := range ids[4900:] {
		if !m.known(id) {
			t.Fatalf("session %s lost in the rebuild", id)
		}
	}
}

// peekMethod reads the method and leaves the body whole.
func TestPeekMethod(t *testing.T) {
	cases := []struct{ body, want string }{
		{initializeBody, "initialize"},
		{`{"params":{"x":[1,{"method":"no"}]},"id":1,"method":"tools/call","jsonrpc":"2.0"}`, "tools/call"},
		{`{"jsonrpc":"2.0","id":1}`, ""},
		{`[{"method":"initialize"}]`, ""},
		{`{"method":42}`, ""},
		{`not json`, ""},
		{``, ""},
	}
	for _, tc := range cases {
		r, _ := http.NewRequest(http.MethodPost, "/mcp", strings.NewReader(tc.body))
		got, err := peekMethod(r)
		if err != nil || got != tc.want {
			t.Errorf("%s: method %q, %v; want %q", tc.body, got, err, tc.want)
		}
		if rest, _ := io.ReadAll(r.Body); string(rest) != tc.body {
			t.Errorf("%s: the body became %s", tc.body, rest)
		}
	}
	r, _ := http.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"params":"`+strings.Repeat("x", 100)+`","method":"initialize"}`))
	r.Body = http.MaxBytesReader(nil, r.Body, 50)
	if _, err := peekMethod(r); err == nil {
		t.Error("a body past the limit: no error")
	}
}
