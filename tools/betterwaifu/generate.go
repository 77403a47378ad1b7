package betterwaifu

import (
	"context"
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
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools"
)

// GenerateInput is the argument of betterwaifu_generate. The API documents
// no ranges; the bounds here only refuse what cannot be meant.
type GenerateInput struct {
	Prompt         string   `json:"prompt" jsonschema_description:"Tags, e.g. '1girl, solo'."`
	NegativePrompt string   `json:"negative_prompt,omitempty"`
	ModelVersionID int64    `json:"model_version_id,omitempty" jsonschema_description:"Default: first SFW model."`
	Width          int      `json:"width,omitempty" jsonschema_description:"Advisory: 832x1216."`
	Height         int      `json:"height,omitempty"`
	Steps          int      `json:"steps,omitempty" jsonschema_description:"Advisory: 20-50."`
	CFGScale       *float64 `json:"cfg_scale,omitempty" jsonschema_description:"Advisory: 1-20."`
	Sampler        string   `json:"sampler,omitempty" jsonschema_description:"e.g. euler_a."`
	Seed           *int64   `json:"seed,omitempty"`
	WaitSeconds    *float64 `json:"wait_seconds,omitempty"`
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
	}
	return nil
}

// GenerationView is the result of betterwaifu_generate and
// betterwaifu_get_generation.
type GenerationView struct {
	GenerationID   string      `json:"generation_id"`
	Status         string      `json:"status" jsonschema:"enum=queued,enum=processing,enum=succeeded,enum=failed,enum=unconfirmed"`
	Images         []ImageView `json:"images"`
	Seed           *int64      `json:"seed,omitempty"`
	ModelVersionID int64       `json:"model_version_id,omitempty"`
	Message        string      `json:"message,omitempty"`
}

// ImageView is one generated image.
type ImageView struct {
	URL string `json:"url"`
	ID  string `json:"id"`
}

// JSONSchema declares an image as a plain object, to keep tools/list small
// (it goes into every agent's context); its fields are in the README.
func (ImageView) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

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
		Title: "Generate image (spends credits)",
		Description: "Run an image generation. Spends credits. One at a time per key, 60 s apart: " +
			"waits its turn and the images up to wait_seconds, else returns generation_id.",
		Hints: tools.Hints{OpenWorld: true},
	}, func(ctx context.Context, in GenerateInput) (tools.Result[GenerationView], error) {
		wait := d.waitFor(in.WaitSeconds)
		deadline := time.Now().Add(wait)
		c, tenant, err := d.client(ctx)
		if err != nil {
			return tools.Result[GenerationView]{}, err
		}
		if err := d.preflight(ctx, c, tenant); err != nil {
			return tools.Result[GenerationView]{}, err
		}
		model, err := d.pickModel(ctx, c, tenant, in.ModelVersionID)
		if err != nil {
			return tools.Result[GenerationView]{}, err
		}
		req := bwapi.GenerateRequest{Prompt: in.Prompt, NegativePrompt: in.NegativePrompt, ModelVersionID: model.ID,
			Width: in.Width, Height: in.Height, Steps: in.Steps, CFGScale: in.CFGScale, Sampler: in.Sampler, Seed: in.Seed}
		up := upstream{c}
		call := runs.Call{Tenant: tenant, Kind: fmt.Sprint(model.ID), Key: tools.CallKey(ctx)}
		progress := tools.NewProgress(ctx, d.logger())
		// A replayed call is answered with the generation its first
		// delivery started; it does not queue again.
		if outcome, joined, err := d.runEngine().Rejoin(ctx, up, call, deadline, progress); err != nil {
			return tools.Result[GenerationView]{}, engineError(err)
		} else if joined {
			return d.render(outcome), nil
		}
		turn, err := d.awaitTurn(ctx, tenant, deadline, progress)
		if err != nil {
			return tools.Result[GenerationView]{}, err
		}
		start := func(sctx context.Context) (*runs.Job, error) {
			if !turn.begin() {
				return nil, errTurnLost
			}
			submitted := time.Now()
			g, err := c.Generate(sctx, req)
			d.afterStart(c, turn, submitted, g, err)
			if err != nil {
				return nil, err
			}
			d.submitted.put(g.ID, model.ID)
			job := jobOf(g, call.Kind)
			return &job, nil
		}
		outcome, err := d.runEngine().Run(ctx, up, call, start, deadline, progress)
		// The engine sends the start at once, on its own goroutine; one
		// that has not begun a while later never will (a replay joined
		// another submission): its turn is given back then.
		time.AfterFunc(runs.LateWork, func() { turn.endIfUnused(d) })
		if err != nil {
			return tools.Result[GenerationView]{}, engineError(err)
		}
		return d.render(outcome), nil
	})
}

