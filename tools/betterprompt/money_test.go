package betterprompt_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// Tests of the money path under attack: runs that must never be lost,
// started twice, or handed to the wrong caller, in conditions a single
// well-behaved process never meets (faults after the API did the work,
// other clients of the same key, tenants).

// recoveryView is the part of a run result that recovery through the run
// list fills in.
type recoveryView struct {
	RunID      string `json:"run_id"`
	Status     string `json:"status"`
	Confirmed  *bool  `json:"confirmed"`
	Candidates []struct {
		RunID     string `json:"run_id"`
		CreatedAt string `json:"created_at"`
		Status    string `json:"status"`
	} `json:"candidates"`
	Outputs []betterprompt.OutputView `json:"outputs"`
}

func recovery(t *testing.T, res *mcp.CallToolResult) recoveryView {
	t.Helper()
	var v recoveryView
	structured(t, res, &v)
	return v
}

func (v recoveryView) hasCandidate(runID string) bool {
	return slices.ContainsFunc(v.Candidates, func(c struct {
		RunID     string `json:"run_id"`
		CreatedAt string `json:"created_at"`
		Status    string `json:"status"`
	}) bool {
		return c.RunID == runID
	})
}

// withLogs captures the server's logs at info level.
func withLogs(logs *betterprompt.SyncBuffer) envOption {
	return withDeps(func(d *betterprompt.Toolset) {
		d.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	})
}

// withStartBound shortens the time after which a submission that shows no
// run in the run list counts as not started.
func withStartBound(d time.Duration) envOption {
	return withDeps(func(deps *betterprompt.Toolset) { deps.Wait.StartBound = d })
}

// Two concurrent starts of one prompt whose outcomes are both unknown (one
// POST answered 500 before the API saw it, the other 500 after the API
// created the run) look in the run list, log the run they find, and hand it
// to neither call as certainly its own.
func TestTwoUncertainStartsOfOnePrompt(t *testing.T) {
	t.Parallel()
	logs := &betterprompt.SyncBuffer{}
	e := newEnv(t, withLogs(logs), withStartBound(2500*time.Millisecond))
	start := time.Now()
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 500, Latency: 100 * time.Millisecond})
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultStatusAfterCreate, Latency: 100 * time.Millisecond})

	results := make([]*mcp.CallToolResult, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			results[i] = e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion,
				"inputs": coldEmailInputs, "wait_seconds": 1.5})
		})
	}
	wg.Wait()
	runs := e.fake.Runs(testKey)
	if len(runs) != 1 || e.fake.Count(routeCreate) != 2 {
		t.Fatalf("setup: %d runs, %d POSTs; want 1 run and 2 POSTs", len(runs), e.fake.Count(routeCreate))
	}
	created := runs[0].RunID
	if e.fake.Count(routeList) == 0 {
		t.Errorf("neither call looked in the run list: %q / %q", text(results[0]), text(results[1]))
	}
	for _, res := range results {
		if strings.Contains(text(res), "shows in the account's run list yet") && e.fake.Count(routeList) == 0 {
			t.Errorf("the result claims a look that was not made: %s", text(res))
		}
		v := recovery(t, res)
		if v.RunID == created || len(v.Outputs) > 0 {
			t.Errorf("the run was handed out as this call's own: %+v", v)
		}
	}
	if !strings.Contains(logs.String(), created) {
		t.Errorf("the created run %s never reached the log:\n%s", created, logs.String())
	}

	// Each handle reaches a definitive answer: once the start bound has
	// passed, both list the run as a candidate they cannot confirm, from a
	// look at the run list made after the bound.
	lists := e.fake.Count(routeList)
	time.Sleep(time.Until(start.Add(2900 * time.Millisecond))) // the bound runs from the POSTs' failure, ~100 ms in
	for _, res := range results {
		handle := recovery(t, res).RunID
		got := e.call(t, "get_run", map[string]any{"run_id": handle, "wait_seconds": 1})
		if e.fake.Count(routeList) == lists {
			t.Errorf("the run list was not read again after the bound: %s", text(got))
		}
		if !strings.Contains(text(got), "ask the user which run is theirs") {
			t.Errorf("the answer after the bound is not final: %s", text(got))
		}
		v := recovery(t, got)
		if v.Confirmed == nil || *v.Confirmed || !v.hasCandidate(created) || len(v.Outputs) > 0 || v.Status != "unconfirmed" {
			t.Errorf("get_run(%s) = %+v; want unconfirmed with candidate %s", handle, v, created)
		}
	}
}

