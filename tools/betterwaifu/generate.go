package betterwaifu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/preview"
	"github.com/bpmcp/bpmcp/tools/viewer"
)

// GenerateInput is the argument of betterwaifu_generate. The API documents
// no ranges; the bounds here only refuse what cannot be meant.
type GenerateInput struct {
	Prompt         string   `json:"prompt" jsonschema_description:"Tags, e.g. '1girl, solo'."`
	NegativePrompt string   `json:"negative_prompt,omitempty"`
	ModelVersionID int64    `json:"model_version_id,omitempty" jsonschema_description:"Default: first SFW model."`
	Width          int      `json:"width,omitempty" jsonschema_description:"e.g. 832x1216."`
	Height         int      `json:"height,omitempty"`
	Steps          int      `json:"steps,omitempty" jsonschema_description:"Usually 20-50."`
	CFGScale       *float64 `json:"cfg_scale,omitempty" jsonschema_description:"Usually 1-20."`
	Sampler        string   `json:"sampler,omitempty" jsonschema_description:"e.g. euler_a."`
	Seed           *int64   `json:"seed,omitempty"`
	WaitSeconds    *float64 `json:"wait_seconds,omitempty"`
	MaxCredits     *int     `json:"max_credits,omitempty"`
	InlineImages   *bool    `json:"inline_images,omitempty" jsonschema_description:"Embed image previews."`
}

// Check validates the arguments before anything is sent.
func (in *GenerateInput) Check() error {
	in.Prompt = strings.TrimSpace(in.Prompt)
	switch {
	case in.Prompt == "":
		return tools.Invalidf("prompt is required: tag-style words such as \"1girl, solo, long hair, masterpiece\"")
	case utf8.RuneCountInString(in.Prompt) > 4000 || utf8.RuneCountInString(in.NegativePrompt) > 4000:
		return tools.Invalidf("prompt and negative_prompt are at most 4000 characters")
	case in.ModelVersionID < 0:
		return tools.Invalidf("model_version_id is an id from betterwaifu_list_models, got %d", in.ModelVersionID)
	case in.Width < 0 || in.Width > 8192 || in.Height < 0 || in.Height > 8192:
		return tools.Invalidf("width and height are pixels (the documented example is 832 × 1216), got %d × %d", in.Width, in.Height)
	case in.Steps < 0 || in.Steps > 1000:
		return tools.Invalidf("steps is a small count (20-50 is usual), got %d", in.Steps)
	case in.CFGScale != nil && (math.IsNaN(*in.CFGScale) || *in.CFGScale <= 0 || *in.CFGScale > 100):
		return tools.Invalidf("cfg_scale is a positive number (1-20 is usual)")
	case len(in.Sampler) > 64:
		return tools.Invalidf("sampler is a short name such as \"euler_a\"")
	case in.WaitSeconds != nil && !(*in.WaitSeconds >= 0):
		return tools.Invalidf("wait_seconds must be 0 or more")
	case in.MaxCredits != nil && *in.MaxCredits < 0:
		return tools.Invalidf("max_credits must be 0 or more")
	}
	return nil
}

// GenerationView is the result of betterwaifu_generate and
// betterwaifu_get_generation.
type GenerationView struct {
	GenerationID   string      `json:"generation_id"`
	Status         string      `json:"status"` // queued, processing, succeeded, failed or unconfirmed (in the README)
	Images         []ImageView `json:"images"`
	Seed           Seed        `json:"seed,omitempty"`
	ModelVersionID int64       `json:"model_version_id,omitempty"`
	Message        string      `json:"message,omitempty"`
}

// Seed is a generation's seed as BetterWaifu wrote it: a JSON number that
// may not fit 64 bits, so it is kept as its digits.
type Seed string

// MarshalJSON writes the number as it came.
func (s Seed) MarshalJSON() ([]byte, error) {
	if s == "" {
		return []byte("null"), nil
	}
	return []byte(s), nil
}

// UnmarshalJSON reads a number; anything else is no seed.
func (s *Seed) UnmarshalJSON(b []byte) error {
	var n json.Number
	if json.Unmarshal(b, &n) != nil {
		*s = ""
		return nil
	}
	*s = Seed(n)
	return nil
}

