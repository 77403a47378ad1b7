package betterprompt_test

import (
	"context"
	"encoding/json"
	"flag"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/internal/toolsnap"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

var update = flag.Bool("update", false, "rewrite golden files")

// rawToolsList returns the server's own tools/list answer, byte for byte as
// a host receives it.
func rawToolsList(t *testing.T, e *env) []byte {
	t.Helper()
	msg := e.srv.HandleMessage(context.Background(), []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &resp); err != nil || len(resp.Result) == 0 {
		t.Fatalf("tools/list answer %s: %v", b, err)
	}
	return resp.Result
}

// wireTool is a tool as it appears on the wire.
type wireTool struct {
	Name         string             `json:"name"`
	Title        string             `json:"title"`
	Description  string             `json:"description"`
	InputSchema  map[string]any     `json:"inputSchema"`
	OutputSchema map[string]any     `json:"outputSchema"`
	Annotations  mcp.ToolAnnotation `json:"annotations"`
	Execution    *mcp.ToolExecution `json:"execution"`
}

// Each tool as tools/list shows it is what every host and agent sees; a
// change to one is reviewed as a diff of its snapshot in testdata/toolsnaps
// (go test ./tools/betterprompt -update rewrites them).
func TestToolSnapshots(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withDeps(func(d *betterprompt.Toolset) { d.Wait = betterprompt.WaitConfig{} })) // the production defaults
	toolsnap.Check(t, filepath.Join("testdata", "toolsnaps"), rawToolsList(t, e), *update, "go test ./tools/betterprompt -update")
}

func TestToolSurface(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var list struct {
		Tools []wireTool `json:"tools"`
	}
	if err := json.Unmarshal(rawToolsList(t, e), &list); err != nil {
		t.Fatal(err)
	}
	tools := list.Tools
	if n := len(rawToolsList(t, e)); n > 6*1024 {
		t.Errorf("tools/list is %d bytes; keep it under 6 KB", n)
	} else {
		t.Logf("tools/list: %d bytes", n)
	}
	names := make([]string, len(tools))
	for i, tool := range tools {
		names[i] = tool.Name
	}
	slices.Sort(names)
	want := []string{"get_credits", "get_prompt", "get_run", "list_models", "run_prompt", "search_prompts"}
	if !slices.Equal(names, want) {
		t.Fatalf("tools = %v, want exactly %v", names, want)
	}
	for _, tool := range tools {
		t.Run(tool.Name, func(t *testing.T) {
			a := tool.Annotations
			if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
				t.Fatalf("not every annotation is set: %+v", a)
			}
			// Every tool talks to BetterPrompt, and none deletes anything.
			if *a.DestructiveHint || !*a.OpenWorldHint {
				t.Errorf("destructive=%v openWorld=%v; want false, true", *a.DestructiveHint, *a.OpenWorldHint)
			}
			if *a.ReadOnlyHint {
				// Reading twice is the same as once.
				if !*a.IdempotentHint {
					t.Error("a read-only tool that is not idempotent")
				}
			} else {
				// A tool that writes spends: each call may start a paid
				// run, and its title and description say so up front.
				if *a.IdempotentHint {
					t.Error("a tool that spends credits marked idempotent")
				}
				if !strings.Contains(tool.Title, "spends credits") || !strings.HasPrefix(tool.Description, "Run") ||
					!strings.Contains(tool.Description, "Spends credits") {
					t.Errorf("title %q / description %q do not warn that it spends credits", tool.Title, tool.Description)
				}
			}
			if tool.Title == "" || a.Title == "" {
				t.Error("no title")
			}
			if n := len(tool.Description); n == 0 || n > 420 {
				t.Errorf("description is %d characters; keep it under ~400", n)
			}
			if tool.OutputSchema["type"] != "object" {
				t.Errorf("output schema %v", tool.OutputSchema)
			}
			in := tool.InputSchema
			if in["type"] != "object" {
				t.Errorf("input schema %v", in)
			}
			for _, kw := range []string{"oneOf", "anyOf", "allOf"} {
				if _, ok := in[kw]; ok {
					t.Errorf("top-level %s in the input schema: some hosts reject it", kw)
				}
			}
		})
	}
	if run := tools[slices.IndexFunc(tools, func(t wireTool) bool { return t.Name == "run_prompt" })]; run.Execution == nil ||
		run.Execution.TaskSupport != mcp.TaskSupportOptional {
		t.Errorf("run_prompt task support = %+v, want optional", run.Execution)
	}
}
