package betterprompt

import (
	"context"
	"testing"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// FINDING 6 (risk). A run that ended without a cost figure (no tokens on
// GET /v1/runs/{id}, no credits on a run-list row: the fake omits credits
// on rows whose cost is 0, and the documentation does not promise either)
// is settled at 0 by Run.Cost: its reservation disappears and the budget
// counts the run as free — contrary to "unknown charges are counted, not
// forgotten" in state.Budgets.
func TestReview15FinalRunWithoutCostIsSettledAtZero(t *testing.T) {
	ctx := context.Background()
	d := &Toolset{Spending: spending.Policy{Upstream: "BetterPrompt", Budget: 100, Budgets: state.NewBudgets()}}
	est := 40
	res, err := d.Spending.Reserve(ctx, "k", &est, "a run")
	if err != nil {
		t.Fatal(err)
	}
	run := &bpapi.Run{RunID: "r1", Status: "succeeded"} // no tokens, no credits
	d.afterRun(ctx, nil, &spend{estimate: &est, res: res}, runs.Outcome{Job: &runs.Job{ID: "r1", Status: runs.Succeeded, Data: run}}, nil)
	v, _ := d.Spending.Report(ctx, "k")
	if v.Spent+v.Reserved == 0 {
		t.Errorf("a succeeded run whose charge is unknown counts 0 against the budget: %+v", v)
	}
}
