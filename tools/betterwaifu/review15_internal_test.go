package betterwaifu

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// hookBudgets runs after once, right after the first Report it answers:
// what another goroutine may do between two readings.
type hookBudgets struct {
	*state.Budgets
	once  sync.Once
	after func()
}

func (h *hookBudgets) Report(ctx context.Context, key string, limit int, window time.Duration) (state.Spend, error) {
	s, err := h.Budgets.Report(ctx, key, limit, window)
	if h.after != nil {
		h.once.Do(h.after)
	}
	return s, err
}

// FINDING 7 (bug). budgetLeft reads the budget, and when nothing is left
// calls Policy.Reserve only to word the refusal, discarding the
// reservation. If the generation in flight settles between the two readings
// (its follower measures it: all that was left becomes its actual charge),
// Reserve succeeds: all that is now left is reserved under an id nobody
// holds, never settled or released, for the whole window (24 h). The call
// goes on, and at its turn reserve() finds 0 left and refuses; so does every
// later call of the key, with "reserved by runs in progress" although none is.
func TestReview15BudgetLeftLeaksAReservation(t *testing.T) {
	ctx := context.Background()
	hb := &hookBudgets{Budgets: state.NewBudgets()}
	d := &Toolset{Spending: spending.Policy{Upstream: "BetterWaifu", Budget: 25, Budgets: hb}}
	inFlight, err := d.Spending.Reserve(ctx, "k", nil, "a generation") // holds all 25
	if err != nil {
		t.Fatal(err)
	}
	hb.after = func() { inFlight.Settle(ctx, 10) } // its follower settles it now
	if err := d.budgetLeft(ctx, "k"); err != nil {
		t.Logf("refused: %v", err)
	}
	v, _ := d.Spending.Report(ctx, "k")
	if v.Reserved != 0 {
		t.Errorf("nothing is in flight, but %d credits stay reserved (%+v); the key's next generation is refused:", v.Reserved, v)
		if _, err := d.Spending.Reserve(ctx, "k", nil, "a BetterWaifu generation"); err != nil {
			t.Errorf("  %v", err)
		}
	}
}
