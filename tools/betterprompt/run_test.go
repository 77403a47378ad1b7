package betterprompt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

const (
	routeCreate = "POST /v1/runs"
	routeGetRun = "GET /v1/runs/{runId}"
	routeList   = "GET /v1/runs"
)

func runView(t *testing.T, res *mcp.CallToolResult) betterprompt.RunView {
	t.Helper()
	var v betterprompt.RunView
	structured(t, res, &v)
	return v
}

// A fast run costs one POST and no polling.
func TestRunPromptFast(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
	mustOK(t, res)
	v := runView(t, res)
	if v.Status != "succeeded" || v.RunID == "" || v.PromptVersionID != coldEmailVersion || len(v.Outputs) != 1 || v.Outputs[0].Type != "text" {
		t.Fatalf("run view = %+v", v)
	}
	if v.Credits == nil || *v.Credits <= 0 {
		t.Errorf("credits = %v, want the run's cost", v.Credits)
	}
	if !strings.Contains(text(res), v.Outputs[0].Data) || !strings.Contains(text(res), "succeeded") {
		t.Errorf("text content lacks the output: %s", text(res))
	}
	if n := e.fake.Count(routeCreate); n != 1 {
		t.Errorf("%d POSTs, want 1", n)
	}
	if n := e.fake.Count(routeGetRun) + e.fake.Count(routeList); n != 0 {
		t.Errorf("%d polling requests for a fast run, want 0", n)
	}
	// A second run of the same version reuses the cached configuration.
	before := len(e.fake.Requests())
	mustOK(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs}))
	if n := len(e.fake.Requests()) - before; n != 1 {
		t.Errorf("second run made %d requests, want 1 (the POST)", n)
	}
}

func TestRunPromptByPromptID(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.call(t, "run_prompt", map[string]any{"prompt_id": emptyConfigPrompt})
	mustOK(t, res)
	if v := runView(t, res); v.Status != "succeeded" {
		t.Fatalf("run of a prompt without inputs: %+v", v)
	}
}

// Invalid inputs are caught locally: an isError naming the field, and no POST.
func TestRunPromptInvalidInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cases := []struct {
		name    string
		version string
		inputs  any
		want    []string
	}{
		{"missing required text", coldEmailVersion, map[string]any{"textInputs": map[string]any{"company_name": "Acme"}}, []string{"inputs.textInputs.recipient_role", "get_prompt"}},
		{"invalid select value", adHeadlineVersion, map[string]any{"textInputs": map[string]any{"objective": "clicks", "platform": "myspace"}}, []string{"textInputs.platform", "linkedin"}},
		{"label instead of value", adHeadlineVersion, map[string]any{"textInputs": map[string]any{"objective": "clicks", "platform": "LinkedIn"}}, []string{"textInputs.platform"}},
		{"too many choices", channelsVersion, map[string]any{"textInputs": map[string]any{"message": "We launched", "channels": []string{"x", "instagram", "linkedin", "threads"}}}, []string{"textInputs.channels"}},
		{"wrong image count", photoBoothVersion, map[string]any{"textInputs": map[string]any{}, "imageInputs": []any{map[string]any{"type": "url", "url": "https://example.com/a.png"}}}, []string{"imageInputs", "2"}},
		{"bad image scheme", photoBoothVersion, map[string]any{"imageInputs": []any{
			map[string]any{"type": "url", "url": "file:///etc/passwd"}, map[string]any{"type": "url", "url": "https://example.com/b.png"}}}, []string{"imageInputs[0]"}},
		{"unknown text key", coldEmailVersion, map[string]any{"textInputs": map[string]any{"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "x", "tone": "warm"}}, []string{"tone"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": tc.version, "inputs": tc.inputs})
			mustError(t, res, append(tc.want, "no credits spent")...)
		})
	}
	if n := e.fake.Count(routeCreate); n != 0 {
		t.Errorf("%d POSTs for invalid inputs, want 0", n)
	}
}

func TestRunPromptRunOptions(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	icon := map[string]any{"textInputs": map[string]any{"app_concept": "habit tracker", "style": "clay"}}
	mustError(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": appIconVersion, "inputs": icon,
		"run_model": "gpt-image-1", "run_options": map[string]any{"size": "4096x4096"}}), "run_options.size", "1024x1024")
	mustError(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": appIconVersion, "inputs": icon,
		"run_model": "dall-e-9"}), "run_model", "gpt-image-1")
	if n := e.fake.Count(routeCreate); n != 0 {
		t.Fatalf("%d POSTs for invalid run options, want 0", n)
	}
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": appIconVersion, "inputs": icon,
		"run_model": "gpt-image-1", "run_options": map[string]any{"size": "1024x1536", "quality": "high"}})
	mustOK(t, res)
}

