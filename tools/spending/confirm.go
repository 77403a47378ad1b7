package spending

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
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
	// Nonces keeps the nonces of accepted answers, so that one answer
	// starts one run; nil keeps them in this process. Replicas share one
	// (state/redisstate), or an answer could be used once on each.
	Nonces Nonces

	mu   sync.Mutex
	used map[string]time.Time // nonces of accepted answers → when they expire
}

// Nonces records the nonces of accepted answers.
type Nonces interface {
	// Use marks nonce used until until, and reports whether it was not
	// used before.
	Use(ctx context.Context, nonce string, until time.Time) (bool, error)
}

// Question is what the user is asked about.
type Question struct {
	Tool   string // the tool name
	Tenant string // the caller's key identity
	// Subject is what exactly runs (a prompt version id), bound into the
	// answer with the price: an answer for one version or price does not
	// start another.
	Subject string
	// What names the run for the user, e.g. `"Cold Email Opener" on BetterPrompt`.
	What     string
	Estimate *int     // nil when unknown
	Balance  *float64 // the account's balance, when read
	Left     *int     // what is left of the budget, when there is one
}

// confirmID names the question in the input requests and responses.
const confirmID = "confirm_spend"

// asked is the sealed request state: which call, and what the user was
// shown, the answer is for.
type asked struct {
	Tool     string `json:"tool"`
	Tenant   string `json:"tenant"`
	Args     string `json:"args"` // sha256 of the call's arguments, canonical
	Subject  string `json:"subject,omitempty"`
	Estimate int    `json:"estimate"` // -1: unknown
	Nonce    string `json:"nonce"`    // an accepted answer is used once
}

// Asks reports whether Confirm asks the user about a run estimated at
// estimate (nil: unknown): only then is there anything to check or read
// before asking.
func (c *Confirmer) Asks(estimate *int) bool {
	return c != nil && c.Above > 0 && (estimate == nil || *estimate > c.Above)
}

// Confirm returns nil when the run may go (no threshold, a price at or
// under it, or the user accepted), a *tools.NeedInput that asks the user,
// or an error saying why the run was not started (declined, a client that
// cannot ask, an answer that cannot be verified).
func (c *Confirmer) Confirm(ctx context.Context, q Question) error {
	if !c.Asks(q.Estimate) {
		return nil
	}
	est := -1
	if q.Estimate != nil {
		est = *q.Estimate
	}
	want := asked{Tool: q.Tool, Tenant: q.Tenant, Args: argsHash(tools.RawArguments(ctx)), Subject: q.Subject, Estimate: est}
	responses, state := tools.InputResponses(ctx)
	if answer := server.ElicitationResponse(responses, confirmID); answer != nil {
		return c.check(ctx, answer, state, want)
	}
	if tools.IsTaskCall(ctx) {
		// mcp-go does not carry a question through a task: ask the agent to
		// call plainly.
		return &tools.Error{Expected: true, Msg: fmt.Sprintf("Not run, and nothing spent: %s costs %s, so the user must "+
			"confirm it, which cannot be asked within an MCP task. Call the tool again without task augmentation.", q.What, price(q.Estimate))}
	}
	if ok, why := tools.CanElicit(ctx); !ok {
		return &tools.Error{Expected: true, Msg: fmt.Sprintf("Not run, and nothing spent: %s costs %s, so the user must "+
			"confirm it (this server asks above %d credits, and always when the price is unknown), and %s. Tell the user: "+
			"they can run it themselves on the website, or whoever runs this server can raise --confirm-above. The "+
			"confirmation cannot be given on the user's behalf.", q.What, price(q.Estimate), c.Above, why)}
	}
	want.Nonce = newID()
	sealed, err := c.Sealer.Seal(want, c.ttl())
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
	msg := fmt.Sprintf("Run %s? It costs %s (this server asks above %d credits).", q.What, price(q.Estimate), c.Above)
	if q.Estimate == nil {
		msg = fmt.Sprintf("Run %s? Its price is not published: the credits it takes are known only afterwards.", q.What)
	}
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
// this call's, for what the user was shown, and not used before.
func (c *Confirmer) check(ctx context.Context, answer *mcp.ElicitationResult, state string, want asked) error {
	var got asked
	switch err := c.Sealer.Open(state, &got); {
	case errors.Is(err, seal.ErrExpired):
		return &tools.Error{Expected: true, Msg: "Not run: the user's confirmation came after its time limit. Nothing was " +
			"spent; call the tool again to ask the user anew."}
	case err != nil:
		return &tools.Error{Expected: true, Msg: "Not run: the confirmation could not be verified (its request state is " +
			"not one this server sealed; replicas must share BPMCP_STATE_SECRET). Nothing was spent; call the tool again " +
			"to ask the user anew."}
	case got.Tool != want.Tool || got.Tenant != want.Tenant || got.Args != want.Args:
		return &tools.Error{Expected: true, Msg: "Not run: the confirmation was given for another call (other arguments). " +
			"Nothing was spent; call the tool again to ask the user about this one."}
	case got.Subject != want.Subject || got.Estimate != want.Estimate:
		return &tools.Error{Expected: true, Msg: "Not run: what would run, or its price, changed since the user was asked " +
			"(a new version, or a price learnt since). Nothing was spent; call the tool again to ask the user anew."}
	}
	switch answer.Action {
	case mcp.ElicitationResponseActionAccept:
		if m, ok := answer.Content.(map[string]any); !ok || m["confirm"] != true {
			return errDeclined
		}
	case mcp.ElicitationResponseActionCancel:
		return &tools.Error{Expected: true, Msg: "The user dismissed the question without answering; nothing was run or " +
			"spent. Ask the user before trying again."}
	default:
		return errDeclined
	}
	fresh, err := c.use(ctx, got.Nonce, time.Now().Add(c.ttl()+time.Minute))
	if err != nil {
		return tools.Failf(err, "Not run: the server could not record the user's confirmation (its shared state "+
			"store is unavailable), so it cannot tell whether it was used already. Nothing was spent; try again in a moment.")
	}
	if !fresh {
		return &tools.Error{Expected: true, Msg: "Not run: this confirmation was already used for a run. Nothing more was " +
			"spent; call the tool again to ask the user about another run."}
	}
	return nil
}

func (c *Confirmer) ttl() time.Duration {
	if c.TTL <= 0 {
		return 10 * time.Minute
	}
	return c.TTL
}

var errDeclined = &tools.Error{Expected: true, Msg: "The user declined the run; nothing was spent. Do not start it again unless the user asks."}

// use marks an accepted answer's nonce used, and reports whether it was
// not before: in Nonces when set, otherwise in this process.
func (c *Confirmer) use(ctx context.Context, nonce string, until time.Time) (bool, error) {
	if nonce == "" {
		return false, nil
	}
	if c.Nonces != nil {
		return c.Nonces.Use(ctx, nonce, until)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	if c.used == nil {
		c.used = make(map[string]time.Time)
	}
	for n, exp := range c.used {
		if now.After(exp) {
			delete(c.used, n)
		}
	}
	if _, seen := c.used[nonce]; seen {
		return false, nil
	}
	c.used[nonce] = until
	return true, nil
}

// argsHash identifies a call's arguments whatever their JSON spelling:
// decoded and encoded again, members sorted, numbers and strings in one
// form.
func argsHash(args any) string {
	b, _ := json.Marshal(args)
	var v any
	if json.Unmarshal(b, &v) == nil {
		b, _ = json.Marshal(v)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
