package betterprompt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/schema"
	"github.com/bpmcp/bpmcp/state"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/preview"
	"github.com/bpmcp/bpmcp/tools/viewer"
)

// Limits on free-text arguments, so that no argument can be used to send
// megabytes upstream or into logs. A text input may be long (a pasted
// document), but not unbounded.
const (
	maxModelNameLength = 100
	maxRunOptions      = 32
	maxRunOptionLength = 200
	maxTextInputRunes  = 100_000
	maxImageURLLength  = 8192
)

// RunPromptInput is the argument of run_prompt.
type RunPromptInput struct {
	PromptVersionID string            `json:"prompt_version_id,omitempty"`
	PromptID        string            `json:"prompt_id,omitempty"`
	Inputs          json.RawMessage   `json:"inputs,omitempty"`
	RunModel        string            `json:"run_model,omitempty"`
	RunOptions      map[string]string `json:"run_options,omitempty"`
	WaitSeconds     *float64          `json:"wait_seconds,omitempty"`
	MaxCredits      *int              `json:"max_credits,omitempty"`
	InlineImages    *bool             `json:"inline_images,omitempty"`

	parsed *schema.Inputs // Inputs, parsed once by Check
	slug   string         // the slug to resolve, when PromptID is one
}

// Check validates the arguments that need no prompt configuration.
func (in *RunPromptInput) Check() error {
	switch {
	case in.PromptVersionID == "" && in.PromptID == "":
		return tools.Invalidf("give prompt_version_id (from get_prompt or search_prompts) or prompt_id (runs the latest version)")
	case in.PromptVersionID != "" && in.PromptID != "":
		return tools.Invalidf("give prompt_version_id or prompt_id, not both")
	case in.PromptVersionID != "":
		if err := checkID("prompt_version_id", in.PromptVersionID, "version ids come from get_prompt or search_prompts"); err != nil {
			return err
		}
	default:
		id, slug, err := promptIDArg(in.PromptID, "prompt ids come from search_prompts")
		if err != nil {
			return err
		}
		in.PromptID, in.slug = id, slug
	}
	// Mistakes that need no prompt configuration are refused before any
	// request: the inputs' shape, image URLs and Base64, sizes.
	parsed, err := schema.ParseInputs(in.Inputs, schema.Limits{MaxTextRunes: maxTextInputRunes, MaxURLBytes: maxImageURLLength})
	if err != nil {
		which := "prompt_version_id=" + in.PromptVersionID
		switch {
		case in.slug != "":
			which = "prompt_id=" + in.slug
		case in.PromptVersionID == "":
			which = "prompt_id=" + in.PromptID
		}
		return &tools.Error{Expected: true, Cause: err, Msg: "Invalid inputs for " + which + " (nothing was run, no credits spent):\n- " +
			strings.Join(fieldLines(err), "\n- ") + "\nCall get_prompt for this prompt's input_schema."}
	}
	in.parsed = parsed
	if len(in.RunModel) > maxModelNameLength {
		return tools.Invalidf("run_model is %d characters; model names are short, such as \"gpt-5\"", len(in.RunModel))
	}
	if len(in.RunOptions) > maxRunOptions {
		return tools.Invalidf("run_options has %d keys; models take a handful", len(in.RunOptions))
	}
	for k, v := range in.RunOptions {
		if len(k) > maxRunOptionLength || len(v) > maxRunOptionLength {
			return tools.Invalidf("run_options.%s is too long", tools.Excerpt(k, 40))
		}
	}
	if in.MaxCredits != nil && *in.MaxCredits < 0 {
		return tools.Invalidf("max_credits must be 0 or more")
	}
	return checkWait(in.WaitSeconds)
}

func checkWait(w *float64) error {
	if w != nil && (math.IsNaN(*w) || *w < 0) {
		return tools.Invalidf("wait_seconds must be 0 or more")
	}
	return nil
}