// Image outputs come back as a text line with the URL and its expiry plus a
// resource_link with the right MIME type.
func TestRunPromptImageOutputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": appIconVersion,
		"inputs": map[string]any{"textInputs": map[string]any{"app_concept": "habit tracker", "style": "glossy-3d"}}})
	mustOK(t, res)
	v := runView(t, res)
	var links []mcp.ResourceLink
	for _, c := range res.Content {
		if l, ok := c.(mcp.ResourceLink); ok {
			links = append(links, l)
		}
	}
	images := 0
	for _, o := range v.Outputs {
		if o.Type != "image" {
			continue
		}
		images++
		if o.MimeType != "image/png" || o.ExpiresAt == "" || !strings.HasPrefix(o.Data, "http") {
			t.Errorf("image output %+v", o)
		}
		if !strings.Contains(text(res), o.Data) {
			t.Errorf("image URL missing from the text content")
		}
		// The fake's links say when they expire; expires_at is that time.
		if u, err := url.Parse(o.Data); err == nil {
			if unix, err := strconv.ParseInt(u.Query().Get("expires"), 10, 64); err == nil && o.ExpiresAt != time.Unix(unix, 0).UTC().Format(time.RFC3339) {
				t.Errorf("expires_at %s, but the link expires at %v", o.ExpiresAt, time.Unix(unix, 0).UTC())
			}
		}
	}
	if images == 0 || len(links) != images {
		t.Fatalf("%d images, %d resource links: %+v", images, len(links), res.Content)
	}
	if links[0].MIMEType != "image/png" || links[0].URI != v.Outputs[len(v.Outputs)-images].Data {
		t.Errorf("resource link %+v", links[0])
	}
}

// A failed run is an isError result with the API's error text and the run_id.
func TestRunPromptFailedRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.call(t, "run_prompt", map[string]any{"prompt_id": failingPrompt, "inputs": map[string]any{"textInputs": map[string]any{"ticker": "ACME"}}})
	v := runView(t, res)
	mustError(t, res, "failed", "the model refused", v.RunID)
	if v.Status != "failed" || v.RunID == "" {
		t.Errorf("failed run view %+v", v)
	}
	if n := strings.Count(text(res), "the model refused"); n != 1 {
		t.Errorf("the API's reason appears %d times, want once: %s", n, text(res))
	}
}

// A run that outlasts the synchronous window: the POST answers 504 with the
// run id, and the tool polls until the run succeeds.
func TestRunPromptGatewayTimeoutThenPoll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSyncWindow(50*time.Millisecond), withTimeScale(0.02)) // deep research: 30 s → 600 ms
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "inputs": researchInputs})
	mustOK(t, res)
	if v := runView(t, res); v.Status != "succeeded" || len(v.Outputs) == 0 {
		t.Fatalf("run view %+v", v)
	}
	if n := e.fake.Count(routeCreate); n != 1 {
		t.Errorf("%d POSTs, want 1", n)
	}
	if n := e.fake.Count(routeGetRun); n == 0 {
		t.Errorf("no polling after a 504")
	}
}

// The wait ends while the API still holds the POST: the agent gets an id
// right away, and get_run later returns the outputs.
func TestRunPromptWaitEndsBeforePostReturns(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSyncWindow(10*time.Second), withTimeScale(0.05)) // deep research: 1.5 s
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 0.3, "inputs": researchInputs})
	mustOK(t, res)
	v := runView(t, res)
	if v.Status != "queued" && v.Status != "running" {
		t.Fatalf("status %q, want queued or running", v.Status)
	}
	if v.RunID == "" || !strings.Contains(text(res), "get_run") || !strings.Contains(text(res), v.RunID) {
		t.Fatalf("no run id or next step: %s", text(res))
	}
	got := e.call(t, "get_run", map[string]any{"run_id": v.RunID, "wait_seconds": 10})
	mustOK(t, got)
	gv := runView(t, got)
	if gv.Status != "succeeded" || len(gv.Outputs) == 0 {
		t.Fatalf("get_run after the wait: %+v", gv)
	}
	// The API still held the POST at the first deadline: the first answer
	// was a temporary handle, which get_run turned into the run's own id.
	if gv.RunID == v.RunID || !strings.Contains(text(got), "temporary id") || !strings.Contains(gv.Message, gv.RunID) {
		t.Errorf("the handle %s turned into run %s without saying so: %s", v.RunID, gv.RunID, text(got))
	}
	if n := e.fake.Count(routeCreate); n != 1 {
		t.Errorf("%d POSTs, want 1", n)
	}
}

