package betterprompt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/tools"
)

// Pin is a prompt chosen to get a tool of its own (BETTERPROMPT_PROMPTS).
type Pin struct {
	// PromptID is the prompt's id, slug or page link.
	PromptID string
	// VersionID pins a version; "" takes the latest when the server starts.
	VersionID string
	// ToolName names the tool; "" derives it from the slug or the title.
	ToolName string
}

// reservedPrefix names the other toolset's tools (BetterWaifu's), which
// are registered beside these and must not be shadowed.
const reservedPrefix = "betterwaifu_"

// toolNameRule is what a tool name must match (hosts refuse others).
var toolNameRule = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// ParsePins reads chosen prompts written id[@version][=tool_name], for
// example "cold-email-opener=cold_email" or "2d4e…01@6f1c…11".
func ParsePins(entries []string) ([]Pin, error) {
	var pins []Pin
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if e == "" {
			continue
		}
		var p Pin
		rest, name, named := strings.Cut(e, "=")
		if named {
			if !toolNameRule.MatchString(name) {
				return nil, fmt.Errorf("prompt %q: the tool name %q must be 1 to 64 lower-case letters, digits or underscores", e, name)
			}
			p.ToolName = name
		}
		p.PromptID, p.VersionID, _ = strings.Cut(rest, "@")
		if p.PromptID == "" {
			return nil, fmt.Errorf("prompt %q: no prompt id before @ or =", e)
		}
		pins = append(pins, p)
	}
	return pins, nil
}

// toolNameFrom makes a tool name out of a slug or a title: lower case,
// runs of anything else than letters and digits as one underscore, at most
// 64 characters.
func toolNameFrom(s string) string {
	var b strings.Builder
	underscore := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			underscore = false
		case !underscore && b.Len() > 0:
			b.WriteByte('_')
			underscore = true
		}
	}
	name := strings.TrimRight(b.String(), "_")
	if len(name) > 64 {
		name = strings.TrimRight(name[:64], "_")
	}
	return name
}

// uniqueName returns name, or name_2, name_3, … when taken (within 64
// characters).
func uniqueName(name string, taken map[string]bool) string {
	if !taken[name] {
		return name
	}
	for i := 2; ; i++ {
		suffix := fmt.Sprintf("_%d", i)
		candidate := name
		if len(candidate)+len(suffix) > 64 {
			candidate = candidate[:64-len(suffix)]
		}
		if candidate += suffix; !taken[candidate] {
			return candidate
		}
	}
}

// pinnedArgs are the typed tools' arguments besides the prompt's own text
// inputs.
var pinnedArgs = []string{"images", "run_options", "wait_seconds", "max_credits", "inline_images"}

// pinTimeout bounds the loading of all chosen prompts at start-up.
const pinTimeout = 30 * time.Second

// pinnedSpec is a chosen prompt, loaded: what its tool needs.
type pinnedSpec struct {
	name, title, description, version string
	schema                            json.RawMessage
	inputs                            []pinnedInput // its text inputs, for its MCP prompt
	images                            bool          // it takes images
}

// pinnedInput is a text input of a chosen prompt.
type pinnedInput struct {
	name, description string
	required          bool
}

// pinnedTools returns a tool for each chosen prompt that loaded (loading
// them, with the server's key, the first time), and what went wrong with
// the others. taken holds the names in use; run is run_prompt, which every
// typed tool calls.
func (d *Toolset) pinnedTools(taken map[string]bool, run server.ServerTool) (out []server.ServerTool, failures []string) {
	d.pinOnce.Do(func() { d.pinSpecs, d.pinFailures = d.loadPins(taken) })
	for _, spec := range d.pinSpecs {
		out = append(out, spec.tool(run, d.adapter.Tasks))
	}
	return out, d.pinFailures
}

