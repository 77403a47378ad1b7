package spending_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/internal/seal"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/spending"
)

type noArgs struct {
	X string `json:"x,omitempty"`
}

// REVIEW (risk): the sealed state binds tool, tenant and arguments, not
// what the user was shown. run_prompt with prompt_id runs the *latest*
// version, and the estimate comes from facts that can change, so between
// the question and the retry (up to 10 minutes in 2026-07-28) the price can
// change: the user accepted "about 40 credits" and a 4000-credit run goes.
func TestR15AcceptIsNotBoundToThePrice(t *testing.T) {
	c := &spending.Confirmer{Above: 30, Sealer: seal.New([]byte("k"))}
	estimate := 40
	ran := 0
	a := &tools.Adapter{}
	tool := tools.New(a, tools.Spec{Name: "pay"}, func(ctx context.Context, in noArgs) (tools.Result[noArgs], error) {
		e := estimate
		if err := c.Confirm(ctx, spending.Question{Tool: "pay", Tenant: "t", What: "a run", Estimate: &e}); err != nil {
			return tools.Result[noArgs]{}, err
		}
		ran++
		return tools.Text(noArgs{}, "ran"), nil
	})
	srv := server.NewMCPServer("t", "0", server.WithToolCapabilities(false))
	srv.AddTools(tool)
	call := func(extra map[string]any) map[string]any {
		params := map[string]any{"name": "pay", "arguments": map[string]any{}, "_meta": map[string]any{
			mcp.MetaKeyProtocolVersion:    mcp.LATEST_PROTOCOL_VERSION,
			mcp.MetaKeyClientCapabilities: map[string]any{"elicitation": map[string]any{}},
		}}
		for k, v := range extra {
			params[k] = v
		}
		msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params})
		out, _ := json.Marshal(srv.HandleMessage(context.Background(), msg))
		var resp struct{ Result map[string]any }
		_ = json.Unmarshal(out, &resp)
		return resp.Result
	}
	first := call(nil)
	state, _ := first["requestState"].(string)
	if state == "" {
		t.Fatalf("no question: %v", first)
	}
	estimate = 4000 // a new version was published, or the facts were learnt
	res := call(map[string]any{"requestState": state, "inputResponses": map[string]any{
		"confirm_spend": map[string]any{"action": "accept", "content": map[string]any{"confirm": true}}}})
	if ran != 0 {
		t.Errorf("the user accepted about 40 credits; a run estimated at 4000 started: %v", res["content"])
	}
}
