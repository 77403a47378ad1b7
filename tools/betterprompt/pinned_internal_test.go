package betterprompt

import (
	"context"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools"
)

func TestPinnedToolNames(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"cold-email-opener", "cold_email_opener"},
		{"One Message, Many Channels", "one_message_many_channels"},
		{"Rainy Café Window Portrait", "rainy_caf_window_portrait"},
		{"--Hello--", "hello"},
		{"日本語", ""},
		{strings.Repeat("ab-", 40), strings.TrimRight(strings.Repeat("ab_", 40)[:64], "_")},
	} {
		got := toolNameFrom(tc.in)
		if got != tc.want || (got != "" && !toolNameRule.MatchString(got)) {
			t.Errorf("toolNameFrom(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	taken := map[string]bool{"run_prompt": true, "x_2": true, "x": true, strings.Repeat("y", 64): true}
	for _, tc := range []struct{ in, want string }{
		{"fresh", "fresh"},
		{"run_prompt", "run_prompt_2"},
		{"x", "x_3"},
		{strings.Repeat("y", 64), strings.Repeat("y", 62) + "_2"},
	} {
		if got := uniqueName(tc.in, taken); got != tc.want || !toolNameRule.MatchString(got) {
			t.Errorf("uniqueName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// A chosen prompt's tool takes task calls like run_prompt, within the same
// bounds: a task call with arguments run_prompt's check refuses is answered as a plain call
// (mcp-go would store a task for it first), and one without a TTL gets
// the default TTL (mcp-go would keep it for ever).
func TestPinnedToolTaskCallsAreBounded(t *testing.T) {
	cat, err := fakeapi.LoadCatalogueDir("../../testdata/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	_, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: cat})
	c := bpapi.New(bpapi.Options{BaseURL: base, APIKey: "bp_test_key"})
	t.Cleanup(c.CloseIdleConnections)
	d := &Toolset{Client: c, Pins: []Pin{{PromptID: "cold-email-opener"}}}
	tasks := &tools.Tasks{}
	var pinned *mcp.Tool
	for _, st := range d.Tools(tasks) {
		if st.Tool.Name == "cold_email_opener" {
			pinned = &st.Tool
		}
	}
	if pinned == nil || pinned.Execution == nil || pinned.Execution.TaskSupport == "" {
		t.Fatalf("the pinned tool does not take task calls: %+v", pinned)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "cold_email_opener"
	req.Params.Arguments = map[string]any{"company_name": "Acme", "wait_seconds": "soon"} // not a number
	req.Params.Task = &mcp.TaskParams{}
	tasks.Prepare(context.Background(), 1, &req)
	if req.Params.Task != nil {
		t.Error("a task call with invalid arguments is stored as a task")
	}
	req.Params.Arguments = map[string]any{"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "Less spend."}
	req.Params.Task = &mcp.TaskParams{}
	tasks.Prepare(context.Background(), 2, &req)
	if req.Params.Task == nil || req.Params.Task.TTL == nil {
		t.Errorf("a valid task call has no TTL: %+v", req.Params.Task)
	}
}