// RunView is the result of run_prompt and get_run.
type RunView struct {
	RunID           string `json:"run_id" jsonschema_description:"Pass to get_run to follow the run."`
	PromptVersionID string `json:"prompt_version_id"`
	Status          string `json:"status" jsonschema:"enum=queued,enum=running,enum=succeeded,enum=failed,enum=unconfirmed,enum=not_started"`
	// Confirmed is false when whether this call started a run, or which,
	// cannot be told: the runs that may be its own are in Candidates.
	Confirmed  bool            `json:"confirmed"`
	Candidates []CandidateView `json:"candidates,omitempty"`
	Outputs    []OutputView    `json:"outputs"`
	// Credits is absent until the run ends, so that a running run does not
	// read as free.
	Credits *int   `json:"credits,omitempty" jsonschema_description:"Credits the run consumed; absent until it ends."`
	Message string `json:"message,omitempty" jsonschema_description:"What to do next, when the run is not finished."`
	// InputsSent are the inputs run_prompt sent, after checking filled in
	// defaults and joined choices (Base64 images by their size only).
	InputsSent *jsonObject `json:"inputs_sent,omitempty"`
}

// CandidateView is a run that may be the one a call started, when that
// cannot be told for certain.
type CandidateView struct {
	RunID     string `json:"run_id"`
	CreatedAt string `json:"created_at"`
	Status    string `json:"status"`
}

// JSONSchema declares a candidate as a plain object: its three fields are
// named in the result's text, and tools/list stays small (it goes into
// every agent's context).
func (CandidateView) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

// JSONSchema declares an output as a plain object, to keep tools/list small
// (it goes into every agent's context); its fields are in the README.
func (OutputView) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

// OutputView is one output of a run: text, or the URL of an image or video.
type OutputView struct {
	Type      string `json:"type" jsonschema:"enum=text,enum=image,enum=video,enum=error"`
	Data      string `json:"data" jsonschema_description:"The text, or the URL of the image or video."`
	MimeType  string `json:"mime_type,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty" jsonschema_description:"About when a media URL stops working (24 h after generation)."`
}

// runInputSchema is run_prompt's input schema, written by hand: inputs is
// described generically here and precisely by get_prompt's input_schema.
func runInputSchema(defaultWait time.Duration) *jsonschema.Schema {
	props := jsonschema.NewProperties()
	props.Set("prompt_version_id", &jsonschema.Schema{Type: "string", Description: "From get_prompt. Give this or prompt_id."})
	props.Set("prompt_id", &jsonschema.Schema{Type: "string", Description: "Runs the latest version instead."})
	props.Set("inputs", inputsSchema())
	props.Set("run_model", &jsonschema.Schema{Type: "string", Description: "Model override; default: the prompt's."})
	props.Set("run_options", &jsonschema.Schema{Type: "object", AdditionalProperties: &jsonschema.Schema{Type: "string"},
		Description: "See get_prompt's run_options_schema."})
	props.Set("wait_seconds", &jsonschema.Schema{Type: "number", Minimum: json.Number("0"),
		Description: fmt.Sprintf("Seconds to wait (default %d); then use get_run.", int(defaultWait.Seconds()))})
	props.Set("max_credits", &jsonschema.Schema{Type: "integer", Minimum: json.Number("0"), Description: "Refused if the estimate is higher."})
	props.Set("inline_images", inlineImagesSchema())
	return &jsonschema.Schema{Type: "object", Properties: props, AdditionalProperties: jsonschema.FalseSchema}
}

func inputsSchema() *jsonschema.Schema {
	props := jsonschema.NewProperties()
	// textInputs' values are strings, or arrays of strings for a
	// multi-choice; get_prompt's input_schema says which, and the server
	// checks them, so the generic schema leaves them open (tools/list goes
	// into every agent's context).
	props.Set("textInputs", &jsonschema.Schema{Type: "object", Description: "Name → value (array for multi-choice)."})
	props.Set("imageInputs", &jsonschema.Schema{
		Type:        "array",
		Description: "In order: {type:url,url} or {type:base64,base64}.",
		Items:       &jsonschema.Schema{Type: "object"},
	})
	return &jsonschema.Schema{Type: "object", Properties: props,
		Description: "See get_prompt's input_schema."}
}