// The wait ends during polling: status running with the upstream run id.
func TestRunPromptWaitEndsDuringPolling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSyncWindow(50*time.Millisecond), withTimeScale(0.1)) // deep research: 3 s
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 0.5, "inputs": researchInputs})
	mustOK(t, res)
	v := runView(t, res)
	if v.Status != "running" && v.Status != "queued" {
		t.Fatalf("status %q", v.Status)
	}
	if v.Credits != nil {
		t.Errorf("a running run shows credits %d; it must show none until it ends", *v.Credits)
	}
	runs := e.fake.Runs(testKey)
	if len(runs) != 1 || runs[0].RunID != v.RunID {
		t.Fatalf("run id %s is not the upstream id (%+v)", v.RunID, runs)
	}
	now := e.call(t, "get_run", map[string]any{"run_id": v.RunID, "wait_seconds": 0})
	mustOK(t, now)
	if gv := runView(t, now); gv.Status == "succeeded" {
		t.Logf("run already finished")
	}
	done := e.call(t, "get_run", map[string]any{"run_id": v.RunID, "wait_seconds": 10})
	mustOK(t, done)
	if gv := runView(t, done); gv.Status != "succeeded" {
		t.Fatalf("get_run: %+v", gv)
	}
}

// POST answered 500, or cut off: exactly one POST, and an answer that says
// what is known: refused (nothing was run), not started (no run showed in
// the run list within the start bound), or the run found in the list.
func TestRunPromptCreateFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		fault fakeapi.Fault
		want  []string
	}{
		{"500", fakeapi.Fault{Status: 500}, []string{"No run was started", "safe to call run_prompt again"}},
		{"connection dropped before the API saw it", fakeapi.Fault{Kind: fakeapi.FaultDrop}, []string{"No run was started"}},
		{"HTML 502 page", fakeapi.Fault{Kind: fakeapi.FaultHTML}, []string{"No run was started"}},
		{"422 from the API", fakeapi.Fault{Status: 422}, []string{"422", "get_prompt", "Nothing was run"}},
		{"402 from the API", fakeapi.Fault{Status: 402}, []string{"402", "get_credits", "Nothing was run"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, withStartBound(300*time.Millisecond))
			e.fake.InjectFault(routeCreate, tc.fault)
			res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
			mustError(t, res, tc.want...)
			if n := e.fake.Count(routeCreate); n != 1 {
				t.Errorf("%d POSTs, want exactly 1", n)
			}
		})
	}
	t.Run("run created, then the connection dropped", func(t *testing.T) {
		e := newEnv(t)
		e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultDropAfterCreate})
		res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 1})
		runs := e.fake.Runs(testKey)
		// Other clients may use the key: the run is named, not claimed.
		if v := recovery(t, res); len(runs) != 1 || !v.hasCandidate(runs[0].RunID) || v.Confirmed == nil || *v.Confirmed {
			t.Fatalf("run %+v not offered as a candidate: %s", runs, text(res))
		}
		if n := e.fake.Count(routeCreate); n != 1 {
			t.Errorf("%d POSTs, want exactly 1", n)
		}
	})
	t.Run("run created, then the connection dropped; the key is this server's alone", func(t *testing.T) {
		e := newEnv(t, withExclusiveKey())
		e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultDropAfterCreate})
		res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
		mustOK(t, res) // the run is found in the run list and followed
		v := runView(t, res)
		runs := e.fake.Runs(testKey)
		if len(runs) != 1 || runs[0].RunID != v.RunID || !v.Confirmed {
			t.Fatalf("run %s not recovered (%+v)", v.RunID, runs)
		}
		if n := e.fake.Count(routeCreate); n != 1 {
			t.Errorf("%d POSTs, want exactly 1", n)
		}
	})
}

// Cancelling the call stops the wait at once; the run goes on upstream.
func TestRunPromptCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSyncWindow(50*time.Millisecond), withTimeScale(0.1))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan time.Time, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "run_prompt"
		req.Params.Arguments = map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 20,
			"inputs": researchInputs}
		_, _ = e.client.CallTool(ctx, req)
		done <- time.Now()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.fake.Count(routeGetRun) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancelled := time.Now()
	cancel()
	select {
	case at := <-done:
		if at.Sub(cancelled) > 2*time.Second {
			t.Errorf("the call returned %v after cancellation", at.Sub(cancelled))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the call did not return after cancellation")
	}
	polls := e.fake.Count(routeGetRun)
	time.Sleep(300 * time.Millisecond)
	if later := e.fake.Count(routeGetRun); later != polls {
		t.Errorf("polling went on after cancellation: %d → %d", polls, later)
	}
	if runs := e.fake.Runs(testKey); len(runs) != 1 {
		t.Errorf("want the run to exist upstream, got %+v", runs)
	}
}

