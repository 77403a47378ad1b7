package betterprompt_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/spending"
)

func withBudget(credits int) envOption {
	return withDeps(func(d *betterprompt.Toolset) { d.Spending = spending.Policy{Budget: credits} })
}

// max_credits refuses a run whose estimate is higher, before anything is
// sent; with no estimate, the result says the cap could not be checked,
// and that the run cost more.
func TestMaxCredits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	mustError(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "max_credits": 10}),
		"estimated at 40 credits", "max_credits=10", "nothing spent")
	if n := e.fake.Count("POST /v1/runs"); n != 0 {
		t.Fatalf("%d POSTs for a run above its cap", n)
	}
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "max_credits": 40})
	mustOK(t, res)
	if strings.Contains(text(res), "max_credits") {
		t.Errorf("a run within its cap has a cap note: %s", text(res))
	}
	mustError(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "max_credits": -1}),
		"max_credits must be 0 or more")

	// No price anywhere: the run goes, and the result says what the cap
	// could not do.
	e = newEnv(t)
	e.fake.InjectFault("GET /v1/prompts/publish", fakeapi.Fault{Status: 500, Count: -1})
	e.fake.InjectFault("GET /v1/skills", fakeapi.Fault{Status: 404, Count: -1})
	res = e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "max_credits": 10})
	mustOK(t, res)
	var v betterprompt.RunView
	structured(t, res, &v)
	if !strings.Contains(text(res), "max_credits=10 could not be checked beforehand") ||
		!strings.Contains(v.Message, "This run cost 38 credits, more than max_credits=10") {
		t.Errorf("cap notes missing:\n%s\nmessage %q", text(res), v.Message)
	}
}

// A budget refuses, before anything is sent, the run whose estimate would
// go past what is left, giving the figures; charges count as the runs
// settle, and get_credits reports the budget.
func TestBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withBudget(100))
	for range 2 {
		mustOK(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs}))
	}
	mustError(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs}),
		"budget is 100 credits per 24 hours", "76 were spent and 0 are reserved", "24 are left", "estimate is 40 credits")
	if n := e.fake.Count("POST /v1/runs"); n != 2 {
		t.Errorf("%d POSTs, want 2", n)
	}
	res := e.call(t, "get_credits", map[string]any{})
	mustOK(t, res)
	var out struct {
		Budget spending.View `json:"budget"`
	}
	structured(t, res, &out)
	if out.Budget != (spending.View{Limit: 100, Window: "24h0m0s", Spent: 76, Left: 24}) || !strings.Contains(text(res), "24 of 100 credits left") {
		t.Errorf("get_credits budget %+v\n%s", out.Budget, text(res))
	}
}

// The window rolls: 24 hours after a charge, it no longer counts.
func TestBudgetWindowRolls(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, withPipe(), withBudget(80))
		run := func() *mcp.CallToolResult {
			return e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
		}
		mustOK(t, run())
		mustOK(t, run())
		mustError(t, run(), "4 are left")
		time.Sleep(24 * time.Hour)
		mustOK(t, run())
	})
}

// In per-request-keys mode each caller's key has a budget of its own.
func TestBudgetPerTenant(t *testing.T) {
	t.Parallel()
	const other = "bp_other_rich_key"
	e := newEnv(t, withBudget(40), withDeps(func(d *betterprompt.Toolset) { d.PerRequestKeys = true }),
		withFake(func(o *fakeapi.Options) { o.Keys[other] = fakeapi.Key{Credits: 100000} }))
	ctxA, cancelA := context.WithTimeout(betterprompt.WithAPIKey(context.Background(), testKey), time.Minute)
	defer cancelA()
	ctxB, cancelB := context.WithTimeout(betterprompt.WithAPIKey(context.Background(), other), time.Minute)
	defer cancelB()
	args := map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs}
	mustOK(t, e.callCtx(ctxA, t, "run_prompt", args, nil))
	mustError(t, e.callCtx(ctxA, t, "run_prompt", args, nil), "2 are left")
	mustOK(t, e.callCtx(ctxB, t, "run_prompt", args, nil))
}

// Twenty concurrent runs on one key start none once the reserved
// estimates and the recorded charges reach the budget; what the fake
// charged stays within it.
func TestBudgetUnderConcurrency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withBudget(200))
	before := e.fake.Credits(testKey)
	var wg sync.WaitGroup
	var mu sync.Mutex
	refused := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
			if res.IsError {
				if !strings.Contains(text(res), "budget") {
					t.Errorf("refused for another reason: %s", text(res))
				}
				mu.Lock()
				refused++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	posts, charged := e.fake.Count("POST /v1/runs"), before-e.fake.Credits(testKey)
	t.Logf("budget 200, estimate 40, actual 38: %d runs started, %d refused, %d credits charged", posts, refused, charged)
	if posts != 5 || refused != 15 || charged > 200 || charged != 38*posts {
		t.Errorf("%d runs started, %d refused, %d charged; want 5, 15, at most 200", posts, refused, charged)
	}
}
