package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// REVIEW (nit, wording): on a --stateless HTTP server a 2025-11-25 client
// that does support elicitation is told "this client cannot ask the user
// (it does not support elicitation)": the reason is the server's stateless
// mode (no session to carry the client's capabilities or elicitation/create),
// and the remedy (a 2026-07-28 client, or a stateful server) is not named.
func TestR15StatelessLegacyClientWithElicitation(t *testing.T) {
	handler := func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tr := &mcp.StreamableClientTransport{Endpoint: startHTTP(t, "--stateless", "--confirm-above", "30")}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "u", Version: "0"}, &mcp.ClientOptions{ElicitationHandler: handler}).
		Connect(ctx, tr, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_prompt", Arguments: map[string]any{
		"prompt_version_id": coldEmailVersion,
		"inputs": map[string]any{"textInputs": map[string]any{
			"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "We halve your cloud bill."}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if text := textOf(res); strings.Contains(text, "does not support elicitation") {
		t.Errorf("a client that declared elicitation is told it does not support it: %s", text)
	}
}
