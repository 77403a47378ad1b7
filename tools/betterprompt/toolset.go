package betterprompt

import (
	"context"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools"
)

// DefaultMaxWaitsPerKey is Toolset.MaxWaitsPerKey's default.
const DefaultMaxWaitsPerKey = 64

// KeyHeader carries a caller's own BetterPrompt API key in HTTP mode.
const KeyHeader = "X-BetterPrompt-Api-Key"

// instructions tell the agent the workflow; hosts show them to the model.
const instructions = `BetterPrompt runs published prompts from its marketplace and returns their text, image and video outputs.
Workflow: search_prompts (find a prompt; note its prompt_id) → get_prompt (read input_schema: the exact inputs it needs) → run_prompt (spends credits; inputs are checked first) → get_run (only when run_prompt answered before the run finished: pass its run_id).
Image and video outputs are URLs that expire 24 hours after generation: show them to the user. Runs cannot be cancelled. get_credits shows the balance.`

const sandboxInstructions = "\nSANDBOX MODE: this server runs against a simulated BetterPrompt API. Outputs are canned examples, not real generations; the credits shown are a simulated balance, and no real account is touched."

var _ tools.Toolset = (*Toolset)(nil)

// Instructions is BetterPrompt's part of the server instructions.
func (d *Toolset) Instructions() string {
	if d.Sandbox {
		return instructions + sandboxInstructions
	}
	return instructions
}

// KeyHeader names the header of a caller's own key.
func (d *Toolset) KeyHeader() string { return KeyHeader }

// Tools declares BetterPrompt's five tools; run_prompt takes task calls
// when tasks is not nil.
func (d *Toolset) Tools(tasks *tools.Tasks) []server.ServerTool {
	d.Wait = d.Wait.withDefaults()
	if d.MaxWaitsPerKey <= 0 {
		d.MaxWaitsPerKey = DefaultMaxWaitsPerKey
	}
	if d.Slots == nil {
		d.Slots = state.NewSlots()
	}
	d.runEngine()
	d.adapter = tools.Adapter{Logger: d.Logger, Describe: describeError, Redactor: d.redactor, Tasks: tasks}
	return []server.ServerTool{searchPrompts(d), getPrompt(d), runPrompt(d), getRun(d), getCredits(d)}
}

// BeginShutdown refuses new runs at once and, after answerWithin, makes
// every call still waiting for a run answer with what it knows (the run id
// or a handle for get_run), so that each call is answered before the
// transport closes. Call it when the shutdown starts, then Drain.
func (d *Toolset) BeginShutdown(answerWithin time.Duration) {
	d.runEngine().BeginShutdown(answerWithin)
}

// Drain stops new runs, makes every waiting call answer now, and blocks
// until every run this process started has been answered by the API (so
// its id is known and logged), or ctx ends. Call it on shutdown.
func (d *Toolset) Drain(ctx context.Context) error { return d.runEngine().Drain(ctx) }

// redactor returns the function that redacts the call's API key, in every
// form bpapi.Client.Redact knows, or nil when the call has no key.
func (d *Toolset) redactor(ctx context.Context) func(string) string {
	if d.Client == nil {
		return nil
	}
	c, _, err := d.client(ctx)
	if err != nil {
		return nil
	}
	return c.Redact
}
