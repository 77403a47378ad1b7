// Package betterwaifu is the BetterWaifu toolset: image generation with
// the same guarantees as BetterPrompt's runs (inputs checked before
// anything is spent, bounded waits with progress, an id that is never
// lost), and the API's limits kept locally per key: one active generation
// at a time and a cooldown between generations, callers served first come,
// first served (Turns).
package betterwaifu

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/internal/metrics"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// Toolset is BetterWaifu's toolset: its four tools and what they share.
type Toolset struct {
	// InlinePreviews embeds previews of the images in results by default
	// (--inline-previews); a call's inline_images overrides it.
	InlinePreviews bool
	// Client is the BetterWaifu client with the server's own key (empty
	// when none is configured).
	Client *bwapi.Client
	// PerRequestKeys makes every call bring its own key (KeyHeader).
	PerRequestKeys bool
	// WaitDefault and WaitMax bound how long a call waits (for its turn
	// and its generation): the default when wait_seconds is absent, and
	// the most accepted.
	WaitDefault, WaitMax time.Duration
	// Cooldown is the least time between the end of one generation and the
	// start of the next, per key (default 60 s, the API's).
	Cooldown time.Duration
	// Turns keeps each key's line of generations (default: in memory,
	// state.NewTurns(Cooldown)). A shared implementation holds the limits
	// across replicas.
	Turns Turns
	// Logger receives operational logs. Nil discards them.
	Logger *slog.Logger
	// Sandbox marks results as simulated.
	Sandbox bool
	// Spending is the budget per key (none by default); its Upstream is
	// set to "BetterWaifu".
	Spending spending.Policy
	// Confirm asks the user before a generation when a threshold is set:
	// BetterWaifu publishes no price, so every generation is asked about.
	Confirm *spending.Confirmer
	// Metrics counts generations and waits (nil: none).
	Metrics *metrics.Metrics
	// PollMin and PollMax bound the interval between readings of a
	// generation (defaults 1 s and 3 s); ProgressEvery is the interval of
	// progress messages (default 3 s).
	PollMin, PollMax, ProgressEvery time.Duration

	adapter    tools.Adapter
	engineOnce sync.Once
	engine     *runs.Engine
	accounts   ttlCache[*bwapi.Account]
	models     ttlCache[[]bwapi.Model]
	followers  sync.WaitGroup
	stopOnce   sync.Once
	stop       chan struct{}
	submitted  modelMemo
	deliveries deliveries
	meters     meters
}

// Turns is the per-key line of generations; state.Turns keeps it in memory.
type Turns interface {
	// Enter puts a caller at the end of key's line.
	Enter(ctx context.Context, key string) (ticket string, err error)
	// Try grants the turn when it is the caller's, or says where it stands.
	Try(ctx context.Context, key, ticket string) (state.TurnState, error)
	// Leave takes a caller that has not got the turn out of line.
	Leave(ctx context.Context, key, ticket string) error
	// Started records that the holder's job has started.
	Started(ctx context.Context, key, ticket string) error
	// Finish ends a held turn; the next starts no earlier than freeAt.
	Finish(ctx context.Context, key, ticket string, freeAt time.Time) error
	// Defer moves key's next turn to until at the earliest.
	Defer(ctx context.Context, key string, until time.Time) error
}

var _ Turns = (*state.Turns)(nil)

// KeyHeader carries a caller's own BetterWaifu key in HTTP mode.
const KeyHeader = "X-BetterWaifu-Api-Key"

// DefaultCooldown is the API's documented wait between generations.
const DefaultCooldown = 60 * time.Second

const instructions = `
BetterWaifu generates anime-style images from tag-style prompts: betterwaifu_list_models (pick a model_version_id) → betterwaifu_generate (spends credits; one generation at a time per key, 60 s apart: calls queue, and one whose turn cannot come within its wait is refused without spending) → betterwaifu_get_generation (when the wait ended first). Images are WebP URLs: show them to the user. betterwaifu_get_account shows credits and subscription.`

var _ tools.Toolset = (*Toolset)(nil)

// Instructions is BetterWaifu's paragraph of the server instructions.
func (d *Toolset) Instructions() string {
	if d.Sandbox {
		return instructions + " (Sandbox: simulated BetterWaifu API; the images are placeholders.)"
	}
	return instructions
}

// KeyHeader names the header of a caller's own key.
func (d *Toolset) KeyHeader() string { return KeyHeader }

