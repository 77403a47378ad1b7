package betterwaifu_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/seal"
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
		if !strings.Contains(text(res), "This run cost 10 credits, more than max_credits=5") { // the cap its generate call set
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

// answer is a user who accepts or declines every elicitation.
type answer bool

func (a answer) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	if !a {
		return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionDecline}}, nil
	}
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"confirm": true}}}, nil
}

// With a confirmation threshold, every generation is asked about (its
// price is unknown): accepted it runs, declined nothing is submitted.
func TestConfirmGeneration(t *testing.T) {
	for _, accept := range []bool{true, false} {
		inBubble(t, func(t *testing.T) {
			e := newEnvClient(t, fakeapi.Options{}, []client.ClientOption{client.WithElicitationHandler(answer(accept))},
				func(d *betterwaifu.Toolset) { d.Confirm = &spending.Confirmer{Above: 1, Sealer: seal.New(nil)} })
			res := e.call(t, "betterwaifu_generate", gen("x"))
			if posts := e.fake.Count("POST /generate"); accept && (res.IsError || posts != 1) || !accept && (!res.IsError || posts != 0) {
				t.Errorf("accept %v: isError %v, %d POSTs: %s", accept, res.IsError, posts, text(res))
			}
		})
	}
}
