package betterprompt_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// A budget with its ledger set, as main.go does (the lazy default races).
func withLedger(credits int) envOption {
	return withDeps(func(d *betterprompt.Toolset) {
		d.Spending = spending.Policy{Budget: credits, Budgets: state.NewBudgets()}
	})
}

// rawCallBP sends a tools/call with a fixed JSON-RPC id, as a transport that
// delivers a request twice (an HTTP-level retry) would.
func rawCallBP(t *testing.T, e *env, id int64, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	resp, err := e.client.GetTransport().SendRequest(context.Background(), transport.JSONRPCRequest{
		JSONRPC: "2.0", ID: mcp.NewRequestId(id), Method: "tools/call",
		Params: map[string]any{"name": name, "arguments": args},
	})
	if err != nil {
		t.Fatalf("raw call: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("raw call: JSON-RPC error %+v", resp.Error)
	}
	res, err := mcp.ParseCallToolResult(&resp.Result)
	if err != nil {
		t.Fatalf("raw call: %v", err)
	}
	return res
}

func budgetOf(t *testing.T, e *env) spending.View {
	t.Helper()
	res := e.call(t, "get_credits", map[string]any{})
	mustOK(t, res)
	var out struct {
		Budget spending.View `json:"budget"`
	}
	structured(t, res, &out)
	return out.Budget
}

// FINDING 3 (bug). A run_prompt delivered twice with the same JSON-RPC id
// while the first delivery is still before its POST: both pass Rejoin (no
// submission on record yet), both reserve in checkSpend, the engine joins
// the second to the first's run, and each delivery then settles the run's
// charge. One run of 38 credits is recorded as 76 spent, and the next run
// is refused though the budget has room for it. (The shared price lookup
// makes the window wide: both wait for it between Rejoin and Run.)
func TestReview15ReplayedRunIsChargedTwice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLedger(100))
	e.fake.InjectFault("GET /v1/prompts/publish", fakeapi.Fault{Latency: 500 * time.Millisecond})
	args := map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 20}
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); mustOK(t, rawCallBP(t, e, 42, "run_prompt", args)) }()
	}
	wg.Wait()
	if n := e.fake.Count("POST /v1/runs"); n != 1 {
		t.Fatalf("%d POSTs for one request delivered twice", n)
	}
	if b := budgetOf(t, e); b.Spent+b.Reserved != 38 {
		t.Errorf("one run of 38 credits, but the budget counts %d spent and %d reserved", b.Spent, b.Reserved)
	}
	// 100 - 38 = 62 left: a run of estimate 40 fits.
	mustOK(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs}))
}

// FINDING 4 (bug). "After a run, one that cost more is reported": only when
// the run ends within run_prompt's wait. A run that ends later is read with
// get_run, which no longer knows max_credits: the overrun is never said.
func TestReview15CapOverrunNotReportedByGetRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.InjectFault("GET /v1/prompts/publish", fakeapi.Fault{Status: 500, Count: -1}) // no price known
	e.fake.InjectFault("GET /v1/skills", fakeapi.Fault{Status: 404, Count: -1})
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs,
		"max_credits": 10, "wait_seconds": 0})
	mustOK(t, res)
	var v betterprompt.RunView
	structured(t, res, &v)
	got := e.call(t, "get_run", map[string]any{"run_id": v.RunID, "wait_seconds": 20})
	mustOK(t, got)
	var g betterprompt.RunView
	structured(t, got, &g)
	if g.Credits == nil || *g.Credits != 38 {
		t.Fatalf("run did not end: %+v", g)
	}
	if !strings.Contains(text(got), "more than max_credits=10") {
		t.Errorf("a run capped at 10 cost 38 and nothing says so:\nrun_prompt: %s\nget_run: %s", text(res), text(got))
	}
}

// FINDING 5 (risk). The shared price lookup runs on the first caller's
// context and marks the prompt looked-up before it starts: when that caller
// goes away mid-lookup, the price stays unknown for lookupEvery (10 min) for
// everyone, and max_credits can no longer refuse a run priced above it —
// the run goes with a "could not be checked" note.
func TestReview15CancelledLookupDisablesTheCap(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.fake.InjectFault("GET /v1/prompts/publish", fakeapi.Fault{Latency: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = e.callCtx(ctx, t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs,
		"max_credits": 10}, nil) // goes away during the lookup
	time.Sleep(100 * time.Millisecond)
	before := e.fake.Count("POST /v1/runs")
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "max_credits": 10})
	if !res.IsError || e.fake.Count("POST /v1/runs") != before {
		t.Errorf("a run estimated at 40 went with max_credits=10 (another caller's lookup was cut off):\n%s", text(res))
	}
}

// TEST GAP (passes on HEAD; fails if afterRun released the reservation of a
// run still going, or if get_run stopped settling). No test in the package
// covers a run that outlives its call: the mutations "Release instead of
// Keep" in afterRun's three keep branches and "settleFollowed returns at
// once" leave every existing test green.
func TestReview15RunsInFlightStayReservedUntilGetRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLedger(100))
	var ids []string
	for range 2 {
		res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 0})
		mustOK(t, res)
		var v betterprompt.RunView
		structured(t, res, &v)
		ids = append(ids, v.RunID)
	}
	mustError(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 0}),
		"80 are reserved by runs in progress")
	for _, id := range ids {
		mustOK(t, e.call(t, "get_run", map[string]any{"run_id": id, "wait_seconds": 20}))
	}
	if b := budgetOf(t, e); b.Spent != 76 || b.Reserved != 0 {
		t.Errorf("after get_run: %+v, want 76 spent, 0 reserved", b)
	}
}

// Control: the 20 concurrent calls, with the ledger set (as in
// main.go), mixing waits so that some runs outlive their calls.
func TestReview15TwentyConcurrentWithLedger(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLedger(200))
	before := e.fake.Credits(testKey)
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": i % 2})
			_ = res
		}()
	}
	wg.Wait()
	time.Sleep(3 * time.Second) // the fake holds POSTs up to its sync window
	if posts := e.fake.Count("POST /v1/runs"); posts != 5 {
		t.Errorf("%d runs started, want 5", posts)
	}
	if charged := before - e.fake.Credits(testKey); charged > 200 {
		t.Errorf("charged %d", charged)
	}
}

// FINDING 8 (risk, documented in part). A run whose price is unknown
// reserves all that is left; if nobody calls get_run after run_prompt
// returned without its result, the whole budget stays reserved for the
// window (24 h) although the run ended seconds later and cost 38: the key
// can start nothing for a day, and get_credits calls it "reserved by runs
// in progress".
func TestReview15UnreadUnpricedRunLocksTheKeyForTheWindow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withLedger(1000))
	e.fake.InjectFault("GET /v1/prompts/publish", fakeapi.Fault{Status: 500, Count: -1})
	e.fake.InjectFault("GET /v1/skills", fakeapi.Fault{Status: 404, Count: -1})
	mustOK(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 0}))
	time.Sleep(3 * time.Second) // the run has ended upstream
	if b := budgetOf(t, e); b.Left == 0 {
		t.Errorf("a run that ended costing 38 holds the whole budget of 1000 for 24 h: %+v", b)
	}
}
