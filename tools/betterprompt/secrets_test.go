package betterprompt_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/leakcheck"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// The API key never appears in a log line at any level, an error or a tool
// result, whatever path a call takes, even when the API (or a proxy in front
// of it) echoes the key back raw, JSON-escaped or percent-encoded.
func TestKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	const canary = "bp_CANARY_9f2c41d7e8"
	for _, key := range []string{canary, canary + "_unknown"} {
		t.Run(key, func(t *testing.T) {
			t.Parallel()
			// Inside a bubble the client's retry backoffs, Retry-After and the
			// simulated runs pass on the virtual clock: no real waiting.
			inBubble(t, func(t *testing.T) {
				var logs betterprompt.SyncBuffer
				logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
				e := newEnv(t, withPipe(), withKey(key), withSyncWindow(50*time.Millisecond), withTimeScale(0.02),
					withFake(func(o *fakeapi.Options) { o.Keys[canary] = fakeapi.Key{Credits: 100000} }),
					withClient(func(o *bpapi.Options) { o.Logger = logger; o.MaxRetryWait = 2 * time.Second }),
					withDeps(func(d *betterprompt.Toolset) { d.Logger = logger }))
				var results []string
				call := func(tool string, args map[string]any) *mcp.CallToolResult {
					res := e.call(t, tool, args)
					wire, err := json.Marshal(res) // text, links and structuredContent
					if err != nil {
						t.Fatal(err)
					}
					results = append(results, text(res), string(wire))
					return res
				}
				call("search_prompts", map[string]any{"query": "email"})
				call("get_prompt", map[string]any{"prompt_id": coldEmailPrompt})
				call("get_credits", nil)
				call("run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
				call("run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 0.05,
					"inputs": researchInputs})
				call("run_prompt", map[string]any{"prompt_id": failingPrompt, "inputs": map[string]any{"textInputs": map[string]any{"ticker": "X"}}})
				call("run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": map[string]any{}})
				call("get_run", map[string]any{"run_id": "00000000-0000-4000-8000-000000000000", "wait_seconds": 0})
				for _, f := range []fakeapi.Fault{{Status: 500, Count: 10}, {Kind: fakeapi.FaultHTML, Count: 10}, {Status: 429, RetryAfter: "1", Count: 10}} {
					e.fake.InjectFault("*", f)
					call("get_credits", nil)
					call("run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
					e.fake.ClearFaults()
				}
				// Answers that echo the key in other forms; each result must show
				// the placeholder, so that the echo is known to have arrived.
				for _, ec := range keyEchoes(t, e.fake, key) {
					e.fake.InjectFault(ec.route, ec.fault)
					res := call(ec.tool, ec.args)
					e.fake.ClearFaults()
					if got := results[len(results)-2] + results[len(results)-1]; !strings.Contains(got, "[redacted]") {
						t.Errorf("%s: the result does not show [redacted], so the echo did not arrive: %s", ec.name, text(res))
					}
				}
				if logs.String() == "" {
					t.Fatal("no logs were written; the test would prove nothing")
				}
				if form := leakcheck.Find(logs.String(), canary); form != "" {
					t.Errorf("the key appears (%s) in the logs:\n%s", form, logs.String())
				}
				for _, r := range results {
					if form := leakcheck.Find(r, canary); form != "" {
						t.Errorf("the key appears (%s) in a result: %s", form, r)
					}
				}
			})
		})
	}
}

// keyEcho is an upstream answer that echoes the key, and the tool call that
// meets it.
type keyEcho struct {
	name  string
	route string
	fault fakeapi.Fault
	tool  string
	args  map[string]any
}

