package betterprompt_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// Regression tests for the second review of the run lifecycle.

// A run id handed out as a local handle reaches the info log once the API
// answers, so it survives the process.
func TestHandedOutHandleIsLogged(t *testing.T) {
	t.Parallel()
	logs := &betterprompt.SyncBuffer{}
	e := newEnv(t, withSyncWindow(500*time.Millisecond), withDeps(func(d *betterprompt.Toolset) {
		d.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}))
	e.fake.InjectFault("GET /v1/runs", fakeapi.Fault{Status: 500, Count: 100})
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "inputs": researchInputs, "wait_seconds": 0})
	mustOK(t, res)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.deps.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	runs := e.fake.Runs(testKey)
	if len(runs) != 1 || !strings.Contains(logs.String(), runs[0].RunID) {
		t.Errorf("run id not in the info log:\n%s", logs.String())
	}
}

// get_run on a handle whose POST the API refused says that nothing ran, and
// never that the handle belongs to another server.
func TestGetRunOnARefusedHandle(t *testing.T) {
	t.Parallel()
	for _, f := range []fakeapi.Fault{
		{Status: 404, Latency: 300 * time.Millisecond},
		{Status: 429, RetryAfter: "1", Count: 100, Latency: 100 * time.Millisecond},
		{Status: 422, Latency: 300 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("HTTP %d", f.Status), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, withClient(func(o *bpapi.Options) { o.MaxRetryWait = 1500 * time.Millisecond }))
			e.fake.InjectFault("POST /v1/runs", f)
			res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "inputs": researchInputs, "wait_seconds": 0})
			v := runView(t, res)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = e.deps.Drain(ctx) // the POST has answered
			e.fake.ClearFaults()
			got := e.call(t, "get_run", map[string]any{"run_id": v.RunID, "wait_seconds": 1})
			mustError(t, got, "no credits were spent")
			if strings.Contains(text(got), "another instance") {
				t.Errorf("get_run blames another instance: %s", text(got))
			}
			if n := len(e.fake.Runs(testKey)); n != 0 {
				t.Errorf("%d runs upstream", n)
			}
		})
	}
}

// get_run answers within its wait even when a poll hangs. It runs on the
// bubble's virtual clock, so the bound below is measured exactly.
func TestGetRunKeepsItsDeadline(t *testing.T) {
	t.Parallel()
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, withPipe(), withSyncWindow(100*time.Millisecond), withTimeScale(1))
		res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "inputs": researchInputs, "wait_seconds": 0.5})
		v := runView(t, res)
		e.fake.InjectFault("GET /v1/runs/{runId}", fakeapi.Fault{Latency: 20 * time.Second, Count: 100})
		start := time.Now()
		got := e.call(t, "get_run", map[string]any{"run_id": v.RunID, "wait_seconds": 2})
		// wait_seconds plus the 5 s allowed for the last look-up (exactly 7 s
		// on the virtual clock; the margin is the one the test had on real
		// time); without the bound a poll would hang for 20 s.
		if took := time.Since(start); took > 11*time.Second {
			t.Errorf("get_run(wait_seconds=2) took %v", took)
		}
		if got.IsError && !strings.Contains(text(got), v.RunID) {
			t.Errorf("the error lost the run id: %s", text(got))
		}
		e.fake.ClearFaults()
	})
}

// One 404 while polling a run this process started is not "no such run".
func TestTransient404WhilePolling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSyncWindow(100*time.Millisecond))
	e.fake.InjectFault("GET /v1/runs/{runId}", fakeapi.Fault{Status: 404})
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "inputs": researchInputs, "wait_seconds": 3})
	mustOK(t, res)
	if v := runView(t, res); v.Status != "succeeded" {
		t.Errorf("run view %+v", v)
	}
}

// A run whose POST was cut off after it was created is found in the run
// list even when many newer runs push it off the first page.
func TestUnknownOutcomeRunFoundPastTheFirstPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSyncWindow(100*time.Millisecond), withExclusiveKey(),
		withClient(func(o *bpapi.Options) { o.MaxRetryWait, o.RateLimit = time.Second, -1 }),
		withFake(func(o *fakeapi.Options) { o.RateLimit = -1 }))
	e.fake.InjectFault("POST /v1/runs", fakeapi.Fault{Kind: fakeapi.FaultDropAfterCreate})
	e.fake.InjectFault("GET /v1/runs", fakeapi.Fault{Status: 500, Count: -1})
	first := e.call(t, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "inputs": researchInputs, "wait_seconds": 1})
	if first.IsError || !strings.Contains(text(first), "Do not start the prompt again") {
		t.Fatalf("first answer: %s", text(first))
	}
	e.fake.ClearFaults()
	handle := ""
	for _, f := range strings.Fields(text(first)) {
		if strings.HasPrefix(f, "run_id=") {
			handle = strings.TrimRight(strings.TrimPrefix(f, "run_id="), ".,;")
		}
	}
	for range 60 { // the account's other work: other prompts
		_, _ = e.deps.Client.CreateRun(context.Background(), bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion,
			Inputs: bpapi.RunInputs{TextInputs: map[string]string{"company_name": "A", "recipient_role": "CTO", "value_proposition": "x"}}})
	}
	got := e.call(t, "get_run", map[string]any{"run_id": handle, "wait_seconds": 5})
	mustOK(t, got)
	var ours string
	for _, r := range e.fake.Runs(testKey) {
		if r.PromptVersionID == deepResearchVer {
			ours = r.RunID
		}
	}
	if v := runView(t, got); v.RunID != ours {
		t.Errorf("get_run followed %s, want %s", v.RunID, ours)
	}
}