// newPeer starts a second server process on e's fake API and key, with
// e's wait settings: another replica, another program using the same
// account, or this server after a restart.
func newPeer(t *testing.T, e *env, opts ...func(*betterprompt.Toolset)) *client.Client {
	t.Helper()
	d := &betterprompt.Toolset{Client: bpapi.New(bpapi.Options{BaseURL: e.deps.Client.BaseURL(), APIKey: testKey}), Wait: e.deps.Wait}
	for _, o := range opts {
		o(d)
	}
	return connect(t, mcpserver.New("peer", []tools.Toolset{d}), d, nil)
}

func callWith(t *testing.T, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

// waitForCount waits until the fake has seen n requests of route.
func waitForCount(t *testing.T, f *fakeapi.Server, route string, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); f.Count(route) < n; {
		if time.Now().After(deadline) {
			t.Fatalf("the fake saw %d %s, want %d", f.Count(route), route, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Two processes on one key: the run that another process started is never
// handed to this one's agent as its own, neither when this POST failed
// without creating anything nor when it is merely slow.
func TestAnotherProcesssRunIsNotHandedOut(t *testing.T) {
	t.Parallel()
	t.Run("this POST answered 502 and created nothing", func(t *testing.T) {
		e := newEnv(t)
		peer := newPeer(t, e)
		e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 502, Latency: 400 * time.Millisecond})
		ours := make(chan *mcp.CallToolResult, 1)
		go func() {
			ours <- e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 2})
		}()
		waitForCount(t, e.fake, routeCreate, 1)
		theirs := callWith(t, peer, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
		mustOK(t, theirs)
		theirRun := runView(t, theirs)
		res := <-ours
		v := recovery(t, res)
		if v.RunID == theirRun.RunID || len(v.Outputs) > 0 {
			t.Fatalf("the other process's run %s was handed out as this call's: %s", theirRun.RunID, text(res))
		}
		if v.Confirmed == nil || *v.Confirmed || !v.hasCandidate(theirRun.RunID) {
			t.Errorf("want an unconfirmed result listing %s as a candidate: %+v", theirRun.RunID, v)
		}
		if n := len(e.fake.Runs(testKey)); n != 1 {
			t.Errorf("%d runs upstream, want 1", n)
		}
	})
	t.Run("this POST is slow", func(t *testing.T) {
		e := newEnv(t)
		peer := newPeer(t, e)
		e.fake.InjectFault(routeCreate, fakeapi.Fault{Latency: 1500 * time.Millisecond})
		ours := make(chan *mcp.CallToolResult, 1)
		go func() {
			ours <- e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 0.8})
		}()
		waitForCount(t, e.fake, routeCreate, 1)
		theirs := callWith(t, peer, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
		mustOK(t, theirs)
		theirRun := runView(t, theirs).RunID
		res := <-ours
		mustOK(t, res)
		handle := runView(t, res).RunID
		if handle == theirRun {
			t.Fatalf("the other process's run %s was handed out at the deadline", theirRun)
		}
		got := e.call(t, "get_run", map[string]any{"run_id": handle, "wait_seconds": 5})
		mustOK(t, got)
		v := runView(t, got)
		if v.RunID == theirRun || v.RunID == handle || v.Status != "succeeded" {
			t.Errorf("get_run(%s) = %+v; want this call's own run, not %s", handle, v, theirRun)
		}
	})
}

// A POST answered 429 after the API created the run (a proxy in between)
// is not sent again; a plain 429 is, once the run list shows no run.
func TestRunPromptAfterA429(t *testing.T) {
	t.Parallel()
	t.Run("429 after the run was created", func(t *testing.T) {
		e := newEnv(t, withStartBound(time.Second))
		e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultStatusAfterCreate, Status: 429, RetryAfter: "1"})
		res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 3})
		if n := e.fake.Count(routeCreate); n != 1 {
			t.Errorf("%d POSTs after a 429 that came after the run was created, want 1: %s", n, text(res))
		}
		if n := len(e.fake.Runs(testKey)); n != 1 {
			t.Errorf("%d runs upstream, want 1", n)
		}
	})
	t.Run("429 before anything was created", func(t *testing.T) {
		e := newEnv(t)
		e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 429, RetryAfter: "1"})
		res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 5})
		mustOK(t, res)
		if v := runView(t, res); v.Status != "succeeded" {
			t.Errorf("run view %+v", v)
		}
		if n := e.fake.Count(routeCreate); n != 2 {
			t.Errorf("%d POSTs, want 2 (the refused one and the resend)", n)
		}
		if n := e.fake.Count(routeList); n == 0 {
			t.Error("the POST was sent again without looking in the run list first")
		}
		if n := len(e.fake.Runs(testKey)); n != 1 {
			t.Errorf("%d runs upstream, want 1", n)
		}
	})
}