// keyEchoes returns answers that echo key in escaped and encoded forms:
// error messages, an object message, an HTML page from a proxy, and
// successful answers whose data carries it.
func keyEchoes(t *testing.T, fake *fakeapi.Server, key string) []keyEcho {
	t.Helper()
	f := leakcheck.Forms(key)
	envelope := func(status, message string) string {
		return `{"status":"` + status + `","message":` + message + `,"data":null}`
	}
	// Successful answers: the fake's own, with a title made to carry the key.
	prompt := withEchoedTitle(t, fake, "/v1/prompts/"+twoVersionsPrompt, f["json _"], "data")
	search := withEchoedTitle(t, fake, "/v1/prompts/publish?q=email", f["percent all lower"], "data", "rows", "0")
	run := `{"status":"SUCCESS","message":"OK","data":{"runId":"00000000-0000-4000-8000-000000000001","promptVersionId":"` + coldEmailVersion +
		`","outputs":[{"type":"text","data":"Your key is ` + f["json all"] + `"},{"type":"image","data":"https://cdn.example.com/a.png?key=` + f["percent _"] + `"}],` +
		`"runStatus":"succeeded","tokens":12,"createdAt":"` + time.Now().UTC().Format(time.RFC3339) + `"}}`
	// run_prompt's first request is POST /v1/runs when the version is cached,
	// and a read (that fails with an unknown key) otherwise: "*" meets both.
	// run_prompt with a prompt_id always reads the prompt first, whether or
	// not the key works and whatever is cached.
	runArgs := map[string]any{"prompt_id": coldEmailPrompt, "inputs": coldEmailInputs}
	return []keyEcho{
		{"401, partly JSON-escaped", "GET /v1/me/credits",
			fakeapi.Fault{Status: 401, Body: envelope("UNAUTHORIZED_ERROR", `"invalid API key `+f["json _"]+`"`)}, "get_credits", nil},
		{"500, fully JSON-escaped", "GET /v1/me/credits",
			fakeapi.Fault{Status: 500, Count: 10, Body: envelope("SERVER_ERROR", `"bad key `+f["json all"]+`"`)}, "get_credits", nil},
		{"422, percent-encoded", "GET /v1/prompts/{promptId}",
			fakeapi.Fault{Status: 422, Body: envelope("VALIDATION_ERROR", `"key `+f["percent _"]+` not allowed"`)}, "run_prompt", runArgs},
		{"422, percent-encoded lower case", "GET /v1/prompts/{promptId}",
			fakeapi.Fault{Status: 422, Body: envelope("VALIDATION_ERROR", `"key `+f["percent _ lower"]+` not allowed"`)}, "run_prompt", runArgs},
		{"402, fully percent-encoded", "GET /v1/prompts/{promptId}",
			fakeapi.Fault{Status: 402, Body: envelope("PAYMENT_REQUIRED_ERROR", `"no credits for `+f["percent all"]+`"`)}, "run_prompt", runArgs},
		{"500, object message", "GET /v1/me/credits",
			fakeapi.Fault{Status: 500, Count: 10, Body: envelope("SERVER_ERROR", `{"error":"bad key","key":"`+f["json _"]+`"}`)}, "get_credits", nil},
		{"502 HTML page, percent-encoded", "GET /v1/me/credits",
			fakeapi.Fault{Kind: fakeapi.FaultHTML, Count: 10, Body: `<html><body><p>refused /v1/me/credits?api_key=` + f["percent _ lower"] + `</p></body></html>`},
			"get_credits", nil},
		{"200 prompt, JSON-escaped title", "GET /v1/prompts/{promptId}",
			fakeapi.Fault{Status: 200, Body: prompt}, "get_prompt", map[string]any{"prompt_id": twoVersionsPrompt}},
		{"200 search, percent-encoded title", "GET /v1/prompts/publish",
			fakeapi.Fault{Status: 200, Body: search}, "search_prompts", map[string]any{"query": "email"}},
		{"200 run, escaped outputs", "GET /v1/runs/{runId}",
			fakeapi.Fault{Status: 200, Body: run}, "get_run", map[string]any{"run_id": "00000000-0000-4000-8000-000000000001", "wait_seconds": 0}},
	}
}

// withEchoedTitle returns the fake's answer to GET target with the title of
// the object at path set to "Echo " followed by form, written into the body
// as is (so that an escaped form stays escaped on the wire).
func withEchoedTitle(t *testing.T, fake *fakeapi.Server, target, form string, path ...string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer bp_CANARY_9f2c41d7e8")
	rec := httptest.NewRecorder()
	fake.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, rec.Code, rec.Body)
	}
	var v any
	if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
		t.Fatal(err)
	}
	obj := v
	for _, p := range path {
		switch o := obj.(type) {
		case map[string]any:
			obj = o[p]
		case []any:
			i, err := strconv.Atoi(p)
			if err != nil || i >= len(o) {
				t.Fatalf("GET %s: no element %s", target, p)
			}
			obj = o[i]
		}
	}
	m, ok := obj.(map[string]any)
	if !ok {
		t.Fatalf("GET %s: %v is not an object", target, path)
	}
	m["title"] = "Echo TITLE"
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Replace(string(b), "TITLE", form, 1)
}