// turn is a key's turn, held by one call from the moment it is granted
// until its generation ends (afterStart), or given back unused.
type turn struct {
	key, ticket string
	mu          sync.Mutex
	used, ended bool
}

// begin marks the turn used by a start request; false when it was already
// given back (the call ended first).
func (t *turn) begin() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.ended {
		return false
	}
	t.used = true
	return true
}

// endIfUnused gives back a turn no start request used (a replay joined
// another submission); a start that begins later is not sent.
func (t *turn) endIfUnused(d *Toolset) {
	t.mu.Lock()
	unused := !t.used && !t.ended
	t.ended = true
	t.mu.Unlock()
	if unused {
		d.finishTurn(t, time.Time{})
	}
}

func (d *Toolset) finishTurn(t *turn, freeAt time.Time) {
	ctx, cancel := context.WithTimeout(context.Background(), runs.LateWork)
	defer cancel()
	if err := d.Turns.Finish(ctx, t.key, t.ticket, freeAt); err != nil {
		d.logger().Warn("giving back a BetterWaifu turn failed; it ends when its hold expires", "err", err)
	}
}

// afterStart decides when the key's next turn may start, from what the
// start request's answer says.
func (d *Toolset) afterStart(c *bwapi.Client, t *turn, submitted time.Time, g *bwapi.Generation, err error) {
	busy, retryAfter := bwapi.IsBusy(err)
	switch {
	case err == nil:
		d.followers.Add(1)
		go func() {
			defer d.followers.Done()
			d.follow(c, t, submitted, g.ID)
		}()
	case busy:
		// The API is the source of truth: something else holds the key.
		if retryAfter <= 0 {
			retryAfter = d.Cooldown
		}
		ctx, cancel := context.WithTimeout(context.Background(), runs.LateWork)
		_ = d.Turns.Defer(ctx, t.key, time.Now().Add(retryAfter))
		cancel()
		d.finishTurn(t, time.Time{})
	case errors.Is(err, bwapi.ErrOutcomeUnknown), errors.Is(err, bwapi.ErrNoID), upstream{c}.Classify(err).Kind == runs.OutcomeUnknown:
		// It may have started: hold the key as if it had.
		d.logger().Warn("a BetterWaifu generation may have started without its id reaching this server; "+
			"the key's next generation waits as if it had", "submitted_at", submitted.UTC().Format(time.RFC3339), "err", err)
		d.finishTurn(t, submitted.Add(unknownHold+d.Cooldown))
	default:
		d.finishTurn(t, time.Time{}) // refused: nothing started, no cooldown
	}
}

// follow reads a generation until it ends, then gives back the key's turn
// with the cooldown counted from the later of its submission and its end
// (the documentation does not say which counts).
func (d *Toolset) follow(c *bwapi.Client, t *turn, submitted time.Time, id string) {
	end := submitted.Add(maxFollow)
	interval := 2 * time.Second
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		g, err := c.Generation(ctx, id)
		cancel()
		now := time.Now()
		if err == nil && g.Status.Final() {
			d.finishTurn(t, later(submitted, now).Add(d.Cooldown))
			return
		}
		if now.After(end) {
			d.logger().Warn("a BetterWaifu generation did not end within the time this server follows it; its key's turn is given back",
				"generation_id", id)
			d.finishTurn(t, now.Add(d.Cooldown))
			return
		}
		select {
		case <-time.After(interval):
		case <-d.stop:
			return // shutting down: the in-memory line goes with the process
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// awaitTurn waits in the key's line until the call's turn comes, sending
// progress; it refuses at once when the turn cannot come before the
// deadline. Nothing is sent to BetterWaifu while waiting.
func (d *Toolset) awaitTurn(ctx context.Context, key string, deadline time.Time, progress *tools.Progress) (*turn, error) {
	ticket, err := d.Turns.Enter(ctx, key)
	if err != nil {
		return nil, tools.Failf(err, "The server could not queue the generation (%v); nothing was submitted. Try again in a moment.", err)
	}
	leave := func() {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), runs.LateWork)
		defer cancel()
		_ = d.Turns.Leave(lctx, key, ticket)
	}
	stop := d.runEngine().Stopping()
	tick := d.ProgressEvery
	if tick <= 0 {
		tick = 3 * time.Second
	}
	for {
		st, err := d.Turns.Try(ctx, key, ticket)
		if err != nil {
			leave()
			return nil, tools.Failf(err, "The server lost this call's place in line (%v); nothing was submitted. Try again.", err)
		}
		if st.Granted {
			return &turn{key: key, ticket: ticket}, nil
		}
		now := time.Now()
		if st.Earliest.After(deadline) || !now.Before(deadline) {
			leave()
			return nil, d.noSlotError(st, now)
		}
		progress.Send(ctx, lineMessage(st, now))
		next := min(tick, time.Until(deadline))
		if !st.FreeAt.IsZero() {
			next = min(next, time.Until(st.FreeAt))
		}
		timer := time.NewTimer(max(next, 10*time.Millisecond))
		select {
		case <-st.Changed:
		case <-timer.C:
		case <-stop:
			timer.Stop()
			leave()
			return nil, errShuttingDown
		case <-ctx.Done():
			timer.Stop()
			leave()
			return nil, tools.Failf(ctx.Err(), "The call ended while waiting for its turn; nothing was submitted and nothing was spent.")
		}
		timer.Stop()
	}
}