// Progress notifications arrive while a run is waited for, with growing
// progress values.
func TestRunPromptProgress(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSyncWindow(50*time.Millisecond), withTimeScale(0.02))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := e.callCtx(ctx, t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer,
		"inputs": researchInputs}, "tok-1")
	mustOK(t, res)
	deadline := time.Now().Add(time.Second)
	for e.progressCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.progress) == 0 {
		t.Fatal("no progress notification")
	}
	// The first notification already carries the id to follow the run
	// with, so that a call cut off by its host (or a server killed during
	// it) leaves the agent able to find its run.
	if first, _ := e.progress[0].Params.AdditionalFields["message"].(string); !strings.Contains(first, "run_id=") {
		t.Errorf("the first progress message does not carry the run id: %q", first)
	}
	last := -1.0
	for _, n := range e.progress {
		p, _ := n.Params.AdditionalFields["progress"].(float64)
		if p <= last {
			t.Errorf("progress did not increase: %v after %v", p, last)
		}
		last = p
		if tok := n.Params.AdditionalFields["progressToken"]; tok != "tok-1" {
			t.Errorf("progress token %v", tok)
		}
		if msg, _ := n.Params.AdditionalFields["message"].(string); !strings.Contains(msg, "elapsed") {
			t.Errorf("progress message %q", msg)
		}
	}
}

// Twenty concurrent runs all finish, with no 429 from the API: the shared
// rate limiter keeps polling under 5 requests per second.
func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	// On the bubble's virtual clock the 5 requests per second (about 8 s of
	// it) take no real time, so -short no longer skips the test.
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, withPipe(), withSyncWindow(50*time.Millisecond), withTimeScale(0.02),
			withDeps(func(d *betterprompt.Toolset) { d.Wait.PollMin, d.Wait.PollMax = 200*time.Millisecond, time.Second }))
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 60,
					"inputs": map[string]any{"textInputs": map[string]any{"depth": "overview", "question": fmt.Sprintf("question %d?", i)}}})
				if res.IsError || runView(t, res).Status != "succeeded" {
					errs <- fmt.Errorf("run %d: %s", i, text(res))
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := e.fake.Count(routeCreate); n != 20 {
			t.Errorf("%d POSTs, want 20", n)
		}
		if n := e.fake.Count429(); n != 0 {
			t.Errorf("the API answered 429 %d times", n)
		}
	})
}

func TestGetRunUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mustError(t, e.call(t, "get_run", map[string]any{"run_id": "00000000-0000-4000-8000-000000000000", "wait_seconds": 0}), "No run", "run_prompt")
}

// Models sometimes send inputs as a JSON string holding the object.
func TestRunPromptDoubleEncodedInputs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	enc, _ := json.Marshal(coldEmailInputs)
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": string(enc)})
	mustOK(t, res)
}

// The calls waiting for runs are limited per key: past the limit run_prompt
// refuses before spending, and get_run answers at once instead of waiting.
func TestWaitLimitPerKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSyncWindow(50*time.Millisecond), withTimeScale(0.05), // deep research: 1.5 s
		withDeps(func(d *betterprompt.Toolset) { d.MaxWaitsPerKey = 1 }))
	slow := map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 20,
		"inputs": researchInputs}
	first := make(chan *mcp.CallToolResult, 1)
	go func() { first <- e.call(t, "run_prompt", slow) }()
	deadline := time.Now().Add(5 * time.Second)
	for e.fake.Count(routeCreate) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	mustError(t, e.call(t, "run_prompt", slow), "already waiting", "nothing was run")
	runs := e.fake.Runs(testKey)
	if len(runs) != 1 {
		t.Fatalf("%d runs upstream, want 1", len(runs))
	}
	start := time.Now()
	res := e.call(t, "get_run", map[string]any{"run_id": runs[0].RunID, "wait_seconds": 20})
	mustOK(t, res)
	if v := runView(t, res); v.Status == "succeeded" && time.Since(start) > time.Second {
		t.Errorf("get_run waited %v although no wait slot was free", time.Since(start))
	}
	mustOK(t, <-first)
	// With the slot free again, get_run waits as asked.
	if v := runView(t, e.call(t, "get_run", map[string]any{"run_id": runs[0].RunID, "wait_seconds": 20})); v.Status != "succeeded" {
		t.Errorf("get_run after the first call ended: %+v", v)
	}
}

// An input refused before the prompt is read names the prompt it was for.
func TestShapeErrorNamesThePrompt(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion,
		"inputs": map[string]any{"imageInputs": []any{map[string]any{"type": "url", "url": "file:///etc/passwd"}}}})
	mustError(t, res, "prompt_version_id="+coldEmailVersion, "nothing was run")
	if n := e.fake.Count("*"); n != 0 {
		t.Errorf("%d requests for inputs refused by their shape", n)
	}
}
