package betterprompt_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// modernCall sends one 2026-07-28 tools/call straight to the server (no
// session, as over stateless HTTP) with the raw arguments given as JSON
// text, and the inputResponses/requestState given (or none), and returns the
// raw result object.
func modernCall(t *testing.T, e *env, rawArgs string, responses map[string]any, state string) map[string]any {
	t.Helper()
	return modernCallCaps(t, e, map[string]any{"elicitation": map[string]any{}}, rawArgs, responses, state)
}

func modernCallCaps(t *testing.T, e *env, caps map[string]any, rawArgs string, responses map[string]any, state string) map[string]any {
	t.Helper()
	params := map[string]any{
		"name":      "run_prompt",
		"arguments": json.RawMessage(rawArgs),
		"_meta": map[string]any{
			mcp.MetaKeyProtocolVersion:    mcp.LATEST_PROTOCOL_VERSION,
			mcp.MetaKeyClientCapabilities: caps,
		},
	}
	if responses != nil {
		params["inputResponses"] = responses
		params["requestState"] = state
	}
	msg, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params})
	out, _ := json.Marshal(e.srv.HandleMessage(context.Background(), msg))
	var resp struct {
		Result map[string]any `json:"result"`
		Error  any            `json:"error"`
	}
	if err := json.Unmarshal(out, &resp); err != nil || resp.Error != nil {
		t.Fatalf("tools/call: %s", out)
	}
	return resp.Result
}

var accepted = map[string]any{"confirm_spend": map[string]any{"action": "accept", "content": map[string]any{"confirm": true}}}

const coldEmailArgs = `{"prompt_version_id":"` + coldEmailVersion + `","inputs":{"textInputs":{"company_name":"Acme","recipient_role":"CTO","value_proposition":"We halve your cloud bill."}}}`

// The same arguments, with the two top-level members in the other order.
const coldEmailArgsReordered = `{"inputs":{"textInputs":{"company_name":"Acme","recipient_role":"CTO","value_proposition":"We halve your cloud bill."}},"prompt_version_id":"` + coldEmailVersion + `"}`

func stateOf(t *testing.T, res map[string]any) string {
	t.Helper()
	if res["resultType"] != "input_required" {
		t.Fatalf("not an input_required result: %v", res)
	}
	s, _ := res["requestState"].(string)
	return s
}

func resultText(res map[string]any) string {
	b, _ := json.Marshal(res["content"])
	return string(b)
}

// One accepted (requestState, inputResponses) pair starts one run: sent
// again within its time limit, it is refused as used.
func TestR15AcceptedAnswerReplays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfirm(30, 0))
	state := stateOf(t, modernCall(t, e, coldEmailArgs, nil, ""))
	for i := range 3 {
		res := modernCall(t, e, coldEmailArgs, accepted, state)
		if used := res["isError"] == true && strings.Contains(resultText(res), "already used"); used != (i > 0) {
			t.Fatalf("answer sent %d times: %s", i+1, resultText(res))
		}
	}
	if n := e.fake.Count("POST /v1/runs"); n != 1 {
		t.Errorf("one confirmation started %d paid runs", n)
	}
}

// Not tested, because the protocol cannot prevent it: a client that makes
// up inputResponses itself (instead of asking its user) answers for the
// user. The seal binds an answer to one call, its price and one use; the
// README says so.

// REVIEW (bug, false refusal): the arguments are hashed as the raw bytes
// the client sent (json.RawMessage, merely compacted), not canonicalised:
// a client that sends the same arguments with members in another order (or
// 30 as 30.0, or "é" as "\u00e9") on the retry is told the answer was "for
// another call". confirm.go's comment says maps are sorted; wire arguments
// are never maps.
func TestR15RetryWithReorderedArguments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfirm(30, 0))
	state := stateOf(t, modernCall(t, e, coldEmailArgs, nil, ""))
	res := modernCall(t, e, coldEmailArgsReordered, accepted, state)
	if res["isError"] == true {
		t.Errorf("same arguments, another member order: %s", resultText(res))
	}
}

