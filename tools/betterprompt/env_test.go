package betterprompt_test

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/goleak"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/redistest"
	"github.com/bpmcp/bpmcp/mcpserver"
	"github.com/bpmcp/bpmcp/state/redisstate"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

func TestMain(m *testing.M) {
	// The tests here mostly wait for simulated runs rather than compute, so
	// more of them wait at once than there are cores (-parallel still wins).
	_ = flag.Set("test.parallel", "8")
	goleak.VerifyTestMain(m,
		// The in-process client's transport keeps a reader goroutine until
		// the process ends.
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// mcp-go keeps a task for its TTL in a sleeping goroutine.
		goleak.IgnoreAnyFunction("github.com/mark3labs/mcp-go/server.(*MCPServer).scheduleTaskCleanup"),
	)
}

const testKey = "bp_test_key"

// Well-known fixtures from testdata/catalogue (see its INDEX.md).
const (
	coldEmailPrompt   = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01"
	coldEmailVersion  = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"
	adHeadlineVersion = "5e8d7c6b-a4f3-4e21-9d0c-7b6a5f4e3d44"
	channelsVersion   = "8a2b4c6d-1e3f-4a5b-9c7d-2e4f6a8b0c55"
	photoBoothVersion = "2a3b4c5d-6e7f-4081-92a3-b4c5d6e7f888"
	appIconVersion    = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f8a999"
	doorbellVersion   = "5d6e7f80-91a2-43b4-c5d6-e7f8a9b0c1bb"
	failingPrompt     = "415be72d-145a-4112-9883-dffddb2efd29"
	deepResearchVer   = "5326247b-9496-4564-8298-35f19a183ef2"
	twoVersionsPrompt = "971bdfbe-ddc4-48a1-bbd1-b33965646a88"
	olderVersion      = "14360e19-90a8-48e1-92c4-a3a99922b20e"
	legacyPrompt      = "e4bc6cf7-37c3-4be5-8e74-9b0e8a3de669"
	emptyConfigPrompt = "f217fd4f-8c5c-413e-ada4-3f6ebbce4f35"
)

// researchInputs are valid inputs of the slow deep-research prompt.
var researchInputs = map[string]any{"textInputs": map[string]any{"depth": "overview", "question": "Is nuclear fusion near?"}}

var coldEmailInputs = map[string]any{"textInputs": map[string]any{
	"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "We halve your cloud bill.",
}}

var (
	catalogueOnce sync.Once
	catalogue     []fakeapi.Prompt
	catalogueErr  error
)

func loadCatalogue(t testing.TB) []fakeapi.Prompt {
	t.Helper()
	catalogueOnce.Do(func() { catalogue, catalogueErr = fakeapi.LoadCatalogueDir("../../testdata/catalogue") })
	if catalogueErr != nil {
		t.Fatalf("load catalogue: %v", catalogueErr)
	}
	return catalogue
}

// env is one server under test: the fake API, the tools, and an in-process
// MCP client.
type env struct {
	fake   *fakeapi.Server
	deps   *betterprompt.Toolset
	srv    *server.MCPServer
	client *client.Client

	mu       sync.Mutex
	progress []mcp.JSONRPCNotification
}

// envConfig is what the options of newEnv set before anything is built.
type envConfig struct {
	fake   fakeapi.Options
	deps   *betterprompt.Toolset
	client bpapi.Options
	pipe   bool // serve the fake over pipenet: see withPipe
}

type envOption func(*envConfig)

func withSyncWindow(d time.Duration) envOption {
	return func(c *envConfig) { c.fake.SyncWindow = d }
}

func withTimeScale(s float64) envOption {
	return func(c *envConfig) { c.fake.TimeScale = s }
}

func withKey(key string) envOption {
	return func(c *envConfig) { c.client.APIKey = bpapi.APIKey(key) }
}

func withDeps(f func(*betterprompt.Toolset)) envOption {
	return func(c *envConfig) { f(c.deps) }
}

// withExclusiveKey tells the server that no other client uses the key, and
// makes it one that has run long enough that no POST of a previous
// instance can still create a run: runs found in the run list can then be
// confirmed.
func withExclusiveKey() envOption {
	return withDeps(func(d *betterprompt.Toolset) {
		d.ExclusiveKey = true
		betterprompt.UpSince(d, time.Now().Add(-time.Hour))
	})
}

func withClient(f func(*bpapi.Options)) envOption {
	return func(c *envConfig) { f(&c.client) }
}

func withFake(f func(*fakeapi.Options)) envOption {
	return func(c *envConfig) { f(&c.fake) }
}

// withPipe serves the fake over an in-memory network (fakeapi.NewPipeServer)
// instead of loopback TCP, so that the env can live in a synctest bubble
// (see inBubble): a goroutine blocked on a socket would keep the bubble's
// clock from advancing.
func withPipe() envOption {
	return func(c *envConfig) { c.pipe = true }
}

