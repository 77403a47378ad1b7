package e2e

import (
	"context"
	"io"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// With --confirm-above, the official Go SDK client is asked through its
// elicitation handler before a run above the threshold, over both
// transports and in both protocol eras (an input_required result in
// 2026-07-28, elicitation/create in 2025-11-25): accepted, the run goes;
// declined, it is refused with nothing spent.
func TestConfirmationWithTheGoSDK(t *testing.T) {
	for _, transport := range []string{"stdio", "http"} {
		for _, era := range []string{"2025-11-25", ""} {
			for _, accept := range []bool{true, false} {
				name := transport + "/" + map[string]string{"": "modern"}[era] + era + map[bool]string{true: "/accept", false: "/decline"}[accept]
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					var asked atomic.Int32
					handler := func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
						asked.Add(1)
						if !strings.Contains(req.Params.Message, "Cold Email Opener") {
							t.Errorf("asked %q", req.Params.Message)
						}
						if !accept {
							return &mcp.ElicitResult{Action: "decline"}, nil
						}
						return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}, nil
					}
					cs := connectWith(t, transport, era, []string{"--confirm-above", "30"},
						&mcp.ClientOptions{ElicitationHandler: handler})
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_prompt", Arguments: map[string]any{
						"prompt_version_id": coldEmailVersion,
						"inputs": map[string]any{"textInputs": map[string]any{
							"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "We halve your cloud bill."}},
					}})
					if err != nil {
						t.Fatal(err)
					}
					if asked.Load() != 1 {
						t.Errorf("the user was asked %d times", asked.Load())
					}
					switch text := textOf(res); {
					case accept && (res.IsError || !strings.Contains(text, "succeeded")):
						t.Errorf("accepted: %s", text)
					case !accept && (!res.IsError || !strings.Contains(text, "The user declined the run; nothing was spent")):
						t.Errorf("declined: %s", text)
					}
				})
			}
		}
	}
}

// connectWith connects the Go SDK client, built with opts, to the sandbox
// server started with extra arguments.
func connectWith(t *testing.T, transport, era string, extra []string, opts *mcp.ClientOptions) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var tr mcp.Transport
	switch transport {
	case "stdio":
		cmd := exec.Command(binary, append(append([]string{}, sandboxArgs...), extra...)...)
		cmd.Env = cleanEnv()
		cmd.Stderr = io.Discard
		tr = &mcp.CommandTransport{Command: cmd}
	case "http":
		tr = &mcp.StreamableClientTransport{Endpoint: startHTTP(t, extra...)}
	}
	var sopts *mcp.ClientSessionOptions
	if era != "" {
		sopts = &mcp.ClientSessionOptions{ProtocolVersion: era}
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bpmcp-e2e-user", Version: "0"}, opts).Connect(ctx, tr, sopts)
	if err != nil {
		t.Fatalf("connect over %s (era %q): %v", transport, era, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}