// JSONSchema declares a number.
func (Seed) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "number"} }

// ImageView is one generated image.
type ImageView struct {
	URL string `json:"url"`
	ID  string `json:"id"`
}

// JSONSchema declares an image as a plain object, to keep tools/list small
// (it goes into every agent's context); its fields are in the README.
func (ImageView) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

// apiName labels BetterWaifu's metrics.
const apiName = "betterwaifu"

// unknownHold is how long a generation whose start got no answer is
// assumed to run before the key's next turn: it may have started, and
// BetterWaifu cannot list generations to tell.
const unknownHold = 2 * time.Minute

// maxFollow bounds how long a generation is followed to release its turn.
const maxFollow = 30 * time.Minute

// errTurnLost is the start's failure when its call ended before the
// generation was sent: nothing is sent without the key's turn.
var errTurnLost = errors.New("the call ended before its turn to submit")

func generate(d *Toolset) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:  "betterwaifu_generate",
		UI:    viewer.URI,
		Title: "Generate image (spends credits)",
		Description: "Generate images. Spends credits. One at a time per key, 60 s apart: " +
			"waits its turn and the images up to wait_seconds, else returns generation_id.",
		Hints: tools.Hints{OpenWorld: true},
	}, func(ctx context.Context, in GenerateInput) (tools.Result[GenerationView], error) {
		deadline := time.Now().Add(d.waitFor(in.WaitSeconds))
		c, tenant, err := d.client(ctx)
		if err != nil {
			return tools.Result[GenerationView]{}, err
		}
		up := upstream{c}
		progress := tools.NewProgress(ctx, d.logger())
		// A request delivered twice (an HTTP-level retry) is answered with
		// what its first delivery did, and never queues again.
		key := tools.CallKey(ctx)
		if key != "" {
			first, ok := d.deliveries.begin(tenant + "|" + key)
			if !ok {
				return d.replay(ctx, up, tenant, key, first, deadline, progress)
			}
			defer first.end(errTurnLost) // a no-op once submitted or refused
			ctx = withDelivery(ctx, first)
		}
		waited := d.Metrics.Waiting(apiName)
		res, err := d.generateOnce(ctx, c, up, tenant, key, in, deadline, progress)
		waited()
		if dl := deliveryOf(ctx); dl != nil && err != nil {
			dl.end(err)
		}
		return res, err
	})
}