// loadPins loads the chosen prompts.
func (d *Toolset) loadPins(taken map[string]bool) (specs []pinnedSpec, failures []string) {
	if len(d.Pins) == 0 {
		return nil, nil
	}
	if d.Client == nil || !d.Client.HasAPIKey() {
		return nil, []string{"the chosen prompts (BETTERPROMPT_PROMPTS) were not loaded: they are loaded with the " +
			"server's own API key, and this server has none (each caller brings theirs)"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), pinTimeout)
	defer cancel()
	get, search := getPrompt(d), searchPrompts(d)
	taken = maps.Clone(taken)
	for _, p := range d.Pins {
		spec, err := d.loadPin(ctx, p, get, search, taken)
		if err != nil {
			failures = append(failures, fmt.Sprintf("prompt %s: %v", p.PromptID, err))
			d.logger().Warn("a chosen prompt was not loaded; its tool is not offered", "prompt", p.PromptID, "err", err)
			continue
		}
		taken[spec.name] = true
		specs = append(specs, spec)
	}
	return specs, failures
}

// loadPin loads one chosen prompt through get_prompt (and search_prompts,
// for its description and slug).
func (d *Toolset) loadPin(ctx context.Context, p Pin, get, search server.ServerTool, taken map[string]bool) (pinnedSpec, error) {
	var info GetPromptOutput
	args := map[string]any{"prompt_id": p.PromptID}
	if p.VersionID != "" {
		args["version_id"] = p.VersionID
	}
	if err := callInto(ctx, get, args, &info); err != nil {
		return pinnedSpec{}, err
	}
	// The marketplace row gives the purpose and the slug (best effort).
	var row PromptRow
	var found SearchOutput
	if callInto(ctx, search, map[string]any{"query": info.Title}, &found) == nil {
		for _, r := range found.Prompts {
			if r.PromptID == info.PromptID {
				row = r
			}
		}
	}
	name := p.ToolName
	if name == "" {
		switch {
		case row.Slug != "":
			name = toolNameFrom(row.Slug)
		case !strings.Contains(p.PromptID, "/") && !isUUID(p.PromptID):
			name = toolNameFrom(p.PromptID) // given as a slug
		default:
			name = toolNameFrom(info.Title)
		}
		if name == "" {
			name = "prompt"
		}
		if strings.HasPrefix(name, reservedPrefix) {
			name = "prompt_" + name
		}
		name = uniqueName(name, taken)
	} else if taken[name] || strings.HasPrefix(name, reservedPrefix) {
		return pinnedSpec{}, fmt.Errorf("the tool name %q is taken", name)
	}
	schema, err := pinnedSchema(info)
	if err != nil {
		return pinnedSpec{}, err
	}
	spec := pinnedSpec{name: name, title: info.Title, description: pinnedDescription(info, row),
		version: info.PromptVersionID, schema: schema, images: info.ImageCount > 0}
	spec.inputs = pinnedInputs(schema)
	return spec, nil
}

