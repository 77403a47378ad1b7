package betterprompt

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/schema"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// maxQueryLength is the API's limit on a search query.
const maxQueryLength = 200

// SearchInput is the argument of search_prompts.
type SearchInput struct {
	Query    string `json:"query" jsonschema:"minLength=1,maxLength=200" jsonschema_description:"Keywords, e.g. 'cold email'."`
	Modality string `json:"modality,omitempty" jsonschema:"enum=text,enum=image,enum=video" jsonschema_description:"Only this type; video needs it."`
}

// Check validates the arguments before anything is sent.
func (in *SearchInput) Check() error {
	in.Query = strings.TrimSpace(in.Query)
	switch n := utf8.RuneCountInString(in.Query); {
	case n == 0:
		return tools.Invalidf("query is required: a few words describing the task, such as \"cold email\"")
	case n > maxQueryLength:
		return tools.Invalidf("query is %d characters; the limit is %d. Use a few keywords", n, maxQueryLength)
	}
	switch in.Modality {
	case "", "text", "image", "video":
	default:
		return tools.Invalidf("modality must be \"text\", \"image\" or \"video\" (or left out for text and image), got %s", tools.Excerpt(in.Modality, 20))
	}
	return nil
}

// SearchOutput is the result of search_prompts.
type SearchOutput struct {
	Prompts []PromptRow `json:"prompts"`
}

// PromptRow is one prompt found by search_prompts.
type PromptRow struct {
	PromptID         string `json:"prompt_id"`
	PromptVersionID  string `json:"prompt_version_id"`
	Title            string `json:"title"`
	Description      string `json:"description"`
	Slug             string `json:"slug"`
	Modality         string `json:"modality" jsonschema:"enum=text,enum=image,enum=video,enum=unknown"`
	EstimatedCredits *int   `json:"estimated_credits,omitempty" jsonschema_description:"Absent when the search does not say (video)."`
	Uses             int    `json:"uses"`
	UpVotes          int    `json:"up_votes"`
	PublishedAt      string `json:"published_at"`
}

// JSONSchema declares a row as a plain object: its fields are named in the
// result's text and the README, and tools/list stays small (it goes into
// every agent's context).
func (PromptRow) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

func searchPrompts(d *Toolset) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:  "search_prompts",
		Title: "Search prompts",
		Description: "Search BetterPrompt's published prompts: prompt_id, modality and estimated_credits. " +
			"Next: get_prompt.",
		Hints: tools.ReadOnlyHints,
	}, func(ctx context.Context, in SearchInput) (tools.Result[SearchOutput], error) {
		c, _, err := d.client(ctx)
		if err != nil {
			return tools.Result[SearchOutput]{}, err
		}
		if in.Modality == "video" {
			// The documented search leaves video out: only the CLI's
			// route finds it.
			return d.searchVideo(ctx, c, in.Query)
		}
		rows, err := c.SearchPrompts(ctx, in.Query)
		if err != nil {
			return tools.Result[SearchOutput]{}, err
		}
		out := SearchOutput{Prompts: make([]PromptRow, 0, len(rows))}
		for _, r := range rows {
			d.facts.learn(r.PromptID, factsOfRow(r))
			modality := string(r.Modality)
			if in.Modality != "" && modality != in.Modality {
				continue
			}
			if modality == "" {
				modality = "unknown"
			}
			out.Prompts = append(out.Prompts, PromptRow{
				PromptID: r.PromptID, PromptVersionID: r.PromptVersionID, Title: r.Title,
				Description: r.Description, Slug: r.Slug, Modality: modality,
				EstimatedCredits: r.EstimatedCredits, Uses: r.Uses, UpVotes: r.UpVotes, PublishedAt: r.PublishedAt,
			})
		}
		return tools.Text(out, renderSearch(in.Query, out)), nil
	})
}

// searchVideo searches video prompts through the CLI's undocumented skills
// route; its rows say neither the price nor the use counts.
func (d *Toolset) searchVideo(ctx context.Context, c *bpapi.Client, query string) (tools.Result[SearchOutput], error) {
	if utf8.RuneCountInString(query) < 3 {
		return tools.Result[SearchOutput]{}, tools.Invalidf("a video search needs a query of at least 3 characters")
	}
	rows, err := c.SearchSkills(ctx, query, "video")
	if err != nil {
		if bpapi.IsUnauthorized(err) || bpapi.IsPaymentRequired(err) {
			return tools.Result[SearchOutput]{}, err
		}
		return tools.Result[SearchOutput]{}, tools.Failf(err, "Video prompts are searched through a route BetterPrompt does not "+
			"document, which did not answer as expected (%s). Reach a video prompt with get_prompt and its id, slug or page link.", briefError(err))
	}
	out := SearchOutput{Prompts: make([]PromptRow, 0, len(rows))}
	for _, r := range rows {
		f := d.facts.learnSkill(r, "video")
		out.Prompts = append(out.Prompts, PromptRow{PromptID: r.SkillID, PromptVersionID: r.LatestPromptVersionID, Title: r.Title,
			Description: r.Description, Slug: r.Name, Modality: "video", EstimatedCredits: f.EstimatedCredits})
	}
	return tools.Text(out, renderSearch(query, out)), nil
}