// generateOnce queues for the key's turn, then submits the generation and
// waits for it.
func (d *Toolset) generateOnce(ctx context.Context, c *bwapi.Client, up upstream, tenant, key string, in GenerateInput,
	deadline time.Time, progress *tools.Progress) (tools.Result[GenerationView], error) {
	// The place in line is taken first, so that callers are served in the
	// order they came, however long their checks take.
	ticket, err := d.Turns.Enter(ctx, tenant)
	if err != nil {
		return tools.Result[GenerationView]{}, tools.Failf(err, "The server could not queue the generation (%v); nothing was submitted. Try again in a moment.", err)
	}
	granted := false
	defer func() {
		if !granted {
			d.leaveLine(ctx, tenant, ticket)
		}
	}()
	if err := d.preflight(ctx, c, tenant); err != nil {
		return tools.Result[GenerationView]{}, err
	}
	if err := d.budgetLeft(ctx, tenant); err != nil {
		return tools.Result[GenerationView]{}, err
	}
	model, err := d.pickModel(ctx, c, tenant, in.ModelVersionID)
	if err != nil {
		return tools.Result[GenerationView]{}, err
	}
	if err := d.Confirm.Confirm(ctx, d.question(ctx, c, tenant)); err != nil {
		return tools.Result[GenerationView]{}, err
	}
	if err := d.awaitTurn(ctx, tenant, ticket, deadline, progress); err != nil {
		return tools.Result[GenerationView]{}, err
	}
	granted = true
	turn := &turn{key: tenant, ticket: ticket}
	if ctx.Err() != nil {
		// Cancelled as the turn came: nothing is sent for a call that ended.
		d.finishTurn(turn, time.Time{})
		return tools.Result[GenerationView]{}, tools.Failf(ctx.Err(), "The call ended before its generation was submitted; nothing was started or spent.")
	}
	m, err := d.reserve(ctx, c, tenant, in.MaxCredits)
	if err != nil {
		d.finishTurn(turn, time.Time{})
		return tools.Result[GenerationView]{}, err
	}
	req := bwapi.GenerateRequest{Prompt: in.Prompt, NegativePrompt: in.NegativePrompt, ModelVersionID: model.ID,
		Width: in.Width, Height: in.Height, Steps: in.Steps, CFGScale: in.CFGScale, Sampler: in.Sampler, Seed: in.Seed}
	call := runs.Call{Tenant: tenant, Kind: fmt.Sprint(model.ID), Key: key}
	dl := deliveryOf(ctx)
	start := func(sctx context.Context) (*runs.Job, error) {
		if !turn.begin() {
			return nil, errTurnLost
		}
		if dl != nil {
			dl.end(nil) // on record: a second delivery now rejoins it
		}
		submitted := time.Now()
		g, err := c.Generate(sctx, req)
		if err == nil {
			d.meters.put(g.ID, m)
			d.Metrics.RunStarted(apiName)
		}
		d.afterStart(c, turn, m, submitted, g, err)
		if err != nil {
			return nil, err
		}
		d.submitted.put(g.ID, model.ID)
		job := jobOf(g, call.Kind)
		return &job, nil
	}
	outcome, err := d.runEngine().Run(ctx, up, call, start, deadline, progress)
	// The engine sends the start at once, on its own goroutine; one that
	// has not begun a while later never will (a replay joined another
	// submission): its turn is given back then, and its budget.
	time.AfterFunc(runs.LateWork, func() {
		if turn.endIfUnused(d) {
			m.res.Release(context.Background())
		}
	})
	if err != nil {
		return tools.Result[GenerationView]{}, d.engineError(err)
	}
	return d.withPreviews(ctx, withNotes(d.render(outcome), d.chargeNotes(ctx, c, tenant, outcome, in.MaxCredits)), in.InlineImages), nil
}

// replay answers a second delivery of a request: once the first delivery
// has submitted its generation, with that generation; if the first was
// refused, with the same refusal.
func (d *Toolset) replay(ctx context.Context, up upstream, tenant, key string, first *delivery, deadline time.Time,
	progress *tools.Progress) (tools.Result[GenerationView], error) {
	progress.Send(ctx, "This request was already received and waits in line; waiting for it")
	select {
	case <-first.done:
	case <-ctx.Done():
		return tools.Result[GenerationView]{}, tools.Failf(ctx.Err(), "The call ended while its first delivery was still "+
			"waiting in line; that one goes on. Nothing more was submitted.")
	}
	if first.err != nil {
		return tools.Result[GenerationView]{}, first.err
	}
	outcome, joined, err := d.runEngine().Rejoin(ctx, up, runs.Call{Tenant: tenant, Key: key}, deadline, progress)
	switch {
	case err != nil:
		return tools.Result[GenerationView]{}, d.engineError(err)
	case !joined:
		return tools.Result[GenerationView]{}, tools.Failf(nil, "This request was received twice, and the record of its "+
			"first delivery is gone; nothing more was submitted. Call betterwaifu_generate again if no generation shows in the web app.")
	}
	return d.render(outcome), nil
}

// deliveries tracks, per tenant and request, the delivery in progress, so
// that a second delivery of the same request (an HTTP-level retry) waits for
// it instead of queueing again.
type deliveries struct {
	mu sync.Mutex
	m  map[string]*delivery
}

type delivery struct {
	once sync.Once
	done chan struct{}
	err  error // why nothing was submitted; nil once submitted
	drop func()
}

// begin registers a delivery of key; ok is false when one is in progress,
// which is returned.
func (ds *deliveries) begin(key string) (*delivery, bool) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	if dl := ds.m[key]; dl != nil {
		return dl, false
	}
	if ds.m == nil {
		ds.m = make(map[string]*delivery)
	}
	dl := &delivery{done: make(chan struct{})}
	dl.drop = func() {
		ds.mu.Lock()
		defer ds.mu.Unlock()
		if ds.m[key] == dl {
			delete(ds.m, key)
		}
	}
	ds.m[key] = dl
	return dl, true
}

