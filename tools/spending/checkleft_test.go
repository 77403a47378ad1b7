package spending_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// A generation whose price is unknown reserves all that is left at its
// turn, and settles before the next turn. A call that queues meanwhile must
// not be refused for that reservation: by its turn the charge is known. It
// is refused before queueing only when the settled charges used the budget.
func TestCheckLeftCountsChargesNotReservationsInProgress(t *testing.T) {
	ctx := context.Background()
	p := &spending.Policy{Upstream: "BetterWaifu", Budget: 100, Budgets: state.NewBudgets()}
	res, err := p.Reserve(ctx, "k", nil, "a generation")
	if err != nil || res == nil {
		t.Fatalf("reserve: %v", err)
	}
	if err := p.CheckLeft(ctx, "k", "a generation"); err != nil {
		t.Errorf("refused while another generation holds its reservation: %v", err)
	}
	res.Settle(ctx, 100)
	err = p.CheckLeft(ctx, "k", "a generation")
	if err == nil || !strings.Contains(err.Error(), "budget") {
		t.Errorf("not refused with the budget spent: %v", err)
	}
}