func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	cfg := envConfig{
		fake: fakeapi.Options{
			Catalogue:  loadCatalogue(t),
			Keys:       map[string]fakeapi.Key{testKey: {Credits: 100000}, "bp_lapsed_key": {Credits: 100, Lapsed: true}, "bp_poor_key": {Credits: 1}},
			SyncWindow: 2 * time.Second,
			TimeScale:  0.01,
		},
		deps: &betterprompt.Toolset{Wait: betterprompt.WaitConfig{
			Default: 5 * time.Second, Max: 30 * time.Second, CreateTimeout: 20 * time.Second,
			PollMin: 20 * time.Millisecond, PollMax: 100 * time.Millisecond, ProgressEvery: 50 * time.Millisecond,
		}},
		client: bpapi.Options{APIKey: testKey},
	}
	for _, o := range opts {
		o(&cfg)
	}
	deps, bo := cfg.deps, cfg.client
	var fake *fakeapi.Server
	if cfg.pipe {
		fake, bo.BaseURL, bo.HTTPClient = fakeapi.NewPipeServer(t, cfg.fake)
	} else {
		fake, bo.BaseURL = fakeapi.NewTestServer(t, cfg.fake)
	}
	deps.Client = bpapi.New(bo)
	if os.Getenv("BPMCP_TEST_RECORDS") == "redis" && deps.Records == nil && !cfg.pipe {
		// The whole suite on the Redis records (a synctest bubble cannot
		// reach a real server, so piped tests keep the memory store).
		deps.Records = redisstate.New(redistest.Start(t).Client(t), "").Records()
	}
	srv := mcpserver.New("test", []tools.Toolset{deps}, mcpserver.WithTasks()) // one client, as on stdio

	e := &env{fake: fake, deps: deps, srv: srv}
	e.client = connect(t, srv, deps, func(n mcp.JSONRPCNotification) {
		if n.Method == "notifications/progress" {
			e.mu.Lock()
			e.progress = append(e.progress, n)
			e.mu.Unlock()
		}
	})
	return e
}

// connect starts an in-process MCP client of srv, with onNotify (if any)
// receiving its notifications, and initializes it. When the test ends, the
// client closes and d's runs must drain.
func connect(t *testing.T, srv *server.MCPServer, d *betterprompt.Toolset, onNotify func(mcp.JSONRPCNotification)) *client.Client {
	t.Helper()
	c, err := client.NewInProcessClient(srv)
	if err != nil {
		t.Fatal(err)
	}
	if onNotify != nil {
		c.OnNotification(onNotify)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	init.Params.ClientInfo = mcp.Implementation{Name: "tools-test", Version: "0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.Drain(ctx); err != nil {
			t.Errorf("background runs did not finish: %v", err)
		}
	})
	return c
}

// inBubble runs f in a synctest bubble, where time is virtual: it advances
// only when every goroutine of the bubble waits, so tests that sleep through
// retry backoffs, Retry-After and simulated runs take no real time, and
// time.Since measures exactly what the code waited. f builds its env there
// with withPipe. The bubble's clock starts at 2000-01-01; it is moved to the
// real time first, because the code under test dates things against real
// dates (a local run handle carries its submission time and is only taken
// for one when it is later than 2026-01-01).
func inBubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	now := time.Now()
	synctest.Test(t, func(t *testing.T) {
		time.Sleep(time.Until(now))
		f(t)
	})
}

// call invokes a tool and fails the test on a protocol error.
func (e *env) call(t *testing.T, name string, args any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	return e.callCtx(ctx, t, name, args, nil)
}

func (e *env) callCtx(ctx context.Context, t *testing.T, name string, args any, progressToken any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	if progressToken != nil {
		req.Params.Meta = &mcp.Meta{ProgressToken: progressToken}
	}
	res, err := e.client.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("call %s: protocol error: %v", name, err)
	}
	return res
}

func (e *env) progressCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.progress)
}

// text joins a result's text content.
func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// structured decodes a result's structuredContent into v.
func structured(t *testing.T, res *mcp.CallToolResult, v any) {
	t.Helper()
	b, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("structuredContent %s: %v", b, err)
	}
}

func mustOK(t *testing.T, res *mcp.CallToolResult) {
	t.Helper()
	if res.IsError {
		t.Fatalf("unexpected isError result: %s", text(res))
	}
	if res.StructuredContent == nil {
		t.Fatalf("result has no structuredContent: %s", text(res))
	}
}

func mustError(t *testing.T, res *mcp.CallToolResult, wants ...string) {
	t.Helper()
	if !res.IsError {
		t.Fatalf("expected an isError result, got: %s", text(res))
	}
	msg := text(res)
	for _, w := range wants {
		if !strings.Contains(msg, w) {
			t.Errorf("error text %q does not mention %q", msg, w)
		}
	}
	for _, bad := range []string{"&{", "map[", "goroutine ", "panic", ".go:"} {
		if strings.Contains(msg, bad) {
			t.Errorf("error text leaks Go internals (%q): %s", bad, msg)
		}
	}
}
