package spending_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// FINDING 1 (bug). Policy.Budgets is documented "default: in memory" and
// filled in lazily by budgets() without a lock: concurrent first calls each
// make a ledger of their own, so reservations land in different ledgers and
// the key's budget is exceeded (go test -race also reports the race; the
// package's own TestBudgetUnderConcurrency trips on it).
func TestReview15LazyLedgerLetsConcurrentRunsPastTheBudget(t *testing.T) {
	for round := range 200 {
		p := &spending.Policy{Budget: 100}
		p.Init("BetterPrompt") // the toolsets do, before serving: the ledger is never made lazily
		est := 10
		var ok atomic.Int32
		var start, wg sync.WaitGroup
		start.Add(1)
		for range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				start.Wait()
				if r, err := p.Reserve(context.Background(), "k", &est, "a run"); err == nil && r != nil {
					ok.Add(1)
				}
			}()
		}
		start.Done()
		wg.Wait()
		if n := ok.Load(); n > 10 {
			t.Fatalf("round %d: %d runs of estimate 10 reserved against a budget of 100", round, n)
		}
	}
}

// FINDING 2 (bug, minor). Once reserved estimates and charges reach the
// budget, a run whose estimate is 0 is still let through (the check is
// spent+reserved+amount > limit): the issue says no run starts once they
// reach it. A prompt listed at 0 that does charge can then be run any
// number of times concurrently with the budget spent.
func TestReview15ZeroEstimateRunsOnceTheBudgetIsReached(t *testing.T) {
	p := &spending.Policy{Upstream: "BetterPrompt", Budget: 100, Budgets: state.NewBudgets()}
	ctx := context.Background()
	hundred, zero := 100, 0
	if _, err := p.Reserve(ctx, "k", &hundred, "a run"); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if r, err := p.Reserve(ctx, "k", &zero, "a free-looking run"); err == nil {
			t.Fatalf("run %d with estimate 0 reserved (%+v) though the budget is fully reserved", i, r)
		}
	}
}