// lineMessage is the progress message of a caller in line.
func lineMessage(st state.TurnState, now time.Time) string {
	ahead := ""
	if st.Ahead > 0 {
		ahead = fmt.Sprintf(" (%s ahead in line)", plural(st.Ahead, "call", "calls"))
	}
	switch {
	case st.Busy:
		return "Waiting for the previous generation with this key to finish" + ahead
	case !st.FreeAt.IsZero():
		return fmt.Sprintf("Next generation slot in %s (BetterWaifu allows one generation per cooldown)%s", seconds(st.FreeAt.Sub(now)), ahead)
	}
	return "Waiting for the generation slot" + ahead
}

// noSlotError refuses a call whose turn cannot come within its wait.
func (d *Toolset) noSlotError(st state.TurnState, now time.Time) error {
	when := fmt.Sprintf("at %s UTC at the earliest (in about %s)", st.Earliest.UTC().Format("15:04:05"), seconds(st.Earliest.Sub(now)))
	why := fmt.Sprintf("BetterWaifu runs one generation at a time per key, %s apart", seconds(d.Cooldown))
	if st.Ahead > 0 {
		why += fmt.Sprintf(", and %s ahead of this one", plural(st.Ahead, "call is", "calls are"))
	}
	return &tools.Error{Expected: true, Msg: fmt.Sprintf("Nothing was submitted and nothing was spent: %s. This call's turn "+
		"would come %s, after its wait. Call betterwaifu_generate again then, or with a longer wait_seconds.", why, when)}
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%d s", int(math.Ceil(max(d, 0).Seconds())))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// waitFor turns wait_seconds into a wait within the configured bounds.
func (d *Toolset) waitFor(s *float64) time.Duration {
	switch {
	case s == nil:
		return d.WaitDefault
	case *s >= d.WaitMax.Seconds():
		return d.WaitMax
	case !(*s >= 0):
		return 0
	}
	return time.Duration(*s * float64(time.Second))
}

// GetGenerationInput is the argument of betterwaifu_get_generation.
type GetGenerationInput struct {
	GenerationID string   `json:"generation_id"`
	WaitSeconds  *float64 `json:"wait_seconds,omitempty"`
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
		Title:       "Get generation",
		Description: "Wait up to wait_seconds for a generation_id, then return its status and images.",
		Hints:       tools.ReadOnlyHints,
	}, func(ctx context.Context, in GetGenerationInput) (tools.Result[GenerationView], error) {
		c, tenant, err := d.client(ctx)
		if err != nil {
			return tools.Result[GenerationView]{}, err
		}
		deadline := time.Now().Add(d.waitFor(in.WaitSeconds))
		outcome, err := d.runEngine().Follow(ctx, upstream{c}, tenant, in.GenerationID, deadline, tools.NewProgress(ctx, d.logger()))
		if err != nil {
			return tools.Result[GenerationView]{}, engineError(err)
		}
		return d.render(outcome), nil
	})
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
		v.Seed = g.Output.Seed
		for _, im := range g.Output.Images {
			v.Images = append(v.Images, ImageView{URL: im.URL, ID: im.ID})
		}
	}
	var content []mcp.Content
	switch o.Job.Status {
	case runs.Succeeded:
		head := fmt.Sprintf("Generation %s succeeded: %s", g.ID, plural(len(v.Images), "image", "images"))
		if v.Seed != nil {
			head += fmt.Sprintf(" (seed %d)", *v.Seed)
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
	v.Message = fmt.Sprintf("The request that starts the generation got no answer, and BetterWaifu has no list of "+
		"generations to check, so whether it started (and was charged) cannot be known. Do not start it again at once: "+
		"look at your generations in the BetterWaifu web app first. This server holds this key's next generation until "+
		"about %s UTC in case it did start.", o.Submitted.Add(unknownHold+d.Cooldown).UTC().Format("15:04:05"))
	return tools.Result[GenerationView]{Value: v, Content: []mcp.Content{mcp.NewTextContent(v.Message)}, IsError: true}
}

func (d *Toolset) sandboxNote() string {
	if d.Sandbox {
		return " [sandbox: a simulated placeholder image; nothing real was spent]"
	}
	return ""
}
