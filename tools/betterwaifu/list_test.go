package betterwaifu_test

import (
	"context"
	"encoding/json"
	"flag"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/internal/toolsnap"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
)

var update = flag.Bool("update", false, "rewrite golden files")

// serverWith builds the server with the given toolsets (production
// defaults) and returns it.
func serverWith(sets ...tools.Toolset) *server.MCPServer { return mcpserver.New("test", sets) }

func bpToolset() *betterprompt.Toolset {
	return &betterprompt.Toolset{Client: bpapi.New(bpapi.Options{})}
}

func bwToolset() *betterwaifu.Toolset {
	return &betterwaifu.Toolset{Client: bwapi.New(bwapi.Options{APIKey: "bw_x"})}
}

func handle(t *testing.T, srv *server.MCPServer, msg string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(srv.HandleMessage(context.Background(), []byte(msg)))
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Result json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal(b, &resp); err != nil || len(resp.Result) == 0 {
		t.Fatalf("answer %s: %v", b, err)
	}
	return resp.Result
}

func toolsList(t *testing.T, srv *server.MCPServer) []byte {
	return handle(t, srv, `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
}

// Each BetterWaifu tool as tools/list shows it; go test
// ./tools/betterwaifu -update rewrites the snapshots.
func TestToolSnapshots(t *testing.T) {
	toolsnap.Check(t, filepath.Join("testdata", "toolsnaps"), toolsList(t, serverWith(bwToolset())), *update, "go test ./tools/betterwaifu -update")
}

func TestToolSurface(t *testing.T) {
	both := toolsList(t, serverWith(bpToolset(), bwToolset()))
	if n := len(both); n > 9*1024 {
		t.Errorf("tools/list with both toolsets is %d bytes; keep it under 9 KB", n)
	}
	t.Logf("tools/list: %d bytes with both toolsets", len(both))
	var list struct {
		Tools []struct {
			Name        string             `json:"name"`
			Title       string             `json:"title"`
			Description string             `json:"description"`
			Annotations mcp.ToolAnnotation `json:"annotations"`
			Output      map[string]any     `json:"outputSchema"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(toolsList(t, serverWith(bwToolset())), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Tools) != 4 {
		t.Fatalf("%d tools", len(list.Tools))
	}
	for _, tool := range list.Tools {
		a := tool.Annotations
		if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil ||
			*a.DestructiveHint || !*a.OpenWorldHint || tool.Output["type"] != "object" || tool.Title == "" {
			t.Errorf("%s: annotations %+v, output schema %v", tool.Name, a, tool.Output)
		}
		spends := tool.Name == "betterwaifu_generate"
		if *a.ReadOnlyHint == spends || *a.IdempotentHint == spends {
			t.Errorf("%s: readOnly %v idempotent %v", tool.Name, *a.ReadOnlyHint, *a.IdempotentHint)
		}
		if spends && (!strings.Contains(tool.Title, "spends credits") || !strings.Contains(tool.Description, "Spends credits")) {
			t.Errorf("%s does not say it spends credits", tool.Name)
		}
	}
}

// The BetterWaifu paragraph is in the instructions only when its tools are.
func TestInstructions(t *testing.T) {
	read := func(srv *server.MCPServer) string {
		var res struct {
			Instructions string `json:"instructions"`
		}
		_ = json.Unmarshal(handle(t, srv, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",`+
			`"capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`), &res)
		return res.Instructions
	}
	if s := read(serverWith(bpToolset())); strings.Contains(s, "BetterWaifu") {
		t.Errorf("instructions mention BetterWaifu without its tools:\n%s", s)
	}
	if s := read(serverWith(bpToolset(), bwToolset())); !strings.Contains(s, "betterwaifu_generate") || !strings.Contains(s, "search_prompts") {
		t.Errorf("instructions with both toolsets:\n%s", s)
	}
}
