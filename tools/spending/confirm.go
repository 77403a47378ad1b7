package spending

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/internal/seal"
	"github.com/bpmcp/bpmcp/tools"
)

// Confirmer asks the user, through the client, before a run above a price
// threshold: an elicitation (form mode) for clients of the 2025-11-25 era,
// and an input_required result for 2026-07-28 clients, whose request state
// is sealed so that it cannot be forged, or used for another call or after
// its time limit. The agent cannot answer for the user: only the client's
// answer to the elicitation counts.
type Confirmer struct {
	// Above is the price, in credits, above which the user is asked; 0
	// never asks. A run whose price is unknown is asked about too.
	Above int
	// Sealer seals the request state; every replica must share its key.
	Sealer *seal.Sealer
	// TTL is how long a question can be answered (default 10 minutes).
	TTL time.Duration
}

// Question is what the user is asked about.
type Question struct {
	Tool   string // the tool name
	Tenant string // the caller's key identity
	// What names the run for the user, e.g. `"Cold Email Opener" on BetterPrompt`.
	What     string
	Estimate *int     // nil when unknown
	Balance  *float64 // the account's balance, when read
	Left     *int     // what is left of the budget, when there is one
}

// confirmID names the question in the input requests and responses.
const confirmID = "confirm_spend"

// asked is the sealed request state: which call the answer is for.
type asked struct {
	Tool   string `json:"tool"`
	Tenant string `json:"tenant"`
	Args   string `json:"args"` // sha256 of the call's arguments
}

// Confirm returns nil when the run may go (no threshold, a price at or
// under it, or the user accepted), a *tools.NeedInput that asks the user,
// or an error saying why the run was not started (declined, a client that
// cannot ask, an answer that cannot be verified).
func (c *Confirmer) Confirm(ctx context.Context, q Question) error {
	if c == nil || c.Above <= 0 || q.Estimate != nil && *q.Estimate <= c.Above {
		return nil
	}
	want := asked{Tool: q.Tool, Tenant: q.Tenant, Args: argsHash(tools.RawArguments(ctx))}
	responses, state := tools.InputResponses(ctx)
	if answer := server.ElicitationResponse(responses, confirmID); answer != nil {
		return c.check(answer, state, want)
	}
	if !tools.CanElicit(ctx) {
		return &tools.Error{Expected: true, Msg: fmt.Sprintf("Not run, and nothing spent: %s costs %s, above this server's "+
			"confirmation threshold of %d credits, so the user must confirm it, and this client cannot ask the user (it does "+
			"not support elicitation). Tell the user: they can run it themselves on the website, or whoever runs this server "+
			"can raise --confirm-above. The confirmation cannot be given on the user's behalf.", q.What, price(q.Estimate), c.Above)}
	}
	ttl := c.TTL
	if ttl <= 0 {
		ttl = 10 * time.Minute
	}
	sealed, err := c.Sealer.Seal(want, ttl)
	if err != nil {
		return tools.Failf(err, "The server could not prepare the confirmation (%v); nothing was run.", err)
	}
	params := mcp.ElicitationParams{
		Mode:    mcp.ElicitationModeForm,
		Message: c.message(q),
		RequestedSchema: map[string]any{
			"type": "object",
			"properties": map[string]any{
				"confirm": map[string]any{"type": "boolean", "title": "Spend the credits", "default": false},
			},
			"required": []string{"confirm"},
		},
	}
	return &tools.NeedInput{Result: server.NewInputRequestBuilder(sealed).Elicit(confirmID, params).ToolResult()}
}

func (c *Confirmer) message(q Question) string {
	msg := fmt.Sprintf("Run %s? It costs %s (more than the %d credits above which this server asks).", q.What, price(q.Estimate), c.Above)
	if q.Balance != nil {
		msg += fmt.Sprintf(" Balance: %g credits.", *q.Balance)
	}
	if q.Left != nil {
		msg += fmt.Sprintf(" Budget left: %d credits.", *q.Left)
	}
	return msg
}

func price(estimate *int) string {
	if estimate == nil {
		return "an unknown number of credits (the price is not published)"
	}
	return fmt.Sprintf("about %d credits", *estimate)
}

// check reads the user's answer, once its request state is verified to be
// this call's.
func (c *Confirmer) check(answer *mcp.ElicitationResult, state string, want asked) error {
	var got asked
	switch err := c.Sealer.Open(state, &got); {
	case errors.Is(err, seal.ErrExpired):
		return &tools.Error{Expected: true, Msg: "Not run: the user's confirmation came after its time limit. Nothing was " +
			"spent; call the tool again to ask the user anew."}
	case err != nil:
		return &tools.Error{Expected: true, Msg: "Not run: the confirmation could not be verified (its request state is " +
			"not one this server sealed). Nothing was spent; call the tool again to ask the user anew."}
	case got != want:
		return &tools.Error{Expected: true, Msg: "Not run: the confirmation was given for another call (other arguments). " +
			"Nothing was spent; call the tool again to ask the user about this one."}
	}
	if answer.Action == mcp.ElicitationResponseActionAccept {
		if m, ok := answer.Content.(map[string]any); ok && m["confirm"] == true {
			return nil
		}
	}
	return &tools.Error{Expected: true, Msg: "The user declined the run; nothing was spent. Do not start it again unless the user asks."}
}

// argsHash identifies a call's arguments (maps are marshalled with sorted
// keys, so the same arguments hash alike).
func argsHash(args any) string {
	b, _ := json.Marshal(args)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
