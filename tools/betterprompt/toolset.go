package betterprompt

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/internal/metrics"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// Toolset is BetterPrompt's toolset: its six tools, and what they share
// (the client, the wait settings, the run engine, the caches, the wait
// slots).
type Toolset struct {
	// Client is the BetterPrompt client; its API key is the server's own key
	// (empty when none is configured).
	Client *bpapi.Client
	// InlinePreviews embeds previews of image outputs in results by
	// default (--inline-previews); a call's inline_images overrides it.
	InlinePreviews bool
	// AllowPinning offers pin_prompt, which gives a prompt a tool while the
	// server runs (not with PerRequestKeys: one tenant would add tools for
	// all).
	AllowPinning bool
	// PinLimit bounds the prompts with tools of their own that pin_prompt
	// lets there be (default MaxPinned): each is in every agent's tool list.
	PinLimit int
	// Pins are the chosen prompts that get a tool of their own
	// (BETTERPROMPT_PROMPTS), loaded with the server's key when Tools runs.
	Pins []Pin
	// PerRequestKeys makes every call bring its own API key in its context
	// (WithAPIKey); the server's own key is then never used.
	PerRequestKeys bool
	// Wait holds the run-waiting settings.
	Wait WaitConfig
	// Logger receives operational logs (stderr). Nil discards them.
	Logger *slog.Logger
	// Sandbox marks results as simulated.
	Sandbox bool

	// MaxWaitsPerKey bounds the calls waiting for runs at once per API key
	// (default DefaultMaxWaitsPerKey), so one caller cannot hold every worker.
	MaxWaitsPerKey int
	// Slots holds those waits (default: in memory, state.NewSlots).
	Slots WaitSlots

	// ExclusiveKey says that no other client (the web app, the CLI, another
	// server process that shares no state with this one) starts runs with
	// the API keys this server uses. Only then is a run found in the run
	// list after a failed POST certainly this server's; otherwise it is
	// reported as unconfirmed, with the runs that may be it.
	ExclusiveKey bool

	// Spending is the budget per key (none by default); its Upstream is
	// set to "BetterPrompt".
	Spending spending.Policy
	// Confirm asks the user before a run above its threshold (nil: never).
	Confirm *spending.Confirmer
	// Metrics counts runs and waits (nil: none).
	Metrics *metrics.Metrics
	// Records keeps the run records (default: in memory); a shared store
	// lets every replica answer for every handle.
	Records runs.Records

	configs   configCache
	verified  verifiedKeys
	resources resourceCache
	facts     factCache
	pending   spending.Pending
	settlers  sync.WaitGroup // follow runs that outlived their call, to settle their budget
	following sync.Map       // run id → a settler follows it
	adapter   tools.Adapter

	engineOnce  sync.Once
	engine      *runs.Engine // the run lifecycle; made once, by runEngine
	upSince     time.Time    // when the engine counts this process as started; zero: when it is made
	pinned      []string     // the chosen prompts' tool names, once Tools has run
	pinOnce     sync.Once
	pinMu       sync.Mutex   // guards pinned and pinSpecs once the server runs (pin_prompt)
	pinning     sync.Mutex   // held by pin_prompt from reading the tool names in use to adding its tool
	pinSpecs    []pinnedSpec // the chosen prompts, loaded once
	pinFailures []string     // what went wrong with the chosen prompts that have no tool
}

// DefaultMaxWaitsPerKey is Toolset.MaxWaitsPerKey's default.
const DefaultMaxWaitsPerKey = 64

// KeyHeader carries a caller's own BetterPrompt API key in HTTP mode.
const KeyHeader = "X-BetterPrompt-Api-Key"

// instructions tell the agent the workflow; hosts show them to the model.
const instructions = `BetterPrompt runs published prompts from its marketplace and returns their text, image and video outputs.
Workflow: search_prompts (find a prompt; modality "video" finds video prompts; note its prompt_id, or use an id, slug or page link the user gives) → get_prompt (its price, and input_schema: the exact inputs it needs; tell the user the price before a costly run) → run_prompt (spends credits; inputs are checked first) → get_run (only when run_prompt answered before the run finished: pass its run_id).
Image and video outputs are URLs that expire 24 hours after generation: show them to the user. Runs cannot be cancelled. get_credits shows the balance.`

const sandboxInstructions = "\nSANDBOX MODE: this server runs against a simulated BetterPrompt API. Outputs are canned examples, not real generations; the credits shown are a simulated balance, and no real account is touched."

var _ tools.Toolset = (*Toolset)(nil)

// Instructions is BetterPrompt's part of the server instructions.
func (d *Toolset) Instructions() string {
	out := instructions
	if d.Sandbox {
		out += sandboxInstructions
	}
	d.pinMu.Lock()
	defer d.pinMu.Unlock()
	if len(d.pinned) > 0 {
		out += "\n\nChosen prompts have tools of their own, whose arguments are the prompt's inputs (they run like " +
			"run_prompt): " + strings.Join(d.pinned, ", ") + "."
	}
	if len(d.pinFailures) > 0 {
		out += "\n\nSome chosen prompts could not be loaded and have no tool (use search_prompts and run_prompt " +
			"instead): " + strings.Join(d.pinFailures, "; ")
	}
	return out
}

// KeyHeader names the header of a caller's own key.
func (d *Toolset) KeyHeader() string { return KeyHeader }

// Tools declares BetterPrompt's six tools; run_prompt takes task calls
// when tasks is not nil.
func (d *Toolset) Tools(tasks *tools.Tasks) []server.ServerTool {
	d.Wait = d.Wait.withDefaults()
	if d.MaxWaitsPerKey <= 0 {
		d.MaxWaitsPerKey = DefaultMaxWaitsPerKey
	}
	if d.Slots == nil {
		d.Slots = state.NewSlots()
	}
	d.Spending.Init("BetterPrompt")
	d.runEngine()
	d.adapter = tools.Adapter{Logger: d.Logger, Describe: describeError, Redactor: d.Redactor, Tasks: tasks}
	run := runPrompt(d)
	base := []server.ServerTool{searchPrompts(d), getPrompt(d), run, getRun(d), getCredits(d), listModels(d)}
	taken := map[string]bool{}
	for _, t := range base {
		taken[t.Tool.Name] = true
	}
	if d.ChangesTools() {
		base = append(base, pinPrompt(d, run))
		taken["pin_prompt"] = true
	}
	pinned, _ := d.pinnedTools(taken, run)
	d.pinMu.Lock()
	d.pinned = nil
	for _, t := range pinned {
		d.pinned = append(d.pinned, t.Tool.Name)
	}
	d.pinMu.Unlock()
	return append(base, pinned...)
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
func (d *Toolset) Drain(ctx context.Context) error {
	err := d.runEngine().Drain(ctx) // stops the settlers too
	if werr := tools.WaitGroup(ctx, &d.settlers); err == nil {
		err = werr
	}
	return err
}

// redactor returns the function that redacts the call's API key, in every
// form bpapi.Client.Redact knows, or nil when the call has no key.
// Redactor returns the function that removes the call's API key (in every
// form it may take) from a text, or nil when the call has none
// (tools.Redacting).
func (d *Toolset) Redactor(ctx context.Context) func(string) string {
	if d.Client == nil {
		return nil
	}
	c, _, err := d.client(ctx)
	if err != nil {
		return nil
	}
	return c.Redact
}