// Tools declares BetterWaifu's four tools.
func (d *Toolset) Tools(tasks *tools.Tasks) []server.ServerTool {
	if d.WaitMax <= 0 {
		d.WaitMax = 10 * time.Minute
	}
	if d.WaitDefault <= 0 || d.WaitDefault > d.WaitMax {
		d.WaitDefault = min(45*time.Second, d.WaitMax)
	}
	if d.Cooldown <= 0 {
		d.Cooldown = DefaultCooldown
	}
	if d.Turns == nil {
		d.Turns = state.NewTurns(d.Cooldown)
	}
	d.Spending.Init("BetterWaifu")
	d.runEngine()
	d.adapter = tools.Adapter{Logger: d.Logger, Describe: describeError, Redactor: d.Redactor, Tasks: tasks}
	return []server.ServerTool{generate(d), getGeneration(d), listModels(d), getAccount(d)}
}

// runEngine returns the engine that submits and follows generations.
func (d *Toolset) runEngine() *runs.Engine {
	d.engineOnce.Do(func() {
		d.stop = make(chan struct{})
		pollMin, pollMax, every := d.PollMin, d.PollMax, d.ProgressEvery
		if pollMin <= 0 {
			pollMin = time.Second
		}
		if pollMax < pollMin {
			pollMax = max(3*time.Second, pollMin)
		}
		if every <= 0 || every > 5*time.Second {
			every = 3 * time.Second
		}
		d.engine = runs.New(runs.Config{
			// POST /generate answers at once (201, queued): no long hold.
			StartBound: 30 * time.Second, CreateTimeout: 30 * time.Second,
			PollMin: pollMin, PollMax: pollMax, ProgressEvery: every,
			Logger: d.Logger, KindKey: "model_version_id", Narrate: narrate,
		})
	})
	return d.engine
}

// BeginShutdown refuses new generations and, after answerWithin, makes
// waiting calls answer with what they know.
func (d *Toolset) BeginShutdown(answerWithin time.Duration) {
	d.runEngine().BeginShutdown(answerWithin)
}

// Drain waits until every generation request this process sent has been
// answered (so its id is known and logged), or ctx ends; the followers
// that hold each key's turn until its generation ends then stop.
func (d *Toolset) Drain(ctx context.Context) error {
	err := d.runEngine().Drain(ctx)
	d.stopOnce.Do(func() { close(d.stop) })
	if werr := tools.WaitGroup(ctx, &d.followers); err == nil {
		err = werr
	}
	return err
}

func (d *Toolset) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// client returns the client for this call and the key's identity (a hash)
// that keys its state.
func (d *Toolset) client(ctx context.Context) (*bwapi.Client, string, error) {
	if key := tools.CallerKey(ctx, KeyHeader); key != "" {
		c := d.Client.WithAPIKey(key)
		return c, c.KeyID(), nil
	}
	if d.PerRequestKeys {
		return nil, "", errNoRequestKey
	}
	if d.Client == nil || !d.Client.HasAPIKey() {
		return nil, "", errNoKey
	}
	return d.Client, d.Client.KeyID(), nil
}

var errNoKey = &tools.Error{Msg: "No BetterWaifu API key is configured. Set BETTERWAIFU_API_KEY in this MCP server's " +
	"configuration (create one in the BetterWaifu web app: avatar → Settings → API Key; the API needs an active subscription)."}

var errNoRequestKey = &tools.Error{Msg: "This server expects each request to carry its own BetterWaifu API key in the " +
	KeyHeader + " header. Add the header to this MCP server's configuration in your client."}

// redactor removes the call's key from results and logs.
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

// ttlCache keeps one value per key for a while, bounded in size.
type ttlCache[V any] struct {
	mu      sync.Mutex
	entries map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v  V
	at time.Time
}

const maxCacheEntries = 4096

func (c *ttlCache[V]) get(key string, ttl time.Duration) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || time.Since(e.at) > ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCacheEntries {
		c.entries = make(map[string]ttlEntry[V])
	}
	c.entries[key] = ttlEntry[V]{v: v, at: time.Now()}
}

// modelMemo remembers the model of the generations this process started,
// for get_generation's model_version_id (the API's reading does not say).
type modelMemo struct {
	mu sync.Mutex
	m  map[string]int64
}

func (m *modelMemo) put(id string, model int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil || len(m.m) >= maxCacheEntries {
		m.m = make(map[string]int64)
	}
	m.m[id] = model
}

func (m *modelMemo) get(id string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.m[id]
}