func runPrompt(d *Toolset) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:  "run_prompt",
		UI:    viewer.URI,
		Title: "Run prompt (spends credits)",
		Description: "Run a published prompt. Spends credits; cannot be cancelled. inputs (get_prompt's input_schema) are " +
			"checked first. Waits up to wait_seconds for outputs (text, image/video URLs), else returns a run_id.",
		Hints:       tools.Hints{ReadOnly: false, Destructive: false, Idempotent: false, OpenWorld: true},
		InputSchema: runInputSchema(d.Wait.Default),
		TaskSupport: mcp.TaskSupportOptional,
	}, func(ctx context.Context, in RunPromptInput) (tools.Result[RunView], error) {
		// The wait counts from the call's start: looking the prompt up is
		// part of the time the host allows.
		wait := d.waitFor(ctx, in.WaitSeconds)
		deadline := time.Now().Add(wait)
		if tools.IsTaskCall(ctx) {
			var cancel context.CancelFunc
			ctx, cancel = d.taskContext(ctx)
			defer cancel()
		}
		c, tenant, err := d.client(ctx)
		if err != nil {
			return tools.Result[RunView]{}, err
		}
		if in.slug != "" {
			if in.PromptID, err = d.resolveSlug(ctx, c, in.slug); err != nil {
				return tools.Result[RunView]{}, err
			}
		}
		pc, err := d.promptVersion(ctx, c, tenant, in.PromptID, in.PromptVersionID)
		if err != nil {
			return tools.Result[RunView]{}, err
		}
		up := upstream{c}
		call := runs.Call{Tenant: tenant, Kind: pc.pv.PromptVersionID, Key: tools.CallKey(ctx)}
		progress := tools.NewProgress(ctx, d.logger())
		release, replayed, err := d.holdOrRejoin(ctx, up, call, wait, deadline, progress)
		if err != nil || replayed != nil {
			return derefResult(replayed), err
		}
		defer release()
		req, err := d.buildRunRequest(ctx, c, pc, in)
		if err != nil {
			return tools.Result[RunView]{}, err
		}
		sp, err := d.checkSpend(ctx, c, tenant, pc.pv, in.MaxCredits)
		if err != nil {
			return tools.Result[RunView]{}, err
		}
		var posted atomic.Bool
		start := func(ctx context.Context) (*runs.Job, error) {
			run, err := c.CreateRun(ctx, req)
			if err != nil {
				return nil, err
			}
			posted.Store(true)
			d.Metrics.RunStarted(apiName)
			d.started(c, sp, run.RunID)
			job := jobOf(run)
			return &job, nil
		}
		waited := d.Metrics.Waiting(apiName)
		outcome, err := d.runEngine().Run(ctx, up, call, start, deadline, progress)
		waited()
		// The wait is over: its slot goes back while the budget settles
		// (on a shared store, two round trips side by side).
		var released sync.WaitGroup
		released.Go(release)
		d.afterRun(ctx, c, sp, outcome, err)
		released.Wait()
		if err == nil && !outcome.Joined && outcome.Job != nil && !posted.Load() {
			d.Metrics.RunStarted(apiName) // its id came from a 504 or the run list
		}
		d.countEnd(outcome)
		if err != nil {
			return tools.Result[RunView]{}, engineError(err)
		}
		res := withCapNotes(withInputsSent(d.renderOutcome(outcome), in.Inputs, req.Inputs), sp)
		return d.withPreviews(ctx, res, in.InlineImages), nil
	})
}

// holdOrRejoin takes a wait slot for a new run_prompt call, or answers a
// replayed one with the run its first delivery started (replayed not nil),
// before anything is checked again: checks that depend on what the server
// has learnt since must not call a paid run refused. A replay is answered
// without waiting when no slot is free; a new call is then refused.
func (d *Toolset) holdOrRejoin(ctx context.Context, up upstream, call runs.Call, wait time.Duration, deadline time.Time,
	progress *tools.Progress) (release func(), replayed *tools.Result[RunView], err error) {
	release, ok, err := d.acquireWait(ctx, call.Tenant, wait)
	if errors.Is(err, state.ErrUnavailable) {
		return nil, nil, err // worded by describeError: the store is down, nothing was run or spent
	}
	if err != nil {
		return nil, nil, tools.Failf(err, "The server could not count the calls waiting with this API key "+
			"(%v); nothing was run. Try again in a moment.", err)
	}
	rejoinBy := deadline
	if !ok {
		release, rejoinBy = func() {}, time.Now()
	}
	outcome, joined, err := d.runEngine().Rejoin(ctx, up, call, rejoinBy, progress)
	switch {
	case err != nil:
		release()
		return nil, nil, engineError(err)
	case joined:
		release()
		r := d.renderOutcome(outcome)
		return nil, &r, nil
	case !ok:
		return nil, nil, tools.Failf(nil, "%d calls are already waiting for runs with this API key, the most "+
			"this server allows; nothing was run. Wait for some to finish (get_run), then try again.", d.MaxWaitsPerKey)
	}
	return release, nil, nil
}

// inlineImagesSchema is the inline_images argument.
func inlineImagesSchema() *jsonschema.Schema {
	return &jsonschema.Schema{Type: "boolean", Description: "Embed image previews."}
}

