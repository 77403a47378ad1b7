package betterprompt_test

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

func TestParsePins(t *testing.T) {
	for _, tc := range []struct {
		in      []string
		want    []betterprompt.Pin
		wantErr string
	}{
		{in: []string{"cold-email-opener"}, want: []betterprompt.Pin{{PromptID: "cold-email-opener"}}},
		{in: []string{" a@v=my_tool ", "", "b=x"}, want: []betterprompt.Pin{{PromptID: "a", VersionID: "v", ToolName: "my_tool"}, {PromptID: "b", ToolName: "x"}}},
		{in: []string{"a@v"}, want: []betterprompt.Pin{{PromptID: "a", VersionID: "v"}}},
		{in: []string{"a=Bad-Name"}, wantErr: "lower-case"},
		{in: []string{"a=" + strings.Repeat("x", 65)}, wantErr: "64"},
		{in: []string{"@v"}, wantErr: "no prompt id"},
	} {
		got, err := betterprompt.ParsePins(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: err %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

// Chosen prompts get typed tools: named from their slug (or as told),
// their inputs as top-level arguments, images and run options when they
// take them; one call runs the prompt with exactly one POST. A prompt that
// cannot be loaded is reported in the instructions and the others work.
func TestPinnedPromptTools(t *testing.T) {
	e := newEnv(t, withDeps(func(d *betterprompt.Toolset) {
		d.Pins = []betterprompt.Pin{
			{PromptID: "cold-email-opener"},
			{PromptID: "photo-booth-strip-for-two", ToolName: "photo_booth"},
			{PromptID: "00000000-0000-4000-8000-000000000000"},
			{PromptID: "cold-email-opener", ToolName: "run_prompt"},
			{PromptID: "cold-email-opener", ToolName: "betterwaifu_generate"},
		}
	}))
	list, err := e.client.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	tools := map[string]mcp.Tool{}
	for _, tool := range list.Tools {
		tools[tool.Name] = tool
	}
	email, ok := tools["cold_email_opener"]
	if !ok {
		t.Fatalf("no cold_email_opener tool among %d", len(list.Tools))
	}
	var schema struct {
		Properties map[string]any `json:"properties"`
		Required   []string       `json:"required"`
	}
	rawSchema, _ := json.Marshal(email.InputSchema)
	if len(email.RawInputSchema) > 0 {
		rawSchema = email.RawInputSchema
	}
	_ = json.Unmarshal(rawSchema, &schema)
	for _, k := range []string{"company_name", "recipient_role", "value_proposition", "wait_seconds", "max_credits"} {
		if _, ok := schema.Properties[k]; !ok {
			t.Errorf("cold_email_opener has no argument %q: %s", k, rawSchema)
		}
	}
	if _, ok := schema.Properties["images"]; ok {
		t.Error("a text-only prompt's tool takes images")
	}
	if !strings.Contains(email.Description, "Cold Email Opener") || !strings.Contains(email.Description, "40 credits") {
		t.Errorf("description %q", email.Description)
	}
	if email.Annotations.ReadOnlyHint == nil || *email.Annotations.ReadOnlyHint {
		t.Error("a typed tool that spends is annotated read-only")
	}
	booth, ok := tools["photo_booth"]
	boothSchema, _ := json.Marshal(booth.InputSchema)
	if !ok || !strings.Contains(string(boothSchema), `"images"`) || !strings.Contains(string(boothSchema), `"run_options"`) {
		t.Errorf("photo_booth: %v %s", ok, boothSchema)
	}
	instr := e.deps.Instructions()
	if !strings.Contains(instr, "00000000-0000-4000-8000-000000000000") || !strings.Contains(instr, `"run_prompt" is taken`) ||
		!strings.Contains(instr, `"betterwaifu_generate" is taken`) {
		t.Errorf("the failures are not in the instructions: %s", instr)
	}

	res := e.call(t, "cold_email_opener", map[string]any{"company_name": "Acme", "recipient_role": "CTO",
		"value_proposition": "We halve your cloud bill.", "wait_seconds": 10})
	mustOK(t, res)
	var run betterprompt.RunView
	structured(t, res, &run)
	if run.Status != "succeeded" || len(run.Outputs) == 0 {
		t.Errorf("the typed tool's run: %+v", run)
	}
	if n := e.fake.Count("POST /v1/runs"); n != 1 {
		t.Errorf("%d POSTs", n)
	}
	res = e.call(t, "cold_email_opener", map[string]any{"company_name": "Acme"})
	mustError(t, res, "recipient_role")
	if n := e.fake.Count("POST /v1/runs"); n != 1 {
		t.Errorf("an invalid call was sent: %d POSTs", n)
	}
}

// The chosen prompts are MCP prompts too (slash commands in some hosts):
// their arguments are the text inputs, and their message asks the agent to
// call the prompt's tool with the values given, and to ask for the rest.
func TestPinnedPromptsAsMCPPrompts(t *testing.T) {
	e := newEnv(t, withDeps(func(d *betterprompt.Toolset) {
		d.Pins = []betterprompt.Pin{{PromptID: "cold-email-opener"}, {PromptID: "photo-booth-strip-for-two", ToolName: "photo_booth"}}
	}))
	ctx := context.Background()
	list, err := e.client.ListPrompts(ctx, mcp.ListPromptsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	var email mcp.Prompt
	for _, p := range list.Prompts {
		names = append(names, p.Name)
		if p.Name == "cold_email_opener" {
			email = p
		}
	}
	if strings.Join(names, " ") != "cold_email_opener photo_booth" && strings.Join(names, " ") != "photo_booth cold_email_opener" {
		t.Fatalf("prompts %v", names)
	}
	var args []string
	for _, a := range email.Arguments {
		args = append(args, a.Name)
		if !a.Required {
			t.Errorf("argument %s is not required", a.Name)
		}
	}
	if strings.Join(args, " ") != "company_name recipient_role value_proposition" {
		t.Errorf("arguments %v", args)
	}
	req := mcp.GetPromptRequest{}
	req.Params.Name, req.Params.Arguments = "cold_email_opener", map[string]string{"company_name": "Acme"}
	got, err := e.client.GetPrompt(ctx, req)
	if err != nil || len(got.Messages) != 1 {
		t.Fatalf("prompts/get: %v %+v", err, got)
	}
	msg, _ := got.Messages[0].Content.(mcp.TextContent)
	for _, want := range []string{"cold_email_opener", `"company_name":"Acme"`, "Ask me first for: recipient_role, value_proposition"} {
		if !strings.Contains(msg.Text, want) {
			t.Errorf("message %q lacks %q", msg.Text, want)
		}
	}
	req.Params.Name, req.Params.Arguments = "photo_booth", nil
	got, err = e.client.GetPrompt(ctx, req)
	if err != nil || !strings.Contains(got.Messages[0].Content.(mcp.TextContent).Text, "images") {
		t.Errorf("photo_booth's message: %v %+v", err, got)
	}
}

// pin_prompt adds a tool while the server runs and tells the clients, who
// then see it in tools/list and can call it.
func TestPinPrompt(t *testing.T) {
	e := newEnv(t, withDeps(func(d *betterprompt.Toolset) { d.AllowPinning = true }))
	changed := make(chan struct{}, 4)
	c := connect(t, e.srv, e.deps, func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/tools/list_changed" {
			changed <- struct{}{}
		}
	})
	res := e.call(t, "pin_prompt", map[string]any{"prompt_id": "cold-email-opener", "tool_name": "email_opener"})
	mustOK(t, res)
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no notifications/tools/list_changed")
	}
	list, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tool := range list.Tools {
		found = found || tool.Name == "email_opener"
	}
	if !found {
		t.Fatal("the pinned tool is not listed")
	}
	res = e.call(t, "email_opener", map[string]any{"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "Less spend."})
	mustOK(t, res)
	if n := e.fake.Count("POST /v1/runs"); n != 1 {
		t.Errorf("%d POSTs", n)
	}
	res = e.call(t, "pin_prompt", map[string]any{"prompt_id": "cold-email-opener", "tool_name": "run_prompt"})
	mustError(t, res, "taken", "Nothing changed")
	res = e.call(t, "pin_prompt", map[string]any{"prompt_id": "00000000-0000-4000-8000-000000000000"})
	mustError(t, res, "not pinned")
}

// Without --allow-pinning there is no pin_prompt, and the server does not
// say its tool list may change.
func TestNoPinPromptByDefault(t *testing.T) {
	e := newEnv(t)
	list, err := e.client.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range list.Tools {
		if tool.Name == "pin_prompt" {
			t.Error("pin_prompt offered without AllowPinning")
		}
	}
	if e.deps.ChangesTools() {
		t.Error("ChangesTools without AllowPinning")
	}
}

// Two pin_prompt calls that race for one tool name: one gets it, the other
// is told the name is taken. Neither may be told its prompt has the tool
// while the tool runs the other's prompt.
func TestPinPromptRaceForOneName(t *testing.T) {
	e := newEnv(t, withDeps(func(d *betterprompt.Toolset) { d.AllowPinning = true }))
	prompts := []string{"cold-email-opener", "sql-query-explainer"}
	results := make([]*mcp.CallToolResult, len(prompts))
	var wg sync.WaitGroup
	for i, p := range prompts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.call(t, "pin_prompt", map[string]any{"prompt_id": p, "tool_name": "shared_name"})
		}()
	}
	wg.Wait()
	var won []string
	for i, res := range results {
		if !res.IsError {
			var out betterprompt.PinPromptOutput
			structured(t, res, &out)
			won = append(won, prompts[i]+" → "+out.PromptVersionID)
		} else if !strings.Contains(text(res), "taken") {
			t.Errorf("%s: %s", prompts[i], text(res))
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d calls were told they have the tool shared_name: %v", len(won), won)
	}
}

// A server whose allowlist leaves run_prompt out spends nothing: pin_prompt
// there must not add a tool that runs prompts (nor one named run_prompt).
func TestPinPromptWithoutRunPrompt(t *testing.T) {
	fake, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: loadCatalogue(t),
		Keys: map[string]fakeapi.Key{testKey: {Credits: 100000}}, TimeScale: 0.01})
	d := &betterprompt.Toolset{Client: bpapi.New(bpapi.Options{BaseURL: base, APIKey: testKey}), AllowPinning: true}
	allowed := []string{"search_prompts", "get_prompt", "pin_prompt"}
	srv := mcpserver.New("test", []tools.Toolset{d}, mcpserver.WithToolFilter(func(t mcp.Tool) bool {
		return slices.Contains(allowed, t.Name)
	}))
	c := connect(t, srv, d, nil)
	req := mcp.CallToolRequest{}
	req.Params.Name = "pin_prompt"
	req.Params.Arguments = map[string]any{"prompt_id": "cold-email-opener", "tool_name": "run_prompt"}
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if !res.IsError {
		t.Errorf("pin_prompt added a tool where run_prompt is not offered: %s", text(res))
	}
	if srv.GetTool("run_prompt") != nil {
		req.Params.Name = "run_prompt"
		req.Params.Arguments = map[string]any{"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "Less spend."}
		_, _ = c.CallTool(context.Background(), req)
		t.Errorf("a tool that runs prompts appeared; %d runs started", fake.Count("POST /v1/runs"))
	}
}

// pin_prompt stops at its limit of tools, with nothing changed.
func TestPinPromptCap(t *testing.T) {
	e := newEnv(t, withDeps(func(d *betterprompt.Toolset) { d.AllowPinning, d.PinLimit = true, 2 }))
	for i := range 2 {
		res := e.call(t, "pin_prompt", map[string]any{"prompt_id": "cold-email-opener"})
		if res.IsError {
			t.Fatalf("pin %d: %s", i, text(res))
		}
	}
	res := e.call(t, "pin_prompt", map[string]any{"prompt_id": "cold-email-opener"})
	mustError(t, res, "already have tools", "Nothing changed")
}
