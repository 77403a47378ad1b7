package fakeapi

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestFaults(t *testing.T) {
	cases := []struct {
		name   string
		route  string
		fault  Fault
		check  func(t *testing.T, r *resp, err error)
		effect bool // whether the request reached the API (a run exists)
	}{
		{name: "500 envelope", route: "POST /v1/runs", fault: Fault{Status: 500}, check: func(t *testing.T, r *resp, err error) {
			expect(t, r, 500, "SERVER_ERROR", "Internal server error")
		}},
		{name: "429 with Retry-After", route: "POST /v1/runs", fault: Fault{Status: 429, RetryAfter: "3"}, check: func(t *testing.T, r *resp, err error) {
			expect(t, r, 429, "TOO_MANY_REQUESTS_ERROR", "")
			if r.header.Get("Retry-After") != "3" {
				t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
			}
		}},
		{name: "429 without Retry-After", route: "*", fault: Fault{Status: 429}, check: func(t *testing.T, r *resp, err error) {
			expect(t, r, 429, "TOO_MANY_REQUESTS_ERROR", "")
			if _, ok := r.header["Retry-After"]; ok {
				t.Fatal("unexpected Retry-After")
			}
		}},
		{name: "504 without an envelope", route: "POST /v1/runs", fault: Fault{Status: 504, Body: "<html>Gateway Timeout</html>"}, check: func(t *testing.T, r *resp, err error) {
			if r.status != 504 || r.isEnvelope || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s %s", r.status, r.header.Get("Content-Type"), r.raw)
			}
		}},
		{name: "504 envelope has no runId", route: "POST /v1/runs", fault: Fault{Status: 504}, check: func(t *testing.T, r *resp, err error) {
			if r.status != 504 || r.env.Status != "GATEWAY_TIMEOUT_ERROR" || string(r.env.Data) != "null" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		}},
		{name: "502 HTML", route: "POST /v1/runs", fault: Fault{Kind: FaultHTML}, check: func(t *testing.T, r *resp, err error) {
			if r.status != 502 || r.isEnvelope || !strings.Contains(string(r.raw), "502 Bad Gateway") || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		}},
		{name: "503 HTML", route: "POST /v1/runs", fault: Fault{Kind: FaultHTML, Status: 503, Body: "<h1>down</h1>"}, check: func(t *testing.T, r *resp, err error) {
			if r.status != 503 || string(r.raw) != "<h1>down</h1>" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		}},
		{name: "truncated JSON", route: "POST /v1/runs", fault: Fault{Kind: FaultTruncated}, check: func(t *testing.T, r *resp, err error) {
			if r.status != 200 || r.isEnvelope || !strings.HasPrefix(string(r.raw), `{"status":"SUCCESS"`) || r.header.Get("Content-Type") != "application/json" {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		}},
		{name: "empty body", route: "POST /v1/runs", fault: Fault{Kind: FaultEmpty}, check: func(t *testing.T, r *resp, err error) {
			if r.status != 200 || len(r.raw) != 0 {
				t.Fatalf("%d %q", r.status, r.raw)
			}
		}},
		{name: "drop", route: "POST /v1/runs", fault: Fault{Kind: FaultDrop}, check: func(t *testing.T, r *resp, err error) {
			if err == nil || !(errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "EOF")) {
				t.Fatalf("err %v, resp %v", err, r)
			}
		}},
		{name: "drop after create", route: "POST /v1/runs", effect: true, fault: Fault{Kind: FaultDropAfterCreate}, check: func(t *testing.T, r *resp, err error) {
			if err == nil {
				t.Fatalf("answered %d %s", r.status, r.raw)
			}
		}},
		{name: "429 after create", route: "POST /v1/runs", effect: true, fault: Fault{Kind: FaultStatusAfterCreate, Status: 429, RetryAfter: "1"}, check: func(t *testing.T, r *resp, err error) {
			expect(t, r, 429, "TOO_MANY_REQUESTS_ERROR", "")
			if r.header.Get("Retry-After") != "1" {
				t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
			}
		}},
		{name: "500 after create", route: "POST /v1/runs", effect: true, fault: Fault{Kind: FaultStatusAfterCreate}, check: func(t *testing.T, r *resp, err error) {
			expect(t, r, 500, "SERVER_ERROR", "")
		}},
		{name: "latency then 500", route: "POST /v1/runs", fault: Fault{Status: 500, Latency: 60 * time.Millisecond}, check: func(t *testing.T, r *resp, err error) {
			expect(t, r, 500, "SERVER_ERROR", "")
		}},
		{name: "latency only", route: "POST /v1/runs", effect: true, fault: Fault{Latency: 60 * time.Millisecond}, check: func(t *testing.T, r *resp, err error) {
			expect(t, r, 200, "SUCCESS", "")
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := start(t, nil)
			h.s.InjectFault(c.route, c.fault)
			begin := time.Now()
			r, err := h.trySend("POST", "/runs", coldBody, http.Header{"Authorization": {"Bearer " + TestKey}})
			if c.fault.Latency > 0 && time.Since(begin) < c.fault.Latency {
				t.Fatalf("answered after %v", time.Since(begin))
			}
			c.check(t, r, err)
			runs := h.s.Runs(TestKey)
			if c.effect != (len(runs) == 1) {
				t.Fatalf("%d runs; the request should reach the API: %v", len(runs), c.effect)
			}
			if c.effect {
				if h.s.Credits(TestKey) >= 100000 {
					t.Fatal("no credits reserved")
				}
			} else if h.s.Credits(TestKey) != 100000 {
				t.Fatal("a faulted request changed the balance")
			}
			// The fault is used up: the next request is served.
			expect(t, h.call("POST", "/runs", coldBody), 200, "SUCCESS", "")
			if h.s.Count("POST /v1/runs") != 2 {
				t.Fatalf("count %d", h.s.Count("POST /v1/runs"))
			}
		})
	}
}