// end says what became of the delivery (nil: submitted) the first time it
// is called; a second delivery then proceeds.
func (dl *delivery) end(err error) {
	dl.once.Do(func() {
		dl.err = err
		close(dl.done)
		dl.drop() // the engine's records answer later deliveries
	})
}

type deliveryKey struct{}

func withDelivery(ctx context.Context, dl *delivery) context.Context {
	return context.WithValue(ctx, deliveryKey{}, dl)
}

func deliveryOf(ctx context.Context) *delivery {
	dl, _ := ctx.Value(deliveryKey{}).(*delivery)
	return dl
}

// GetGenerationInput is the argument of betterwaifu_get_generation.
type GetGenerationInput struct {
	GenerationID string   `json:"generation_id"`
	WaitSeconds  *float64 `json:"wait_seconds,omitempty"`
	InlineImages *bool    `json:"inline_images,omitempty" jsonschema_description:"Embed image previews."`
}

// Check validates the arguments before anything is sent.
func (in *GetGenerationInput) Check() error {
	in.GenerationID = strings.TrimSpace(in.GenerationID)
	switch {
	case in.GenerationID == "" || len(in.GenerationID) > 200:
		return tools.Invalidf("generation_id is the id betterwaifu_generate returned, such as \"job_abc123\"")
	case in.WaitSeconds != nil && !(*in.WaitSeconds >= 0):
		return tools.Invalidf("wait_seconds must be 0 or more")
	}
	return nil
}

func getGeneration(d *Toolset) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:        "betterwaifu_get_generation",
		UI:          viewer.URI,
		Title:       "Get generation",
		Description: "Wait up to wait_seconds for a generation_id; return its status and images.",
		Hints:       tools.ReadOnlyHints,
	}, func(ctx context.Context, in GetGenerationInput) (tools.Result[GenerationView], error) {
		c, tenant, err := d.client(ctx)
		if err != nil {
			return tools.Result[GenerationView]{}, err
		}
		deadline := time.Now().Add(d.waitFor(in.WaitSeconds))
		outcome, err := d.runEngine().Follow(ctx, upstream{c}, tenant, in.GenerationID, deadline, tools.NewProgress(ctx, d.logger()))
		if err != nil {
			return tools.Result[GenerationView]{}, d.engineError(err)
		}
		return d.withPreviews(ctx, withNotes(d.render(outcome), d.chargeNotes(ctx, c, tenant, outcome, nil)), in.InlineImages), nil
	})
}

// withPreviews adds previews of a generation's images to its result when
// the call or the server asks for them (hosts that show image content but
// not links).
func (d *Toolset) withPreviews(ctx context.Context, res tools.Result[GenerationView], ask *bool) tools.Result[GenerationView] {
	if !preview.Wanted(ask, d.InlinePreviews) {
		return res
	}
	var urls []string
	for _, im := range res.Value.Images {
		urls = append(urls, im.URL)
	}
	res.Content = preview.Add(ctx, res.Content, urls)
	return res
}