// REVIEW (bug): run_prompt is task-capable (stdio). As an MCP task, the
// input_required result is not bridged by mcp-go (executeRegularToolAsTask
// stores it as is) and tasks/result copies only content, structuredContent
// and isError: a 2025-11-25 client that supports elicitation is never
// asked, and the task "completes" successfully with no content at all.
func TestR15ConfirmationInATaskCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfirm(30, 0))
	u := &user{accept: true}
	c := connectAs(t, e, u, "2025-11-25")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(int64(1)),
		Method: "tools/call", Params: map[string]any{
			"name":      "run_prompt",
			"arguments": map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs},
			"task":      map[string]any{},
		}})
	if err != nil || resp.Error != nil {
		t.Fatalf("%v %+v", err, resp)
	}
	var created struct {
		Task struct {
			TaskID string `json:"taskId"`
		} `json:"task"`
	}
	if err := json.Unmarshal(resp.Result, &created); err != nil || created.Task.TaskID == "" {
		t.Fatalf("not a task: %s", resp.Result)
	}
	res, err := c.TaskResult(ctx, mcp.TaskResultRequest{Params: mcp.TaskResultParams{TaskId: created.Task.TaskID}})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(res)
	posts := e.fake.Count("POST /v1/runs")
	if len(u.questions()) == 0 && !res.IsError {
		t.Errorf("the user was never asked, and the task result is a success (%d POSTs): %s", posts, raw)
	}
	if len(u.questions()) == 1 && posts != 1 {
		t.Errorf("accepted, but %d POSTs: %s", posts, raw)
	}
}

// Coverage the suite lacks (these pass, and fail when confirm.go's
// binding check `got != want` or its checkbox check is removed; the
// existing tests pass either way).
func TestR15StateIsBoundToTheCall(t *testing.T) {
	t.Parallel()
	a := newEnv(t, withConfirm(30, 0))
	state := stateOf(t, modernCall(t, a, coldEmailArgs, nil, ""))
	// Other arguments, same key.
	other := strings.Replace(coldEmailArgs, "Acme", "Evil", 1)
	if res := modernCall(t, a, other, accepted, state); res["isError"] != true ||
		!strings.Contains(resultText(res), "given for another call") {
		t.Errorf("other arguments: %s", resultText(res))
	}
	// Another tenant (another key) on a replica with the same secret.
	b := newEnv(t, withConfirm(30, 0), withKey("bp_poor_key"))
	if res := modernCall(t, b, coldEmailArgs, accepted, state); res["isError"] != true ||
		!strings.Contains(resultText(res), "given for another call") {
		t.Errorf("another tenant: %s", resultText(res))
	}
	// Accepted without ticking the box.
	unticked := map[string]any{"confirm_spend": map[string]any{"action": "accept", "content": map[string]any{"confirm": false}}}
	if res := modernCall(t, a, coldEmailArgs, unticked, state); res["isError"] != true ||
		!strings.Contains(resultText(res), "declined") {
		t.Errorf("accept with confirm=false: %s", resultText(res))
	}
	if n := a.fake.Count("POST /v1/runs") + b.fake.Count("POST /v1/runs"); n != 0 {
		t.Errorf("%d POSTs", n)
	}
}

// REVIEW (nit): run_prompt asks the user before the budget is checked
// (Confirm comes before Reserve in checkSpend; betterwaifu checks the
// budget first): the user is asked to spend, says yes, and the run is then
// refused for the budget, which was known before asking.
func TestR15AskedThenRefusedForTheBudget(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfirm(30, 0), withDeps(func(d *betterprompt.Toolset) { d.Spending.Budget = 35 }))
	u := &user{accept: true}
	res := runWith(t, connectAs(t, e, u, mcp.LATEST_PROTOCOL_VERSION),
		map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
	if res.IsError && len(u.questions()) > 0 {
		t.Errorf("asked %q, accepted, then: %s", u.questions(), text(res))
	}
}

// REVIEW (risk): CanElicit takes any elicitation capability as support for
// the form the server sends; a client that declared only URL mode
// ({"elicitation":{"url":{}}}; an empty object means form only) is sent a
// form it cannot show, instead of the explanatory refusal.
func TestR15URLOnlyClientIsSentAForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfirm(30, 0))
	res := modernCallCaps(t, e, map[string]any{"elicitation": map[string]any{"url": map[string]any{}}}, coldEmailArgs, nil, "")
	if res["resultType"] == "input_required" {
		b, _ := json.Marshal(res["inputRequests"])
		t.Errorf("a URL-only client was sent: %s", b)
	}
}