func TestFaultCountsAndRoutes(t *testing.T) {
	h := start(t, nil)
	h.s.InjectFault("GET /v1/me/credits", Fault{Status: 500, Count: 2})
	h.s.InjectFault("GET /v1/me/credits", Fault{Status: 429, RetryAfter: "1"})
	expect(t, h.call("GET", "/me", nil), 200, "SUCCESS", "") // another route
	expect(t, h.call("GET", "/me/credits", nil), 500, "SERVER_ERROR", "")
	expect(t, h.call("GET", "/me/credits", nil), 500, "SERVER_ERROR", "")
	expect(t, h.call("GET", "/me/credits", nil), 429, "TOO_MANY_REQUESTS_ERROR", "")
	expect(t, h.call("GET", "/me/credits", nil), 200, "SUCCESS", "")

	// Route names with wildcards; faults come before authentication.
	h.s.InjectFault("GET /v1/runs/{runId}", Fault{Status: 500})
	expect(t, h.callKey("", "GET", "/runs/"+unknownUUID, nil), 500, "SERVER_ERROR", "")
	h.s.InjectFault("GET /v1/prompts/publish", Fault{Status: 500})
	expect(t, h.call("GET", "/prompts/"+coldEmailPrompt, nil), 200, "SUCCESS", "")
	expect(t, h.call("GET", "/prompts/publish?q=x", nil), 500, "SERVER_ERROR", "")

	// Unlimited, then cleared; "*" after a route's own.
	h.s.InjectFault("*", Fault{Status: 500, Count: -1})
	h.s.InjectFault("GET /v1/me", Fault{Status: 429})
	expect(t, h.call("GET", "/me", nil), 429, "TOO_MANY_REQUESTS_ERROR", "")
	for i := 0; i < 3; i++ {
		expect(t, h.call("GET", "/me", nil), 500, "SERVER_ERROR", "")
		expect(t, h.call("GET", "/resources", nil), 500, "SERVER_ERROR", "")
	}
	h.s.ClearFaults()
	expect(t, h.call("GET", "/me", nil), 200, "SUCCESS", "")
}

func TestUnknownRouteNamesPanic(t *testing.T) {
	h := start(t, nil)
	for _, f := range []func(){
		func() { h.s.InjectFault("GET /v1/runs/{id}", Fault{Status: 500}) },
		func() { h.s.Count("POST /runs") },
	} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), `"GET /v1/runs/{runId}"`) {
					t.Fatalf("recovered %v", r)
				}
			}()
			f()
		}()
	}
	if h.s.Count("") != 0 || h.s.Count("GET /files/{runId}/{file}") != 0 {
		t.Fatal("counts")
	}
}