func renderSearch(query string, out SearchOutput) string {
	if len(out.Prompts) == 0 {
		return fmt.Sprintf("No published prompt matches %q. Try other or fewer words; video prompts are found only with "+
			"modality \"video\". A prompt search does not find is reached with get_prompt and its id, slug or the link to "+
			"its page on betterprompt.me (ask the user for it).", query)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q:\n", plural(len(out.Prompts), "prompt matches", "prompts match"), query)
	for i, p := range out.Prompts {
		if p.EstimatedCredits == nil {
			fmt.Fprintf(&b, "%d. %s [%s, price not listed] prompt_id=%s\n", i+1, p.Title, p.Modality, p.PromptID)
		} else {
			fmt.Fprintf(&b, "%d. %s [%s, ~%d credits, %d uses] prompt_id=%s\n", i+1, p.Title, p.Modality, *p.EstimatedCredits, p.Uses, p.PromptID)
		}
		if p.Description != "" {
			fmt.Fprintf(&b, "   %s\n", oneLine(p.Description, 160))
		}
	}
	b.WriteString("Next: call get_prompt with a prompt_id to see its inputs.")
	return b.String()
}

// GetPromptInput is the argument of get_prompt.
type GetPromptInput struct {
	PromptID  string `json:"prompt_id" jsonschema_description:"From search_prompts, or a slug or page link."`
	VersionID string `json:"version_id,omitempty" jsonschema_description:"A prompt_version_id; default: the latest."`

	slug string // the slug to resolve, when PromptID is one
}

// Check validates the arguments before anything is sent.
func (in *GetPromptInput) Check() error {
	id, slug, err := promptIDArg(in.PromptID, "prompt ids come from search_prompts")
	if err != nil {
		return err
	}
	in.PromptID, in.slug = id, slug
	if in.VersionID != "" {
		return checkID("version_id", in.VersionID, "version ids come from search_prompts (prompt_version_id)")
	}
	return nil
}

// GetPromptOutput is the result of get_prompt. The price, type, model and
// run options are absent when BetterPrompt's answers did not say them.
type GetPromptOutput struct {
	PromptID         string `json:"prompt_id"`
	PromptVersionID  string `json:"prompt_version_id"`
	Title            string `json:"title"`
	Modality         string `json:"modality,omitempty"`
	EstimatedCredits *int   `json:"estimated_credits,omitempty"`
	// Model and DefaultRunOptions are the prompt's own, used when run_prompt
	// gives no run_model or run_options.
	Model             string      `json:"model,omitempty"`
	DefaultRunOptions *jsonObject `json:"default_run_options,omitempty"`
	// RunOptionsSchema is the JSON Schema of run_prompt's run_options.
	RunOptionsSchema *jsonObject `json:"run_options_schema,omitempty"`
	PublishedAt      string      `json:"published_at"`
	ImageCount       int         `json:"image_count"`
	InputSchema      jsonObject  `json:"input_schema" jsonschema_description:"JSON Schema of run_prompt's inputs argument for this prompt."`
	ExampleInputs    jsonObject  `json:"example_inputs" jsonschema_description:"A valid inputs object to adapt."`
}

func getPrompt(d *Toolset) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:  "get_prompt",
		Title: "Get prompt inputs",
		Description: "Read a prompt before running it: price (estimated_credits), modality, input_schema (run_prompt's " +
			"inputs) with example_inputs, run_options_schema.",
		Hints: tools.ReadOnlyHints,
	}, func(ctx context.Context, in GetPromptInput) (tools.Result[GetPromptOutput], error) {
		c, _, err := d.client(ctx)
		if err != nil {
			return tools.Result[GetPromptOutput]{}, err
		}
		if in.slug != "" {
			if in.PromptID, err = d.resolveSlug(ctx, c, in.slug); err != nil {
				return tools.Result[GetPromptOutput]{}, err
			}
		}
		pv, err := c.GetPrompt(ctx, in.PromptID, in.VersionID)
		if err != nil {
			return tools.Result[GetPromptOutput]{}, err
		}
		pc := d.configs.put(pv)
		if pc.err != nil {
			return tools.Result[GetPromptOutput]{}, pc.err
		}
		cfg := pc.cfg
		f := d.factsFor(ctx, c, pv).forVersion(pv.PromptVersionID)
		out := GetPromptOutput{
			PromptID: pv.PromptID, PromptVersionID: pv.PromptVersionID, Title: pv.Title, PublishedAt: pv.PublishedAt,
			Modality: f.Modality, EstimatedCredits: f.EstimatedCredits, Model: f.Model,
			ImageCount:    len(cfg.Images),
			InputSchema:   jsonObject{cfg.InputSchema(nil)},
			ExampleInputs: jsonObject{cfg.Example()},
		}
		if f.DefaultRunOptions != nil {
			out.DefaultRunOptions = &jsonObject{f.DefaultRunOptions}
		}
		var models []bpapi.Model
		if f.Modality != "" || f.Model != "" {
			res, err := d.resourcesFor(ctx, c)
			if err != nil {
				d.logger().Debug("get_prompt: no run options", "err", briefError(err))
			}
			var exact bool
			if models, exact = runOptionModels(res, f); len(models) > 0 {
				out.RunOptionsSchema = &jsonObject{runOptionsSchema(models, exact, f.Modality)}
			}
		}
		return tools.Text(out, renderPrompt(out, cfg, models)), nil
	})
}

