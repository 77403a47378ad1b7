package betterwaifu_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// TEST GAP (passes on HEAD). Every budget test waits for its generation, so
// it settles before its call returns: releasing the reservation of every
// generation LateWork after its call (turn used or not) leaves the package
// green, though a generation still running would then count nothing and its
// follower's Settle would be a no-op (the Reservation's once is spent).
func TestReview15GenerationOutlivingItsCallStaysCounted(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{}, func(d *betterwaifu.Toolset) {
			d.Spending = spending.Policy{Budget: 25, Budgets: state.NewBudgets()}
		})
		mustOK(t, e.call(t, "betterwaifu_generate", gen("x", "wait_seconds", 0)))
		time.Sleep(2 * time.Minute) // it ends (8 s), its follower measures it
		res := e.call(t, "betterwaifu_get_account", map[string]any{})
		mustOK(t, res)
		var out struct {
			Budget spending.View `json:"budget"`
		}
		b, _ := json.Marshal(res.StructuredContent)
		_ = json.Unmarshal(b, &out)
		if out.Budget.Spent != 10 || out.Budget.Reserved != 0 {
			t.Errorf("budget %+v, want 10 spent", out.Budget)
		}
	})
}