func TestFaultLatencyRespectsContext(t *testing.T) {
	h := start(t, nil)
	h.s.InjectFault("GET /v1/me", Fault{Latency: 10 * time.Second})
	h.client.Timeout = 50 * time.Millisecond
	begin := time.Now()
	if _, err := h.trySend("GET", "/me", nil, http.Header{"Authorization": {"Bearer " + TestKey}}); err == nil {
		t.Fatal("expected a client timeout")
	}
	if time.Since(begin) > 2*time.Second {
		t.Fatal("latency did not stop with the client")
	}
}

func TestRateLimit(t *testing.T) {
	h := start(t, func(o *Options) {
		o.RateLimit, o.Burst = 5, 5
		o.Keys = map[string]Key{"bp_a": {Credits: 100}, "bp_b": {Credits: 100}}
	})
	var got []int
	for i := 0; i < 8; i++ {
		got = append(got, h.callKey("bp_a", "GET", "/me", nil).status)
	}
	ok429 := 0
	for _, s := range got {
		if s == 429 {
			ok429++
		}
	}
	if got[0] != 200 || ok429 < 2 {
		t.Fatalf("statuses %v", got)
	}
	r := h.callKey("bp_a", "GET", "/me", nil)
	expect(t, r, 429, "TOO_MANY_REQUESTS_ERROR", "Rate limit exceeded")
	if r.header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Per key: another key is not limited.
	expect(t, h.callKey("bp_b", "GET", "/me", nil), 200, "SUCCESS", "")
	// Health and media need no key and are not limited.
	expect(t, h.callKey("", "GET", "/", nil), 200, "SUCCESS", "")
	// The bucket refills.
	time.Sleep(450 * time.Millisecond)
	expect(t, h.callKey("bp_a", "GET", "/me", nil), 200, "SUCCESS", "")
	if h.s.Count429() != ok429+1 {
		t.Fatalf("Count429 %d, want %d", h.s.Count429(), ok429+1)
	}
	if h.s.Count("GET /v1/me") != 11 {
		t.Fatalf("Count %d", h.s.Count("GET /v1/me"))
	}
}

// TestRateLimitStrict: the bucket forgives nothing. A request that arrives
// before its token is due is refused, so a client that bursts as hard as
// the limit allows is caught here rather than by the real API.
func TestRateLimitStrict(t *testing.T) {
	h := start(t, func(o *Options) { o.RateLimit, o.Burst = 5, 1 })
	expect(t, h.call("GET", "/me", nil), 200, "SUCCESS", "")
	time.Sleep(100 * time.Millisecond) // 100 ms before the next token is due
	expect(t, h.call("GET", "/me", nil), 429, "TOO_MANY_REQUESTS_ERROR", "Rate limit exceeded")
	time.Sleep(250 * time.Millisecond) // a token is due again
	expect(t, h.call("GET", "/me", nil), 200, "SUCCESS", "")
}