// parseConfig reads a version's input configuration, explaining a failure.
func parseConfig(pv *bpapi.PromptVersion) (*schema.Config, error) {
	cfg, err := schema.Parse(pv.InputConfig())
	if err != nil {
		return nil, tools.Failf(err, "The input configuration of prompt version %s could not be read (%v). "+
			"This prompt cannot be run through this server yet; please report it.", pv.PromptVersionID, err)
	}
	return cfg, nil
}

func renderPrompt(out GetPromptOutput, cfg *schema.Config, models []bpapi.Model) string {
	var b strings.Builder
	b.WriteString(priceLine(out) + "\n")
	fmt.Fprintf(&b, "%s (prompt_version_id=%s, published %s)\n", out.Title, out.PromptVersionID, out.PublishedAt)
	if len(cfg.Variables) == 0 {
		b.WriteString("Text inputs: none.\n")
	} else {
		b.WriteString("Text inputs (inputs.textInputs):\n")
		for _, v := range cfg.Variables {
			b.WriteString("- " + describeVariable(v) + "\n")
		}
	}
	if len(cfg.Images) == 0 {
		b.WriteString("Images: none.\n")
	} else {
		fmt.Fprintf(&b, "Images (inputs.imageInputs): exactly %d, in this order, each {\"type\":\"url\",\"url\":\"https://…\"} or {\"type\":\"base64\",\"base64\":\"…\"}:\n", len(cfg.Images))
		for i, im := range cfg.Images {
			fmt.Fprintf(&b, "%d. %s\n", i+1, orDash(oneLine(im.Description, 200)))
		}
	}
	example, _ := json.Marshal(out.ExampleInputs.v)
	fmt.Fprintf(&b, "Example inputs: %s\n", example)
	b.WriteString(runOptionsText(out, models))
	fmt.Fprintf(&b, "Next: call run_prompt with prompt_version_id=%s and inputs (it spends credits).", out.PromptVersionID)
	return b.String()
}

func describeVariable(v schema.Variable) string {
	var b strings.Builder
	b.WriteString(v.Key)
	switch {
	case v.Kind == schema.KindSelect && v.Multiple:
		b.WriteString(" (required; choose ")
		switch lo, hi := v.ItemBounds(); {
		case hi == lo:
			fmt.Fprintf(&b, "exactly %d", lo)
		case hi >= 0:
			fmt.Fprintf(&b, "%d to %d", lo, hi)
		case lo != 1:
			fmt.Fprintf(&b, "at least %d", lo)
		default:
			b.WriteString("one or more")
		}
		b.WriteString(", as a JSON array of values)")
	case v.Kind == schema.KindSelect:
		b.WriteString(" (required; choose one)")
	case v.Required():
		b.WriteString(" (required")
		if v.AllowEmpty {
			b.WriteString(", may be \"\"")
		}
		b.WriteString(")")
	default:
		if def, ok := v.Default(); ok && def != "" {
			fmt.Fprintf(&b, " (optional, default %q)", oneLine(def, 80))
		} else {
			b.WriteString(" (optional)")
		}
	}
	if v.Description != "" {
		b.WriteString(": " + oneLine(v.Description, 200))
	}
	if v.Kind == schema.KindSelect {
		opts := make([]string, len(v.Options))
		for i, o := range v.Options {
			if o.Label != "" && o.Label != o.Value {
				opts[i] = fmt.Sprintf("%q (%s)", o.Value, o.Label)
			} else {
				opts[i] = fmt.Sprintf("%q", o.Value)
			}
		}
		b.WriteString(". Values: " + strings.Join(opts, ", "))
	}
	return b.String()
}