// A 4xx the API does not document, answered after the run was created,
// does not make the server say that nothing was run.
func TestUnknown4xxIsWordedHonestly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withStartBound(time.Second))
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultStatusAfterCreate, Status: 409})
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 2})
	if strings.Contains(text(res), "Nothing was run") || strings.Contains(text(res), "no credits were spent") {
		t.Errorf("a run exists, but the result says nothing was run: %s", text(res))
	}
	runs := e.fake.Runs(testKey)
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	if v := recovery(t, res); !v.hasCandidate(runs[0].RunID) {
		t.Errorf("the created run %s is not named: %s", runs[0].RunID, text(res))
	}
}

// A caller with an invalid key learns nothing from the configurations that
// other tenants' calls put in the cache.
func TestConfigCacheNeedsAValidKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDeps(func(d *betterprompt.Toolset) { d.PerRequestKeys = true }))
	good := betterprompt.WithAPIKey(context.Background(), testKey)
	ctx, cancel := context.WithTimeout(good, 30*time.Second)
	defer cancel()
	mustOK(t, e.callCtx(ctx, t, "get_prompt", map[string]any{"prompt_id": coldEmailPrompt}, nil))

	bad, cancel2 := context.WithTimeout(betterprompt.WithAPIKey(context.Background(), "bp_not_a_key"), 30*time.Second)
	defer cancel2()
	res := e.callCtx(bad, t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion,
		"inputs": map[string]any{"textInputs": map[string]any{"nope": "x"}}}, nil)
	mustError(t, res, "401")
	if strings.Contains(text(res), "Cold") || strings.Contains(text(res), "company_name") {
		t.Errorf("an invalid key learned the prompt's configuration: %s", text(res))
	}
}

// Task-augmented calls (offered on stdio, one client): a call with invalid
// arguments is answered at once and stores no task, and every task gets a
// TTL, so that abandoned tasks do not pile up.
func TestTaskCallsAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rpc := func(body string) map[string]any {
		t.Helper()
		out, err := json.Marshal(e.srv.HandleMessage(ctx, []byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for i := range 50 {
		bad := rpc(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"run_prompt","task":{},"arguments":{"prompt_id":"not a uuid"}}}`, i+1))
		r, _ := bad["result"].(map[string]any)
		if r["isError"] != true || r["task"] != nil {
			t.Fatalf("an invalid task call was not answered at once: %v", bad)
		}
	}
	list := rpc(`{"jsonrpc":"2.0","id":100,"method":"tasks/list","params":{}}`)
	if r, _ := list["result"].(map[string]any); len(r["tasks"].([]any)) != 0 {
		t.Errorf("invalid calls were stored as tasks: %v", list)
	}
	created := rpc(`{"jsonrpc":"2.0","id":101,"method":"tools/call","params":{"name":"run_prompt","task":{},"arguments":{"prompt_version_id":"` +
		coldEmailVersion + `","inputs":{"textInputs":{"company_name":"A","recipient_role":"CTO","value_proposition":"x"}}}}}`)
	r, _ := created["result"].(map[string]any)
	task, _ := r["task"].(map[string]any)
	if ttl, _ := task["ttl"].(float64); ttl != float64((30 * time.Minute).Milliseconds()) {
		t.Errorf("a task without a TTL got ttl %v, want the 30 min default: %v", task["ttl"], created)
	}
}

// A 429 can come from a proxy after the API created the run, so the last
// 429 is checked against the run list as every earlier one is: the run it
// may have created is named, not reported as never started.
func TestLast429IsCheckedAgainstTheRunList(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		faults []fakeapi.Fault
		posts  int
		// postTime bounds the POST with its resends (CreateTimeout).
		postTime time.Duration
	}{
		{name: "the fourth 429, after the run was created", posts: 4, postTime: 20 * time.Second, faults: []fakeapi.Fault{
			{Status: 429, Count: 3},
			{Kind: fakeapi.FaultStatusAfterCreate, Status: 429},
		}},
		{name: "a Retry-After longer than the POST may take", posts: 1, postTime: 2 * time.Second, faults: []fakeapi.Fault{
			{Kind: fakeapi.FaultStatusAfterCreate, Status: 429, RetryAfter: "600"},
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, withDeps(func(d *betterprompt.Toolset) { d.Wait.CreateTimeout = tc.postTime }))
			for _, f := range tc.faults {
				e.fake.InjectFault(routeCreate, f)
			}
			res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 8})
			if n := e.fake.Count(routeCreate); n != tc.posts {
				t.Errorf("%d POSTs, want %d", n, tc.posts)
			}
			runs := e.fake.Runs(testKey)
			if len(runs) != 1 {
				t.Fatalf("setup: %d runs upstream, want 1", len(runs))
			}
			if strings.Contains(text(res), "nothing was started") {
				t.Errorf("run %s exists, but the result says nothing was started: %s", runs[0].RunID, text(res))
			}
			if v := recovery(t, res); v.RunID != runs[0].RunID && !v.hasCandidate(runs[0].RunID) {
				t.Errorf("the created run %s is not named: %s", runs[0].RunID, text(res))
			}
		})
	}
}