// withPreviews adds previews of a run's images to its result when the call
// or the server asks for them (hosts that show image content but not
// links).
func (d *Toolset) withPreviews(ctx context.Context, res tools.Result[RunView], ask *bool) tools.Result[RunView] {
	if !preview.Wanted(ask, d.InlinePreviews) {
		return res
	}
	var urls []string
	for _, o := range res.Value.Outputs {
		if o.Type == string(bpapi.OutputImage) {
			urls = append(urls, o.Data)
		}
	}
	res.Content = preview.Add(ctx, res.Content, urls)
	return res
}

func derefResult(r *tools.Result[RunView]) tools.Result[RunView] {
	if r == nil {
		return tools.Result[RunView]{}
	}
	return *r
}

// apiName labels BetterPrompt's metrics.
const apiName = "betterprompt"

// countEnd counts, once per run, how it ended and what it charged.
func (d *Toolset) countEnd(o runs.Outcome) {
	switch {
	case o.Job != nil && o.Job.Status.Final():
		run := runOf(o.Job)
		credits := -1
		if run.Tokens != nil || run.Credits != nil {
			credits = run.Cost()
		}
		d.Metrics.RunEnded(apiName, o.Job.ID, string(o.Job.Status), credits)
	case o.Job == nil && o.State == runs.StateNotStarted:
		d.Metrics.RunEnded(apiName, o.Handle, "not_started", 0)
	}
}

// withInputsSent adds to a run_prompt result the inputs that were sent,
// and says in its text what checking them changed, so that an agent sees
// what it paid for.
func withInputsSent(r tools.Result[RunView], given json.RawMessage, sent bpapi.RunInputs) tools.Result[RunView] {
	r.Value.InputsSent = &jsonObject{sentView(sent)}
	if notes := normalisations(given, sent); len(notes) > 0 {
		r.Content = append(r.Content, mcp.NewTextContent("Inputs as sent, after checking:\n- "+strings.Join(notes, "\n- ")))
	}
	return r
}

// promptVersion finds the version to run: the given one (cached, since
// published versions never change) or the prompt's latest.
//
// The cache answers only a caller whose key the API accepted recently: a
// caller with an invalid key must not learn which prompts other tenants ran.
func (d *Toolset) promptVersion(ctx context.Context, c *bpapi.Client, tenant, promptID, versionID string) (*promptConfig, error) {
	if versionID != "" {
		if pc := d.configs.get(versionID); pc != nil && d.verified.ok(tenant) {
			return pc, nil
		}
		pv, err := c.GetPromptVersion(ctx, versionID)
		if err != nil {
			if bpapi.IsNotFound(err) {
				return nil, tools.Failf(err, "No published prompt version has id %s. Version ids come from get_prompt "+
					"(prompt_version_id); a prompt_id goes in the prompt_id argument instead.", versionID)
			}
			return nil, err
		}
		d.verified.mark(tenant)
		return d.configs.put(pv), nil
	}
	pv, err := c.GetPrompt(ctx, promptID, "")
	if err != nil {
		if bpapi.IsNotFound(err) {
			return nil, tools.Failf(err, "No published prompt has id %s. Prompt ids come from search_prompts.", promptID)
		}
		return nil, err
	}
	d.verified.mark(tenant)
	return d.configs.put(pv), nil
}

// buildRunRequest validates everything locally, so that a run the API would
// reject costs nothing and names the field to fix.
func (d *Toolset) buildRunRequest(ctx context.Context, c *bpapi.Client, pc *promptConfig, in RunPromptInput) (bpapi.CreateRunRequest, error) {
	if pc.err != nil {
		return bpapi.CreateRunRequest{}, pc.err
	}
	pv, cfg := pc.pv, pc.cfg
	if in.parsed == nil { // a caller that skipped Check: parse now
		if err := in.Check(); err != nil {
			return bpapi.CreateRunRequest{}, err
		}
	}
	inputs, err := cfg.ValidateInputs(in.parsed)
	if err != nil {
		return bpapi.CreateRunRequest{}, inputsError(pv, err)
	}
	req := bpapi.CreateRunRequest{PromptVersionID: pv.PromptVersionID, Inputs: inputs, RunModel: in.RunModel, RunOptions: in.RunOptions}
	if in.RunModel == "" && len(in.RunOptions) == 0 {
		return req, nil
	}
	facts := d.facts.get(pv.PromptID).forVersion(pv.PromptVersionID)
	if in.RunModel == "" {
		return req, d.checkDefaultRunOptions(ctx, c, pv, facts, in.RunOptions)
	}
	res, err := d.resourcesFor(ctx, c)
	if err != nil {
		return req, err
	}
	model := res.FindModel(in.RunModel)
	switch {
	case model == nil:
		return req, tools.Invalidf("run_model %s is not a BetterPrompt model; leave it out to use the prompt's own model, or use one of: %s",
			tools.Excerpt(in.RunModel, 60), modelNames(res, facts.Modality))
	case facts.Modality != "" && model.Modality != facts.Modality:
		return req, tools.Invalidf("run_model %s is a %s model and %q is a %s prompt; leave run_model out to use the prompt's own model, or use one of: %s",
			model.Model, model.Modality, pv.Title, facts.Modality, modelNames(res, facts.Modality))
	}
	if err := cfg.ValidateRunOptions(model, in.RunOptions); err != nil {
		return req, tools.Invalidf("%v", prefixFields(err, "run_options"))
	}
	return req, nil
}