// CreditsInput is the (empty) argument of get_credits.
type CreditsInput struct{}

// CreditsOutput is the result of get_credits.
type CreditsOutput struct {
	Credits int `json:"credits" jsonschema_description:"Credits remaining on the account."`
	// Budget is this server's spending budget for the key, when one is set.
	Budget *spending.View `json:"budget,omitempty"`
}

func getCredits(d *Toolset) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:        "get_credits",
		Title:       "Get credit balance",
		Description: "BetterPrompt credits left (run_prompt spends them).",
		Hints:       tools.ReadOnlyHints,
	}, func(ctx context.Context, _ CreditsInput) (tools.Result[CreditsOutput], error) {
		c, tenant, err := d.client(ctx)
		if err != nil {
			return tools.Result[CreditsOutput]{}, err
		}
		n, err := c.Credits(ctx)
		if err != nil {
			return tools.Result[CreditsOutput]{}, err
		}
		out := CreditsOutput{Credits: n}
		text := fmt.Sprintf("The account has %d credits.", n)
		if budget, err := d.Spending.Report(ctx, tenant); err != nil {
			// A read keeps working without the shared store.
			text += " The spending budget cannot be read just now (the shared state store is unavailable)."
		} else {
			out.Budget = budget
			text += budget.Text()
		}
		return tools.Text(out, text), nil
	})
}

// jsonObject carries an arbitrary JSON object in a result while declaring
// {"type":"object"} in the output schema.
type jsonObject struct{ v any }

// MarshalJSON implements json.Marshaler.
func (o jsonObject) MarshalJSON() ([]byte, error) { return json.Marshal(o.v) }

// UnmarshalJSON implements json.Unmarshaler (a client, or a typed tool,
// reading a result back).
func (o *jsonObject) UnmarshalJSON(b []byte) error { return json.Unmarshal(b, &o.v) }

// JSONSchema implements the invopop/jsonschema hook.
func (jsonObject) JSONSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "object"} }

// oneLine folds whitespace and cuts s to n runes, for compact listings.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "(no description)"
	}
	return s
}

// plural returns "1 <one>" or "n <many>".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// priceLine says first what a run will cost and what it makes, as far as
// BetterPrompt's answers tell.
func priceLine(out GetPromptOutput) string {
	kind := "Type: " + out.Modality + "."
	if out.Modality == "" {
		kind = "Type: not stated."
	}
	if out.EstimatedCredits != nil {
		return fmt.Sprintf("Price: about %d credits per run (BetterPrompt's estimate; the run's result gives the exact charge). %s",
			*out.EstimatedCredits, kind)
	}
	return "Price: not published for this prompt; BetterPrompt reserves the credits when the run starts (get_credits " +
		"shows the balance before and after). " + kind
}

// runOptionsText describes the prompt's model and the run options it takes.
func runOptionsText(out GetPromptOutput, models []bpapi.Model) string {
	var b strings.Builder
	if out.Model != "" {
		fmt.Fprintf(&b, "Model: %s", out.Model)
		if out.DefaultRunOptions != nil {
			def, _ := json.Marshal(out.DefaultRunOptions.v)
			fmt.Fprintf(&b, ", default run options %s", def)
		}
		b.WriteString(".\n")
	}
	opts := unionOptions(models)
	switch {
	case len(models) == 0:
		b.WriteString("Run options: not known for this prompt; leave run_options out to use the prompt's own.\n")
	case len(models) == 1 && models[0].Model == out.Model && len(opts) == 0:
		fmt.Fprintf(&b, "Run options: none (model %s takes none).\n", out.Model)
	case len(models) == 1 && models[0].Model == out.Model:
		b.WriteString("Run options (run_options, optional; the prompt's own apply otherwise):\n")
		for _, o := range opts {
			fmt.Fprintf(&b, "- %s: %s\n", o.Key, quoteAll(o.Values))
		}
	case len(opts) == 0:
		fmt.Fprintf(&b, "Run options: %s models take none.\n", out.Modality)
	default:
		fmt.Fprintf(&b, "Run options (run_options, optional) depend on the model, which BetterPrompt does not state for this prompt; %s models take:\n", out.Modality)
		for _, o := range opts {
			fmt.Fprintf(&b, "- %s: %s (models %s)\n", o.Key, quoteAll(o.Values), strings.Join(o.Models, ", "))
		}
	}
	return b.String()
}
