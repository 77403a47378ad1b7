package betterprompt

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/schema"
	"github.com/bpmcp/bpmcp/tools"
)

// WaitSlots bounds, per API key, the calls waiting for runs. Slots are
// leases, so a holder that dies frees its slot when the lease ends.
// state.Slots keeps them in memory.
type WaitSlots interface {
	// Acquire takes one of key's limit slots for at most ttl; ok is false
	// when every slot is held. release may be called more than once.
	Acquire(ctx context.Context, key string, limit int, ttl time.Duration) (release func(), ok bool, err error)
	// Held returns how many of key's slots are held.
	Held(ctx context.Context, key string) (int, error)
}

// slotMargin is added to a wait's lease beyond the wait itself and the
// late work after it, so that a live holder never loses its slot.
const slotMargin = 30 * time.Second

// acquireWait takes a wait slot for tenant, for a wait of up to wait.
func (d *Toolset) acquireWait(ctx context.Context, tenant string, wait time.Duration) (release func(), ok bool, err error) {
	return d.Slots.Acquire(ctx, tenant, d.MaxWaitsPerKey, wait+runs.LateWork+slotMargin)
}

// WaitConfig bounds how long run_prompt and get_run wait for a run.
type WaitConfig struct {
	Default time.Duration // used when wait_seconds is absent (45 s)
	Max     time.Duration // the largest wait_seconds accepted (600 s)
	// CreateTimeout bounds the background POST /v1/runs; it must exceed the
	// API's ~120 s synchronous window so the run id is always learned.
	CreateTimeout time.Duration
	// PollMin and PollMax bound the interval between GET /v1/runs/{id} polls.
	PollMin, PollMax time.Duration
	// ProgressEvery is the interval between progress notifications (≤ 5 s).
	ProgressEvery time.Duration
	// StartBound is how long after the last moment its POST was in flight
	// (its sending, or its failure) a run must show in the account's run
	// list if the POST created it: the API's ~120 s hold plus a margin.
	// Past it, a submission whose outcome was unknown and that shows no run
	// is known not to have started.
	StartBound time.Duration
}

// DefaultWaitConfig returns the documented defaults: the waits a host
// allows, and the run engine's timings (runs.DefaultConfig).
func DefaultWaitConfig() WaitConfig {
	r := runs.DefaultConfig()
	return WaitConfig{
		Default:       45 * time.Second,
		Max:           600 * time.Second,
		CreateTimeout: r.CreateTimeout,
		PollMin:       r.PollMin,
		PollMax:       r.PollMax,
		ProgressEvery: r.ProgressEvery,
		StartBound:    r.StartBound,
	}
}

func (w WaitConfig) withDefaults() WaitConfig {
	def := DefaultWaitConfig()
	if w.Default <= 0 {
		w.Default = def.Default
	}
	if w.Max <= 0 {
		w.Max = def.Max
	}
	if w.Default > w.Max {
		w.Default = w.Max
	}
	if w.CreateTimeout <= 0 {
		w.CreateTimeout = def.CreateTimeout
	}
	if w.PollMin <= 0 {
		w.PollMin = def.PollMin
	}
	if w.PollMax < w.PollMin {
		w.PollMax = max(def.PollMax, w.PollMin)
	}
	if w.ProgressEvery <= 0 || w.ProgressEvery > 5*time.Second {
		w.ProgressEvery = def.ProgressEvery
	}
	if w.StartBound <= 0 {
		w.StartBound = def.StartBound
	}
	return w
}

// runEngine returns the run engine, made on first use with the settings of
// d: the run lifecycle (submit once, waits, recovery, drain) lives there.
func (d *Toolset) runEngine() *runs.Engine {
	d.engineOnce.Do(func() {
		w := d.Wait // with its defaults since Tools; New fills any still zero
		d.engine = runs.New(runs.Config{
			StartBound: w.StartBound, CreateTimeout: w.CreateTimeout,
			PollMin: w.PollMin, PollMax: w.PollMax, ProgressEvery: w.ProgressEvery,
			Exclusive: d.ExclusiveKey, Started: d.upSince, Logger: d.Logger,
			KindKey: "prompt_version_id", Narrate: narrate, Held: d.heldWaits, Records: d.Records,
		})
	})
	return d.engine
}

// heldWaits counts the calls waiting with tenant's key.
func (d *Toolset) heldWaits(ctx context.Context, tenant string) (int, error) {
	if d.Slots == nil {
		return 1, nil
	}
	n, err := d.Slots.Held(ctx, tenant)
	if err != nil {
		return 0, fmt.Errorf("counting the waits of a key: %w", err)
	}
	return n, nil
}

