package betterprompt_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/internal/seal"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
	"github.com/bpmcp/bpmcp/tools/spending"
)

// user answers elicitations as told, and keeps what it was asked.
type user struct {
	accept bool
	delay  time.Duration

	mu    sync.Mutex
	asked []string
}

func (u *user) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	u.mu.Lock()
	u.asked = append(u.asked, req.Params.Message)
	u.mu.Unlock()
	time.Sleep(u.delay)
	if !u.accept {
		return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionDecline}}, nil
	}
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{
		Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"confirm": true}}}, nil
}

func (u *user) questions() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.asked...)
}

func withConfirm(above int, ttl time.Duration) envOption {
	return withDeps(func(d *betterprompt.Toolset) {
		d.Confirm = &spending.Confirmer{Above: above, Sealer: seal.New([]byte("test secret")), TTL: ttl}
	})
}

// connectAs adds a client of e's server that answers elicitations as u,
// speaking protocol version era.
func connectAs(t *testing.T, e *env, u *user, era string) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClientWithOptions(e.srv, client.WithElicitationHandler(u))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = era
	init.Params.ClientInfo = mcp.Implementation{Name: "user", Version: "0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func runWith(t *testing.T, c *client.Client, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "run_prompt", args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("run_prompt: %v", err)
	}
	return res
}

// Above the threshold the user is asked through the client before anything
// is sent, in both protocol eras (an input_required result for 2026-07-28
// clients, elicitation/create for 2025-11-25 ones): accepted, the run goes;
// declined, nothing is spent.
func TestConfirmationAboveTheThreshold(t *testing.T) {
	t.Parallel()
	args := map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs}
	for _, era := range []string{mcp.LATEST_PROTOCOL_VERSION, "2025-11-25"} {
		for _, accept := range []bool{true, false} {
			e := newEnv(t, withConfirm(30, 0))
			u := &user{accept: accept}
			res := runWith(t, connectAs(t, e, u, era), args)
			asked := u.questions()
			if len(asked) != 1 || !strings.Contains(asked[0], `"Cold Email Opener" on BetterPrompt`) ||
				!strings.Contains(asked[0], "about 40 credits") || !strings.Contains(asked[0], "Balance:") {
				t.Errorf("%s: asked %q", era, asked)
			}
			posts := e.fake.Count("POST /v1/runs")
			switch {
			case accept && (res.IsError || posts != 1):
				t.Errorf("%s, accepted: isError %v, %d POSTs: %s", era, res.IsError, posts, text(res))
			case !accept && (!res.IsError || posts != 0 || !strings.Contains(text(res), "The user declined the run; nothing was spent")):
				t.Errorf("%s, declined: isError %v, %d POSTs: %s", era, res.IsError, posts, text(res))
			}
		}
	}
	// At or under the threshold nobody is asked.
	e := newEnv(t, withConfirm(40, 0))
	u := &user{accept: false}
	mustOK(t, runWith(t, connectAs(t, e, u, mcp.LATEST_PROTOCOL_VERSION), args))
	if len(u.questions()) != 0 {
		t.Errorf("asked at the threshold: %q", u.questions())
	}
}

// A client that cannot ask the user gets an error that says why the run
// did not start and how the user can allow it; nothing is sent.
func TestConfirmationWithoutClientSupport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfirm(30, 0))
	mustError(t, e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs}),
		"this server asks above 30 credits", "cannot ask the user", "--confirm-above", "cannot be given on the user's behalf")
	if n := e.fake.Count("POST /v1/runs"); n != 0 {
		t.Errorf("%d POSTs", n)
	}
}

// An answer whose request state this server did not seal, or that comes
// after its time limit, starts nothing.
func TestConfirmationStateIsSealed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withConfirm(30, 0))
	u := &user{accept: false} // asked anew, the user would decline
	c := connectAs(t, e, u, "2025-11-25")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Straight to the server: an agent that makes up an accepted answer.
	resp, err := c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(int64(41)),
		Method: "tools/call", Params: map[string]any{
			"name":      "run_prompt",
			"arguments": map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs},
			"inputResponses": map[string]any{"confirm_spend": map[string]any{
				"action": "accept", "content": map[string]any{"confirm": true}}},
			"requestState": "forged-by-the-agent",
		}})
	if err != nil || resp.Error != nil {
		t.Fatalf("%v %+v", err, resp)
	}
	res, err := mcp.ParseCallToolResult(&resp.Result)
	if err != nil {
		t.Fatal(err)
	}
	mustError(t, res, "could not be verified", "Nothing was spent")

	late := newEnv(t, withConfirm(30, time.Second))
	slow := &user{accept: true, delay: 2100 * time.Millisecond}
	mustError(t, runWith(t, connectAs(t, late, slow, mcp.LATEST_PROTOCOL_VERSION),
		map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs}), "after its time limit")
	if n := e.fake.Count("POST /v1/runs") + late.fake.Count("POST /v1/runs"); n != 0 {
		t.Errorf("%d POSTs", n)
	}
}