// checkDefaultRunOptions checks run options given without a run_model
// against the prompt's own model, or, when BetterPrompt does not name it,
// against every model of the prompt's type. When neither is known (or the
// models cannot be listed) the API decides.
func (d *Toolset) checkDefaultRunOptions(ctx context.Context, c *bpapi.Client, pv *bpapi.PromptVersion, facts promptFacts, opts map[string]string) error {
	if facts.Modality == "" && facts.Model == "" {
		facts = d.factsFor(ctx, c, pv).forVersion(pv.PromptVersionID)
	}
	if facts.Modality == "" && facts.Model == "" {
		return nil
	}
	res, err := d.resourcesFor(ctx, c)
	if err != nil {
		d.logger().Debug("run_prompt: run options not checked", "err", briefError(err))
		return nil
	}
	if facts.Model != "" && res.FindModel(facts.Model) == nil {
		return nil // a model /v1/resources does not list: the API decides
	}
	models, exact := runOptionModels(res, facts)
	if problems := checkRunOptions(opts, models, exact, facts.Modality); len(problems) > 0 {
		return tools.Invalidf("Invalid run options for %q (nothing was run, no credits spent):\n- %s\nCall get_prompt with prompt_id=%s "+
			"to see run_options_schema, or leave run_options out to use the prompt's own.", pv.Title, strings.Join(problems, "\n- "), pv.PromptID)
	}
	return nil
}

// inputsError turns a schema validation failure into an argument error that
// names every field and points back at get_prompt.
func inputsError(pv *bpapi.PromptVersion, err error) error {
	return &tools.Error{Expected: true, Cause: err, Msg: fmt.Sprintf(
		"Invalid inputs for %q (nothing was run, no credits spent):\n- %s\nCall get_prompt with prompt_id=%s to see the input_schema.",
		pv.Title, strings.Join(fieldLines(err), "\n- "), pv.PromptID)}
}

// fieldLines lists a validation error's problems, each naming its field
// from the tool argument (inputs.textInputs.tone: …).
func fieldLines(err error) []string {
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		return []string{"inputs: " + err.Error()}
	}
	lines := make([]string, len(ve.Errors))
	for i, fe := range ve.Errors {
		switch {
		case fe.Field == "" || fe.Field == "inputs" || strings.HasPrefix(fe.Field, "inputs."):
			lines[i] = fe.Error()
		default:
			lines[i] = "inputs." + fe.Error()
		}
	}
	return lines
}

func prefixFields(err error, prefix string) string {
	var ve *schema.ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	parts := make([]string, len(ve.Errors))
	for i, fe := range ve.Errors {
		f := fe.Field
		f = strings.TrimPrefix(f, "runOptions")
		f = strings.TrimPrefix(f, ".")
		parts[i] = prefix + "." + f + ": " + fe.Message
	}
	return strings.Join(parts, "; ")
}