// render turns what a wait learned into the tool result: the view as
// structuredContent, a text line per image URL (hosts that drop other
// content still get it) and a resource_link per image.
func (d *Toolset) render(o runs.Outcome) tools.Result[GenerationView] {
	if o.Job == nil {
		return d.renderUnknown(o)
	}
	g := generationOf(o.Job)
	v := GenerationView{GenerationID: g.ID, Status: string(g.Status), Images: []ImageView{}, ModelVersionID: d.submitted.get(g.ID)}
	if g.Status == "" || o.Job.Status == runs.Running && g.Status != bwapi.Processing {
		v.Status = string(bwapi.Processing) // an undocumented status: still going
	}
	if g.Output != nil {
		v.Seed = Seed(g.Output.Seed)
		for _, im := range g.Output.Images {
			v.Images = append(v.Images, ImageView{URL: im.URL, ID: im.ID})
		}
	}
	var content []mcp.Content
	switch o.Job.Status {
	case runs.Succeeded:
		head := fmt.Sprintf("Generation %s succeeded: %s", g.ID, plural(len(v.Images), "image", "images"))
		if v.Seed != "" {
			head += fmt.Sprintf(" (seed %s)", v.Seed)
		}
		content = append(content, mcp.NewTextContent(head+d.sandboxNote()))
		for i, im := range v.Images {
			content = append(content,
				mcp.NewTextContent(fmt.Sprintf("Image %d: %s (WebP; how long the link lasts is not documented: save the image if it matters)", i+1, im.URL)),
				mcp.NewResourceLink(im.URL, fmt.Sprintf("betterwaifu-%s-%d.webp", g.ID, i+1), "generated image", "image/webp"))
		}
	case runs.Failed:
		reason := strings.TrimRight(g.Error, ". ")
		if reason == "" {
			reason = "BetterWaifu gave no reason"
		}
		v.Message = fmt.Sprintf("The generation failed: %s. generation_id=%s. Trying again starts a new generation.", reason, g.ID)
		return tools.Result[GenerationView]{Value: v, Content: []mcp.Content{mcp.NewTextContent(v.Message)}, IsError: true}
	default:
		state := string(v.Status)
		if g.QueuePosition != nil {
			state = fmt.Sprintf("queued (position %d)", *g.QueuePosition)
		}
		v.Message = fmt.Sprintf("Generation %s is %s. Call betterwaifu_get_generation with generation_id=%s to wait for it; "+
			"it cannot be cancelled.", g.ID, state, g.ID)
		if o.Stopping {
			v.Message = "The server is shutting down. " + v.Message
		}
		content = append(content, mcp.NewTextContent(v.Message))
	}
	return tools.Result[GenerationView]{Value: v, Content: content}
}

// renderUnknown answers for a generation whose id is not known: its start
// request has not answered yet, or got no answer (BetterWaifu cannot list
// generations, so whether it started cannot be known).
func (d *Toolset) renderUnknown(o runs.Outcome) tools.Result[GenerationView] {
	v := GenerationView{GenerationID: o.Handle, Images: []ImageView{}}
	switch o.State {
	case runs.StatePending:
		v.Status = string(bwapi.Queued)
		v.Message = fmt.Sprintf("The generation is being submitted. Call betterwaifu_get_generation with generation_id=%s in a moment.", o.Handle)
		return tools.Text(v, v.Message)
	}
	v.Status = "unconfirmed"
	hold := o.Submitted.Add(unknownHold + d.Cooldown).UTC().Format("15:04:05")
	v.Message = fmt.Sprintf("The request that starts the generation failed without a clear answer (%s), and BetterWaifu has "+
		"no list of generations to check, so whether it started (and was charged) cannot be known. Do not start it again "+
		"at once: look at your generations in the BetterWaifu web app first. This server holds this key's next generation "+
		"until about %s UTC in case it did start.", causeOf(o.Cause), hold)
	if errors.Is(o.Cause, bwapi.ErrNoID) {
		v.Message = fmt.Sprintf("BetterWaifu accepted the generation (it was started and is charged), but its answer carried "+
			"no id this server could read, so it cannot be followed here: find it in your generations in the BetterWaifu "+
			"web app. This server holds this key's next generation until about %s UTC while it runs.", hold)
	}
	return tools.Result[GenerationView]{Value: v, Content: []mcp.Content{mcp.NewTextContent(v.Message)}, IsError: true}
}

// causeOf words why a start's outcome is unknown, in a few words.
func causeOf(err error) string {
	var ae *bwapi.APIError
	switch {
	case err == nil:
		return "no answer"
	case errors.As(err, &ae):
		return fmt.Sprintf("HTTP %d", ae.Status)
	case errors.Is(err, context.DeadlineExceeded):
		return "no answer in time"
	}
	return "the connection failed"
}

func (d *Toolset) sandboxNote() string {
	if d.Sandbox {
		return " [sandbox: a simulated placeholder image; nothing real was spent]"
	}
	return ""
}
