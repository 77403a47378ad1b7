package betterwaifu_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// BetterWaifu publishes no price: max_credits cannot be checked
// beforehand, and the result says what the generation cost (the balance
// before and after, exact since a key's generations go one at a time).
func TestMaxCreditsAndCharge(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		res := e.call(t, "betterwaifu_generate", gen("x", "max_credits", 5))
		mustOK(t, res)
		v := view(t, res)
		if !strings.Contains(v.Message, "max_credits=5 could not be checked beforehand") ||
			!strings.Contains(v.Message, "This run cost 10 credits, more than max_credits=5") {
			t.Errorf("message %q", v.Message)
		}
		res = e.call(t, "betterwaifu_get_generation", map[string]any{"generation_id": v.GenerationID})
		if !strings.Contains(text(res), "Charged 10 credits") {
			t.Errorf("get_generation does not say the charge:\n%s", text(res))
		}
	})
}

// A budget: each generation reserves what is left (its price is unknown)
// and settles with its charge; once nothing is left the call is refused
// before it queues, with the figures; get_account reports it.
func TestBudgetForGenerations(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{}, func(d *betterwaifu.Toolset) { d.Spending = spending.Policy{Budget: 25} })
		for i := range 3 {
			mustOK(t, e.call(t, "betterwaifu_generate", gen("x", "wait_seconds", 200)))
			if n := len(e.fake.Generations()); n != i+1 {
				t.Fatalf("after call %d: %d generations", i, n)
			}
		}
		res := e.call(t, "betterwaifu_generate", gen("x", "wait_seconds", 200))
		mustError(t, res, "budget is 25 credits per 24 hours", "30 were spent", "0 are left")
		if n := e.fake.Count("POST /generate"); n != 3 {
			t.Errorf("%d POSTs, want 3", n)
		}
		res = e.call(t, "betterwaifu_get_account", map[string]any{})
		mustOK(t, res)
		var out struct {
			Budget spending.View `json:"budget"`
		}
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &out)
		if out.Budget.Limit != 25 || out.Budget.Spent != 30 || out.Budget.Left != 0 {
			t.Errorf("budget %+v", out.Budget)
		}
	})
}