// modelNames lists the models of modality ("" for all), with their
// modalities.
func modelNames(res *bpapi.Resources, modality string) string {
	names := make([]string, 0, len(res.Models))
	for _, m := range res.Models {
		if modality == "" || m.Modality == modality {
			names = append(names, fmt.Sprintf("%q (%s)", m.Model, m.Modality))
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// waitFor turns wait_seconds into a wait within the configured bounds. A
// call made as an MCP task has no host timeout to respect, so it waits the
// longest allowed.
func (d *Toolset) waitFor(ctx context.Context, seconds *float64) time.Duration {
	limit := d.Wait.Max
	if ttl := tools.TaskTTL(ctx); ttl > 0 {
		// A task is forgotten by mcp-go when its TTL expires: answer before.
		limit = min(limit, max(ttl-5*time.Second, ttl/2))
	}
	switch {
	case seconds == nil && tools.IsTaskCall(ctx):
		return limit
	case seconds == nil:
		return min(d.Wait.Default, limit)
	case !(*seconds >= 0): // negative or NaN; Check refuses both, this is defence in depth
		return 0
	case *seconds >= limit.Seconds(): // also keeps the conversion below from overflowing
		return limit
	}
	return time.Duration(*seconds * float64(time.Second))
}

// taskContext detaches a task call from the request that created it: mcp-go
// runs a task on that request's context, which ends as soon as the task id
// has been answered. The wait must outlive it, but not the server: shutdown
// ends it, so the run id is logged before the process exits.
func (d *Toolset) taskContext(ctx context.Context) (context.Context, context.CancelFunc) {
	detached, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := d.runEngine().Stopping()
	go func() {
		select {
		case <-stop:
			cancel()
		case <-detached.Done():
		}
	}()
	return detached, cancel
}

// GetRunInput is the argument of get_run.
type GetRunInput struct {
	RunID        string   `json:"run_id" jsonschema_description:"From run_prompt."`
	WaitSeconds  *float64 `json:"wait_seconds,omitempty" jsonschema:"minimum=0" jsonschema_description:"Seconds to wait (default %d; 0 = answer now)."`
	InlineImages *bool    `json:"inline_images,omitempty" jsonschema_description:"Embed image previews."`
}

// Check validates the arguments before anything is sent.
func (in *GetRunInput) Check() error {
	if err := checkID("run_id", in.RunID, "run ids come from run_prompt"); err != nil {
		return err
	}
	return checkWait(in.WaitSeconds)
}

func getRun(d *Toolset) server.ServerTool {
	in := tools.ReflectSchema[GetRunInput]()
	if p, ok := in.Properties.Get("wait_seconds"); ok {
		p.Description = fmt.Sprintf(p.Description, int(d.Wait.Default.Seconds()))
	}
	return tools.New(&d.adapter, tools.Spec{
		InputSchema: in,
		Name:        "get_run",
		UI:          viewer.URI,
		Title:       "Get run result",
		Description: "Wait up to wait_seconds for a run_id; return its status and outputs (URLs last 24 h). " +
			"Call again while it runs.",
		Hints: tools.ReadOnlyHints,
	}, func(ctx context.Context, in GetRunInput) (tools.Result[RunView], error) {
		c, tenant, err := d.client(ctx)
		if err != nil {
			return tools.Result[RunView]{}, err
		}
		wait := d.waitFor(ctx, in.WaitSeconds)
		if release, ok, err := d.acquireWait(ctx, tenant, wait); ok {
			defer release()
		} else {
			if err != nil {
				d.logger().Warn("the wait slots could not be read; answering get_run without waiting", "err", err)
			}
			wait = 0 // too many waits for this key: answer with the current state
		}
		progress := tools.NewProgress(ctx, d.logger())
		waited := d.Metrics.Waiting(apiName)
		outcome, err := d.runEngine().Follow(ctx, upstream{c}, tenant, in.RunID, time.Now().Add(wait), progress)
		waited()
		if err != nil {
			return tools.Result[RunView]{}, engineError(err)
		}
		d.countEnd(outcome)
		overCap := d.settleFollowed(ctx, in.RunID, outcome)
		res := d.withPreviews(ctx, d.renderOutcome(outcome), in.InlineImages)
		if overCap != "" {
			res.Value.Message = strings.TrimSpace(res.Value.Message + " " + overCap)
			res.Content = append(res.Content, mcp.NewTextContent(overCap))
		}
		if outcome.Job != nil && !strings.EqualFold(outcome.Job.ID, in.RunID) {
			// The agent followed a temporary handle: from now on the run's
			// own id is the one to use (it survives a restart of this server).
			note := fmt.Sprintf("run_id %s was a temporary id for this run; its own id is %s: use that one from now on.", in.RunID, outcome.Job.ID)
			res.Value.Message = strings.TrimSpace(res.Value.Message + " " + note)
			res.Content = append(res.Content, mcp.NewTextContent(note))
		}
		return res, nil
	})
}