// A POST sent again after a 429 may create its run well after the
// submission; the run list is searched up to the start bound after the
// last POST sent, so such a run is never reported as not started.
func TestAResentPostsRunIsNeverReportedNotStarted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withStartBound(time.Second))
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 429, RetryAfter: "2"})
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultStatusAfterCreate, Status: 500})
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 8})
	runs := e.fake.Runs(testKey)
	switch v := recovery(t, res); {
	case len(runs) == 0:
		if !res.IsError || !strings.Contains(text(res), "nothing was started") {
			t.Errorf("no run exists, but the result does not say so: %s", text(res))
		}
	case v.Status == "not_started" || strings.Contains(text(res), "No run was started"):
		t.Errorf("run %s exists, but the result says it was not started: %s", runs[0].RunID, text(res))
	case v.RunID != runs[0].RunID && !v.hasCandidate(runs[0].RunID):
		t.Errorf("the created run %s is not named: %s", runs[0].RunID, text(res))
	}
}

// Two keys of one account see the same run list, so a run found there is
// never confirmed as one key's own while a submission of the other key may
// have started it.
func TestRunOfAnotherKeyOfTheSameAccountIsNotConfirmed(t *testing.T) {
	t.Parallel()
	const secondKey = "bp_second_key_same_account"
	e := newEnv(t, withTimeScale(0.1), // deep research: 3 s
		withFake(func(o *fakeapi.Options) { o.Keys[secondKey], o.RateLimit = fakeapi.Key{SameAccountAs: testKey}, -1 }),
		withDeps(func(d *betterprompt.Toolset) { d.PerRequestKeys = true }), withExclusiveKey())
	research := map[string]any{"prompt_version_id": deepResearchVer,
		"inputs": map[string]any{"textInputs": map[string]any{"question": "q?", "depth": "overview"}}}
	call := func(key string, wait float64) *mcp.CallToolResult {
		ctx, cancel := context.WithTimeout(betterprompt.WithAPIKey(context.Background(), bpapi.APIKey(key)), 30*time.Second)
		defer cancel()
		args := maps.Clone(research)
		args["wait_seconds"] = wait
		return e.callCtx(ctx, t, "run_prompt", args, nil)
	}
	first := make(chan *mcp.CallToolResult, 1)
	go func() { first <- call(testKey, 10) }()
	waitForCount(t, e.fake, routeCreate, 1)
	for deadline := time.Now().Add(5 * time.Second); len(e.fake.Runs(testKey)) == 0 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	if len(e.fake.Runs(testKey)) != 1 {
		t.Fatalf("setup: %d runs", len(e.fake.Runs(testKey)))
	}
	theirs := e.fake.Runs(testKey)[0].RunID
	// The second key's POST fails before it reaches the API: no run of its
	// own exists, and the run list shows the first key's run.
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 500})
	res := call(secondKey, 1.5)
	if v := recovery(t, res); v.RunID == theirs || len(v.Outputs) > 0 {
		t.Errorf("the other key's run %s was handed to this call as its own: %s", theirs, text(res))
	}
	mustOK(t, <-first)
}