func (d *Toolset) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

// WithAPIKey returns a context carrying a caller's own BetterPrompt API key,
// as the HTTP transport sets it from KeyHeader. With
// Toolset.PerRequestKeys it is the only key the tools use.
func WithAPIKey(ctx context.Context, key bpapi.APIKey) context.Context {
	return tools.WithCallerKey(ctx, KeyHeader, key)
}

func apiKeyFrom(ctx context.Context) bpapi.APIKey { return tools.CallerKey(ctx, KeyHeader) }

// errNoKey explains how to configure a key; hosts display start-up failures
// poorly, so the server starts without one and every tool says this instead.
var errNoKey = &tools.Error{Msg: "No BetterPrompt API key is configured. Set the BETTERPROMPT_API_KEY environment variable " +
	"in this MCP server's configuration (keys are created at https://betterprompt.me/api-keys; the API needs a Pro plan), " +
	"or start the server with --sandbox to try it with simulated outputs."}

var errNoRequestKey = &tools.Error{Msg: "This server expects each request to carry its own BetterPrompt API key in the " +
	KeyHeader + " header. Add the header to this MCP server's configuration in your client."}

// client returns the BetterPrompt client for this call, and a short,
// non-reversible tag of its key that keeps one caller's run handles away
// from another's.
func (d *Toolset) client(ctx context.Context) (*bpapi.Client, string, error) {
	if key := apiKeyFrom(ctx); key != "" {
		c := d.Client.WithAPIKey(key)
		return c, c.KeyID(), nil
	}
	if d.PerRequestKeys {
		return nil, "", errNoRequestKey
	}
	if !d.Client.HasAPIKey() {
		return nil, "", errNoKey
	}
	return d.Client, d.Client.KeyID(), nil
}

// verifiedKeys remembers the keys (by KeyID) that the API accepted
// recently, so that cached prompt configurations are shown only to callers
// whose key works: a caller with an invalid key must not learn which
// prompts other tenants have used, nor their inputs.
type verifiedKeys struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

// verifiedFor is how long a key the API accepted counts as working.
const verifiedFor = 10 * time.Minute

func (v *verifiedKeys) mark(tenant string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := time.Now()
	if v.seen == nil || len(v.seen) >= 4096 {
		for k, at := range v.seen {
			if now.Sub(at) > verifiedFor {
				delete(v.seen, k)
			}
		}
		if v.seen == nil || len(v.seen) >= 4096 {
			v.seen = make(map[string]time.Time) // bounded; a key is verified again by its next request
		}
	}
	v.seen[tenant] = now
}

func (v *verifiedKeys) ok(tenant string) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	at, ok := v.seen[tenant]
	return ok && time.Since(at) < verifiedFor
}

// promptConfig is a published prompt version with its input configuration
// parsed once.
type promptConfig struct {
	pv  *bpapi.PromptVersion
	cfg *schema.Config
	err error // why the configuration could not be read (then cfg is nil)
}

// configCache keeps the parsed configuration of prompt versions, which never
// change once published, so repeated runs of one version cost one lookup
// and one parse.
type configCache struct {
	mu      sync.Mutex
	entries map[string]*promptConfig
}

const maxCachedConfigs = 512

func (c *configCache) get(versionID string) *promptConfig {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[versionID]
}

// put parses v's configuration, keeps it and returns it.
func (c *configCache) put(v *bpapi.PromptVersion) *promptConfig {
	cfg, err := parseConfig(v)
	pc := &promptConfig{pv: v, cfg: cfg, err: err}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxCachedConfigs {
		c.entries = make(map[string]*promptConfig) // crude but bounded; versions are cheap to refetch
	}
	c.entries[v.PromptVersionID] = pc
	return pc
}

// resourceCache keeps /v1/resources (the models and their run options) for a
// while, or until an answer says they changed (action-require:
// update-resources); they change rarely.
type resourceCache struct {
	mu      sync.Mutex
	value   *bpapi.Resources
	fetched time.Time
}

const resourcesTTL = 10 * time.Minute

func (d *Toolset) resourcesFor(ctx context.Context, c *bpapi.Client) (*bpapi.Resources, error) {
	rc := &d.resources
	changed := c.ResourcesChanged()
	rc.mu.Lock()
	if rc.value != nil && time.Since(rc.fetched) < resourcesTTL && !changed {
		v := rc.value
		rc.mu.Unlock()
		return v, nil
	}
	rc.mu.Unlock()
	res, err := c.Resources(ctx)
	if err != nil {
		return nil, err
	}
	rc.mu.Lock()
	rc.value, rc.fetched = res, time.Now()
	rc.mu.Unlock()
	return res, nil
}