// TestCheckOrder pins reference §12.2: auth → rate limit → JSON → UUID →
// existence → validation → credits.
func TestCheckOrder(t *testing.T) {
	h := start(t, func(o *Options) {
		o.RateLimit, o.Burst = 0.001, 20
		o.Keys = map[string]Key{
			"bp_ok": {Credits: 100000}, "bp_lapsed": {Credits: 100000, Lapsed: true},
			"bp_poor": {Credits: 1}, "bp_limited": {Credits: 100000},
		}
	})
	// Use up bp_limited's tokens.
	for i := 0; i < 20; i++ {
		expect(t, h.callKey("bp_limited", "GET", "/me", nil), 200, "SUCCESS", "")
	}
	badInputs := runBody(coldEmailVersion, nil)
	cases := []struct {
		name   string
		key    string
		body   any
		status int
		code   string
		msg    string
	}{
		{"unknown key beats everything", "bp_nope", "{bad json", 401, "UNAUTHORIZED_ERROR", ""},
		{"lapsed beats rate limit and JSON", "bp_lapsed", "{bad json", 402, "PAYMENT_REQUIRED_ERROR", "An active Pro plan is required"},
		{"rate limit beats JSON", "bp_limited", "{bad json", 429, "TOO_MANY_REQUESTS_ERROR", ""},
		{"JSON beats UUID", "bp_ok", `{"promptVersionId": "x",`, 400, "BAD_REQUEST_ERROR", ""},
		{"non-object body", "bp_ok", `["x"]`, 400, "BAD_REQUEST_ERROR", ""},
		{"empty body", "bp_ok", ``, 400, "BAD_REQUEST_ERROR", ""},
		{"UUID beats existence", "bp_ok", map[string]any{"promptVersionId": "nope", "inputs": 5}, 422, "VALIDATION_ERROR", "Invalid promptVersionId"},
		{"promptVersionId missing", "bp_ok", map[string]any{"inputs": map[string]any{}}, 422, "VALIDATION_ERROR", "Invalid promptVersionId"},
		{"promptVersionId a number", "bp_ok", map[string]any{"promptVersionId": 7}, 422, "VALIDATION_ERROR", "Invalid promptVersionId"},
		{"existence beats validation", "bp_ok", map[string]any{"promptVersionId": unknownUUID, "inputs": 5}, 404, "NOT_FOUND_ERROR", "Prompt version not found"},
		{"a promptId is not a version", "bp_ok", runBody(coldEmailPrompt, nil), 404, "NOT_FOUND_ERROR", "Prompt version not found"},
		{"validation beats credits", "bp_poor", badInputs, 422, "VALIDATION_ERROR", "Missing required input"},
		{"credits", "bp_poor", coldBody, 402, "PAYMENT_REQUIRED_ERROR", "Not enough credits"},
		{"execute", "bp_ok", coldBody, 200, "SUCCESS", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expect(t, h.callKey(c.key, "POST", "/runs", c.body), c.status, c.code, c.msg)
		})
	}
	// The lapsed and unknown keys never touched the rate limiter.
	if h.s.Count429() != 1 {
		t.Fatalf("Count429 %d", h.s.Count429())
	}
}

func TestRequestLog(t *testing.T) {
	h := start(t, nil)
	// First, on a fresh connection: net/http retries an idempotent request
	// dropped on a reused one.
	h.s.InjectFault("GET /v1/resources", Fault{Kind: FaultDrop})
	if _, err := h.trySend("GET", "/resources", nil, nil); err == nil {
		t.Fatal("drop answered")
	}
	h.s.InjectFault("GET /v1/me", Fault{Status: 500})
	h.call("GET", "/me", nil)
	h.callKey("", "GET", "/me", nil)
	h.call("GET", "/runs?limit=2&status=succeeded", nil)
	h.call("GET", "/nowhere", nil)

	reqs := h.s.Requests()
	if len(reqs) != 5 {
		t.Fatalf("%d requests", len(reqs))
	}
	want := []struct {
		route  string
		status int
		key    bool
	}{
		{"GET /v1/resources", 0, false},
		{"GET /v1/me", 500, true},
		{"GET /v1/me", 401, false},
		{"GET /v1/runs", 200, true},
		{"", 404, true},
	}
	for i, w := range want {
		r := reqs[i]
		if r.Route != w.route || r.Status != w.status || (r.KeyHash != "") != w.key || r.Time.IsZero() || r.Method != "GET" {
			t.Errorf("request %d: %+v, want %+v", i, r, w)
		}
		if w.key && r.KeyHash != HashKey(TestKey) {
			t.Errorf("request %d: key hash %q", i, r.KeyHash)
		}
	}
	if reqs[3].Path != "/v1/runs" || reqs[3].Query.Get("limit") != "2" || reqs[3].Query.Get("status") != "succeeded" {
		t.Errorf("request 3: %+v", reqs[3])
	}
	if h.s.Count("GET /v1/me") != 2 || h.s.Count("*") != 5 || h.s.Count("GET /v1/runs") != 1 {
		t.Errorf("counts %d %d", h.s.Count("GET /v1/me"), h.s.Count("*"))
	}
	for _, r := range reqs {
		if strings.Contains(r.KeyHash, TestKey) || strings.Contains(r.Path, TestKey) {
			t.Fatal("key in clear in the log")
		}
	}
}
