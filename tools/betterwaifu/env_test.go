package betterwaifu_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/goleak"

	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		goleak.IgnoreAnyFunction("github.com/mark3labs/mcp-go/server.(*MCPServer).scheduleTaskCleanup"),
	)
}

// env is one BetterWaifu toolset under test, against the fake over
// in-memory pipes, inside a synctest bubble: time is virtual, so the 60 s
// cooldown and the simulated jobs take no real time.
type env struct {
	fake   *fakeapi.Server
	deps   *betterwaifu.Toolset
	client *client.Client

	mu       sync.Mutex
	progress []string
}

func newEnv(t *testing.T, opts fakeapi.Options, tweak ...func(*betterwaifu.Toolset)) *env {
	t.Helper()
	return newEnvClient(t, opts, nil, tweak...)
}

// newEnvClient is newEnv with the client built with copts (an elicitation
// handler, say).
func newEnvClient(t *testing.T, opts fakeapi.Options, copts []client.ClientOption, tweak ...func(*betterwaifu.Toolset)) *env {
	t.Helper()
	fake, base, hc := fakeapi.NewPipeServer(t, opts)
	d := &betterwaifu.Toolset{
		Client:      bwapi.New(bwapi.Options{BaseURL: base, APIKey: fakeapi.TestKey, HTTPClient: hc}),
		WaitDefault: 45 * time.Second, WaitMax: 10 * time.Minute, Cooldown: 60 * time.Second,
	}
	for _, f := range tweak {
		f(d)
	}
	e := &env{fake: fake, deps: d}
	srv := mcpserver.New("test", []tools.Toolset{d})
	c, err := client.NewInProcessClientWithOptions(srv, copts...)
	if err != nil {
		t.Fatal(err)
	}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			msg, _ := n.Params.AdditionalFields["message"].(string)
			e.mu.Lock()
			e.progress = append(e.progress, msg)
			e.mu.Unlock()
		}
	})
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "bw-test", Version: "0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		if err := d.Drain(context.Background()); err != nil {
			t.Errorf("drain: %v", err)
		}
	})
	e.client = c
	return e
}

// inBubble runs f with virtual time that starts at the real time (local
// handles carry dates).
func inBubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	now := time.Now()
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(time.Until(now))
		f(t)
	})
}

func (e *env) call(t *testing.T, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	return e.callCtx(context.Background(), t, name, args)
}

func (e *env) callCtx(ctx context.Context, t *testing.T, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	req.Params.Meta = &mcp.Meta{ProgressToken: "p"}
	res, err := e.client.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("call %s: %v", name, err)
	}
	return res
}

func (e *env) progressMessages() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.progress...)
}

func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func view(t *testing.T, res *mcp.CallToolResult) betterwaifu.GenerationView {
	t.Helper()
	var v betterwaifu.GenerationView
	b, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("structuredContent %s: %v", b, err)
	}
	return v
}

func mustOK(t *testing.T, res *mcp.CallToolResult) {
	t.Helper()
	if res.IsError || res.StructuredContent == nil {
		t.Fatalf("unexpected result (isError %v): %s", res.IsError, text(res))
	}
}

func mustError(t *testing.T, res *mcp.CallToolResult, wants ...string) {
	t.Helper()
	if !res.IsError {
		t.Fatalf("expected an isError result, got: %s", text(res))
	}
	for _, w := range wants {
		if !strings.Contains(text(res), w) {
			t.Errorf("error %q does not mention %q", text(res), w)
		}
	}
}

// gen is a generate call's arguments.
func gen(prompt string, extra ...any) map[string]any {
	args := map[string]any{"prompt": prompt, "model_version_id": 814910}
	for i := 0; i+1 < len(extra); i += 2 {
		args[extra[i].(string)] = extra[i+1]
	}
	return args
}