// pinnedInputs lists the text inputs of a typed tool's schema, in name
// order.
func pinnedInputs(schema json.RawMessage) []pinnedInput {
	var s struct {
		Properties map[string]struct {
			Description string `json:"description"`
			Title       string `json:"title"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	_ = json.Unmarshal(schema, &s)
	var out []pinnedInput
	for name, p := range s.Properties {
		if slices.Contains(pinnedArgs, name) {
			continue
		}
		desc := p.Description
		if desc == "" {
			desc = p.Title
		}
		out = append(out, pinnedInput{name: name, description: desc, required: slices.Contains(s.Required, name)})
	}
	slices.SortFunc(out, func(a, b pinnedInput) int { return strings.Compare(a.name, b.name) })
	return out
}

// Prompts offers each chosen prompt as an MCP prompt, which hosts show as
// a slash command: its arguments are the prompt's text inputs, and its
// message asks the agent to call the prompt's tool with them. Call it
// after Tools.
func (d *Toolset) Prompts() []server.ServerPrompt {
	d.pinMu.Lock()
	specs := slices.Clone(d.pinSpecs)
	d.pinMu.Unlock()
	var out []server.ServerPrompt
	for _, spec := range specs {
		opts := []mcp.PromptOption{mcp.WithPromptDescription(spec.description)}
		for _, in := range spec.inputs {
			argOpts := []mcp.ArgumentOption{mcp.ArgumentDescription(in.description)}
			if in.required {
				argOpts = append(argOpts, mcp.RequiredArgument())
			}
			opts = append(opts, mcp.WithArgument(in.name, argOpts...))
		}
		out = append(out, server.ServerPrompt{Prompt: mcp.NewPrompt(spec.name, opts...), Handler: spec.promptMessage})
	}
	return out
}

// promptMessage asks the agent to run the spec's tool with the arguments
// given.
func (spec pinnedSpec) promptMessage(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
	given := map[string]string{}
	var missing []string
	for _, in := range spec.inputs {
		if v, ok := req.Params.Arguments[in.name]; ok && v != "" {
			given[in.name] = v
		} else if in.required {
			missing = append(missing, in.name)
		}
	}
	args, err := json.Marshal(given)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Run the BetterPrompt prompt %q by calling the tool %s with these arguments: %s.", spec.title, spec.name, args)
	if len(missing) > 0 {
		fmt.Fprintf(&b, " Ask me first for: %s.", strings.Join(missing, ", "))
	}
	if spec.images {
		b.WriteString(" It also takes images (the tool's images argument): ask me for them.")
	}
	b.WriteString(" Then show me its outputs.")
	return mcp.NewGetPromptResult(spec.title, []mcp.PromptMessage{
		mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(b.String())),
	}), nil
}

// tool is the spec's tool, which calls run (run_prompt) with the prompt's
// version and its arguments as inputs.
func (spec pinnedSpec) tool(run server.ServerTool, tasks *tools.Tasks) server.ServerTool {
	tool := run.Tool // run_prompt's annotations, output schema and task support
	tool.Name, tool.Title, tool.Description = spec.name, spec.title, spec.description
	tool.Annotations.Title = spec.title
	tool.InputSchema, tool.RawInputSchema = mcp.ToolInputSchema{}, spec.schema
	if tool.Execution != nil {
		// Its task calls are checked and bounded as run_prompt's are; without
		// run_prompt's check it takes none.
		var check func(any) error
		if tasks != nil {
			check = tasks.PrecheckOf(run.Tool.Name)
		}
		if check == nil {
			tool.Execution = nil
		} else {
			tasks.Precheck(spec.name, func(raw any) error {
				args, err := objectOf(raw)
				if err != nil {
					return err
				}
				return check(pinnedRunArgs(args, spec.version))
			})
		}
	}
	return server.ServerTool{Tool: tool, Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		args, err := objectOf(req.GetRawArguments())
		if err != nil {
			return mcp.NewToolResultError("Invalid arguments: " + err.Error()), nil
		}
		raw, err := json.Marshal(pinnedRunArgs(args, spec.version))
		if err != nil {
			return mcp.NewToolResultError("Invalid arguments: " + err.Error()), nil
		}
		req.Params.Arguments, req.Params.RawArguments = nil, raw
		return run.Handler(ctx, req)
	}}
}

// objectOf reads a call's arguments as a JSON object, keeping numbers as
// they were written.
func objectOf(raw any) (map[string]any, error) {
	var b []byte
	switch v := raw.(type) {
	case nil:
		return map[string]any{}, nil
	case json.RawMessage:
		b = v
	default:
		var err error
		if b, err = json.Marshal(v); err != nil {
			return nil, err
		}
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var args map[string]any
	if err := dec.Decode(&args); err != nil {
		return nil, errors.New("the arguments must be a JSON object")
	}
	if args == nil {
		args = map[string]any{}
	}
	return args, nil
}

func isUUID(s string) bool {
	return len(s) == 36 && strings.Count(s, "-") == 4
}

// pinnedRunArgs turns a typed tool's arguments into run_prompt's; an
// argument that is not an input is refused by run_prompt's checks, which
// name it.
func pinnedRunArgs(args map[string]any, version string) map[string]any {
	text := map[string]any{}
	inputs := map[string]any{"textInputs": text}
	out := map[string]any{"prompt_version_id": version, "inputs": inputs}
	for k, v := range args {
		switch k {
		case "images":
			inputs["imageInputs"] = v
		case "run_options", "wait_seconds", "max_credits", "inline_images":
			out[k] = v
		default:
			text[k] = v
		}
	}
	return out
}

// pinnedSchema is the typed tool's input schema: the prompt's text inputs
// as top-level properties, then images, run_options, wait_seconds and
// max_credits.
func pinnedSchema(info GetPromptOutput) (json.RawMessage, error) {
	var in struct {
		Properties struct {
			TextInputs struct {
				Properties map[string]json.RawMessage `json:"properties"`
				Required   []string                   `json:"required"`
			} `json:"textInputs"`
			ImageInputs json.RawMessage `json:"imageInputs"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	raw, err := json.Marshal(info.InputSchema)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("its input schema cannot be read: %w", err)
	}
	props := map[string]any{}
	for k, v := range in.Properties.TextInputs.Properties {
		if slices.Contains(pinnedArgs, k) {
			return nil, fmt.Errorf("its text input %q has the name of an argument of its tool; run it with run_prompt", k)
		}
		props[k] = v
	}
	required := slices.Clone(in.Properties.TextInputs.Required)
	if len(in.Properties.ImageInputs) > 0 {
		props["images"] = in.Properties.ImageInputs
		if slices.Contains(in.Required, "imageInputs") {
			required = append(required, "images")
		}
	}
	if info.RunOptionsSchema != nil {
		props["run_options"] = info.RunOptionsSchema
	}
	props["wait_seconds"] = map[string]any{"type": "number", "minimum": 0,
		"description": "Seconds to wait for the run before answering with its run_id (for get_run)."}
	props["max_credits"] = map[string]any{"type": "integer", "minimum": 0,
		"description": "Refuse the run, before anything is spent, if its estimate is above this."}
	props["inline_images"] = map[string]any{"type": "boolean", "description": "Embed image previews."}
	schema := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		slices.Sort(required)
		schema["required"] = required
	}
	return json.Marshal(schema)
}

