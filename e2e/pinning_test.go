package e2e

import (
	"context"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// With --allow-pinning, pin_prompt adds a tool and the official Go SDK
// client hears notifications/tools/list_changed, lists the tool and calls
// it, over stdio and HTTP.
func TestPinPromptWithTheGoSDK(t *testing.T) {
	for _, transport := range []string{"stdio", "http"} {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			changed := make(chan struct{}, 4)
			client := mcp.NewClient(&mcp.Implementation{Name: "bpmcp-e2e", Version: "0"}, &mcp.ClientOptions{
				ToolListChangedHandler: func(context.Context, *mcp.ToolListChangedRequest) { changed <- struct{}{} },
			})
			var tr mcp.Transport
			if transport == "stdio" {
				cmd := exec.Command(binary, append(sandboxArgs, "--allow-pinning")...)
				cmd.Env = cleanEnv()
				tr = &mcp.CommandTransport{Command: cmd}
			} else {
				tr = &mcp.StreamableClientTransport{Endpoint: startHTTP(t, "--allow-pinning")}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cs, err := client.Connect(ctx, tr, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer cs.Close()
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "pin_prompt", Arguments: map[string]any{"prompt_id": "cold-email-opener"}})
			if err != nil || res.IsError {
				t.Fatalf("pin_prompt: %v %s", err, textOf(res))
			}
			select {
			case <-changed:
			case <-time.After(10 * time.Second):
				t.Fatal("no notifications/tools/list_changed")
			}
			list, err := cs.ListTools(ctx, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(list.Tools, func(tool *mcp.Tool) bool { return tool.Name == "cold_email_opener" }) {
				t.Fatal("the pinned tool is not listed")
			}
			res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "cold_email_opener", Arguments: map[string]any{
				"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "We halve your cloud bill."}})
			if err != nil || res.IsError {
				t.Fatalf("the pinned tool: %v %s", err, textOf(res))
			}
		})
	}
}