// pinnedDescription gives the prompt's title, purpose, type and price.
func pinnedDescription(info GetPromptOutput, row PromptRow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Run the BetterPrompt prompt %q", info.Title)
	if row.Description != "" {
		fmt.Fprintf(&b, ": %s", strings.TrimSuffix(row.Description, "."))
	}
	b.WriteString(". ")
	kind := info.Modality
	if kind == "" {
		kind = "unknown type"
	}
	if info.EstimatedCredits != nil {
		fmt.Fprintf(&b, "Output: %s; about %d credits a run. ", kind, *info.EstimatedCredits)
	} else {
		fmt.Fprintf(&b, "Output: %s; price not stated. ", kind)
	}
	b.WriteString("Waits like run_prompt, then returns the outputs or a run_id for get_run.")
	return b.String()
}

// callInto calls a read-only tool and decodes its structuredContent into
// out; a tool error is returned as an error with its text.
func callInto(ctx context.Context, tool server.ServerTool, args map[string]any, out any) error {
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool.Tool.Name, args
	res, err := tool.Handler(ctx, req)
	if err != nil {
		return err
	}
	if res.IsError {
		return errors.New(strings.ReplaceAll(tools.ResultText(res), "\n", " "))
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// MaxPinned is Toolset.PinLimit's default.
const MaxPinned = 50

// PinPromptInput is pin_prompt's arguments.
type PinPromptInput struct {
	PromptID  string `json:"prompt_id" jsonschema_description:"From search_prompts, or a slug or page link."`
	VersionID string `json:"version_id,omitempty" jsonschema_description:"A version to pin; default: the latest."`
	ToolName  string `json:"tool_name,omitempty" jsonschema_description:"The new tool's name (a-z, 0-9, _); default: from the slug or title."`
}

// Check validates the arguments before anything is sent.
func (in *PinPromptInput) Check() error {
	if _, _, err := promptIDArg(in.PromptID, "prompt ids come from search_prompts"); err != nil {
		return err
	}
	if in.ToolName != "" && !toolNameRule.MatchString(in.ToolName) {
		return tools.Invalidf("tool_name must be 1 to 64 lower-case letters, digits or underscores")
	}
	return nil
}

// PinPromptOutput is pin_prompt's result.
type PinPromptOutput struct {
	ToolName        string `json:"tool_name"`
	Title           string `json:"title"`
	PromptVersionID string `json:"prompt_version_id"`
}

// ChangesTools reports whether the toolset adds tools at run time
// (pin_prompt), so that the server declares tools.listChanged.
func (d *Toolset) ChangesTools() bool { return d.AllowPinning && !d.PerRequestKeys }

// pinPrompt adds a tool for a prompt while the server runs and tells the
// clients that can hear it (notifications/tools/list_changed).
func pinPrompt(d *Toolset, run server.ServerTool) server.ServerTool {
	return tools.New(&d.adapter, tools.Spec{
		Name:  "pin_prompt",
		Title: "Add a tool for a prompt",
		Description: "Give a prompt a tool of its own, whose arguments are its inputs (it runs like run_prompt); " +
			"clients that support it see the tool list change.",
		Hints: tools.Hints{}, // each call may add a tool (name_2, name_3… for the same prompt)
	}, func(ctx context.Context, in PinPromptInput) (tools.Result[PinPromptOutput], error) {
		srv := server.ServerFromContext(ctx)
		if srv == nil {
			return tools.Result[PinPromptOutput]{}, tools.Failf(nil, "Tools cannot be added here; nothing changed.")
		}
		if srv.GetTool(run.Tool.Name) == nil {
			// The configuration leaves run_prompt out (--tools): a pinned
			// tool, which runs prompts as it does, would spend where nothing
			// may be spent.
			return tools.Result[PinPromptOutput]{}, tools.Failf(nil, "Tools cannot be added here: they run prompts "+
				"like %s, which this server's configuration does not offer. Nothing changed.", run.Tool.Name)
		}
		// One pin at a time, from reading the names in use to adding the
		// tool: two pins that chose the same name would otherwise both be
		// told they have it, and one would silently replace the other.
		d.pinning.Lock()
		defer d.pinning.Unlock()
		d.pinMu.Lock()
		count := len(d.pinSpecs)
		d.pinMu.Unlock()
		limit := d.PinLimit
		if limit <= 0 {
			limit = MaxPinned
		}
		if count >= limit {
			return tools.Result[PinPromptOutput]{}, tools.Failf(nil, "%d prompts already have tools here, the most this "+
				"server keeps (every tool goes into every agent's tool list). Nothing changed; use run_prompt.", count)
		}
		taken := map[string]bool{}
		for name := range srv.ListTools() {
			taken[name] = true
		}
		spec, err := d.loadPin(ctx, Pin{PromptID: in.PromptID, VersionID: in.VersionID, ToolName: in.ToolName},
			getPrompt(d), searchPrompts(d), taken)
		if err != nil {
			return tools.Result[PinPromptOutput]{}, tools.Failf(err, "The prompt was not pinned: %v. Nothing changed.", err)
		}
		d.pinMu.Lock()
		d.pinSpecs = append(d.pinSpecs, spec)
		d.pinned = append(d.pinned, spec.name)
		d.pinMu.Unlock()
		t := spec.tool(run, d.adapter.Tasks)
		srv.AddTool(t.Tool, t.Handler)
		d.logger().Info("a prompt was pinned as a tool", "tool", spec.name, "prompt_version_id", spec.version)
		out := PinPromptOutput{ToolName: spec.name, Title: spec.title, PromptVersionID: spec.version}
		return tools.Text(out, fmt.Sprintf("Added the tool %s for %q. Call it with the prompt's inputs as "+
			"arguments (see its input schema in tools/list).", spec.name, spec.title)), nil
	})
}
