package e2e

import (
	"context"
	"net/http"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// episodeClient connects to the sandbox at endpoint as episode id.
func episodeClient(t *testing.T, ctx context.Context, endpoint, id string) *mcp.ClientSession {
	t.Helper()
	headers := map[string]string{}
	if id != "" {
		headers["X-Bpmcp-Episode"] = id
	}
	hc := &http.Client{Transport: headerTransport{headers}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "episode-" + id, Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// creditsLeft is what get_credits says through cs.
func creditsLeft(t *testing.T, ctx context.Context, cs *mcp.ClientSession) float64 {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_credits", Arguments: map[string]any{}})
	if err != nil || res.IsError {
		t.Fatalf("get_credits: %v %s", err, textOf(res))
	}
	m, _ := res.StructuredContent.(map[string]any)
	n, _ := m["credits"].(float64)
	return n
}

// In the sandbox, each X-Bpmcp-Episode works on an account of its own:
// two episodes running the same prompt at once each pay from their own
// credits and see only their own runs; the sandbox's own account is
// untouched.
func TestSandboxEpisodesAreIsolated(t *testing.T) {
	endpoint := startHTTP(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	a, b := episodeClient(t, ctx, endpoint, "a"), episodeClient(t, ctx, endpoint, "b")
	runArgs := map[string]any{"prompt_id": coldEmailPrompt, "wait_seconds": 30, "inputs": map[string]any{
		"textInputs": map[string]any{"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "We halve your cloud bill."}}}
	var wg sync.WaitGroup
	runs := map[string]map[string]any{}
	var mu sync.Mutex
	for name, cs := range map[string]*mcp.ClientSession{"a": a, "b": b} {
		wg.Go(func() {
			res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_prompt", Arguments: runArgs})
			if err != nil || res.IsError {
				t.Errorf("episode %s: run_prompt: %v %s", name, err, textOf(res))
				return
			}
			mu.Lock()
			runs[name], _ = res.StructuredContent.(map[string]any)
			mu.Unlock()
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for name, cs := range map[string]*mcp.ClientSession{"a": a, "b": b} {
		run := runs[name]
		if run["status"] != "succeeded" {
			t.Fatalf("episode %s: run %+v", name, run)
		}
		charged := run["credits"].(float64)
		left := creditsLeft(t, ctx, cs)
		if left != 10000-charged {
			t.Errorf("episode %s: %v credits left after a run of %v; want its own 10000 less its own run", name, left, charged)
		}
	}
	// A run of one episode is not another's.
	res, err := b.CallTool(ctx, &mcp.CallToolParams{Name: "get_run", Arguments: map[string]any{"run_id": runs["a"]["run_id"], "wait_seconds": 0}})
	if err != nil || !res.IsError {
		t.Errorf("episode b read episode a's run: %v %s", err, textOf(res))
	}
	t.Logf("episode b asking for episode a's run: %s", textOf(res))
	// A new episode, and the sandbox's own account, start full.
	for _, id := range []string{"c", ""} {
		cs := episodeClient(t, ctx, endpoint, id)
		if left := creditsLeft(t, ctx, cs); left != 10000 {
			t.Errorf("episode %q starts with %v credits, want 10000", id, left)
		}
	}
}

// --sandbox-seed makes a fresh sandbox answer the same calls with the same
// run ids; another seed, other ids.
func TestSandboxSeedRepeatsRunIDs(t *testing.T) {
	runID := func(seed string) string {
		cmd := exec.Command(binary, append(append([]string{}, sandboxArgs...), "--sandbox-seed", seed)...)
		cmd.Env = cleanEnv()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cs, err := mcp.NewClient(&mcp.Implementation{Name: "seed", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cs.Close() }()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_prompt", Arguments: map[string]any{
			"prompt_id": coldEmailPrompt, "wait_seconds": 30, "inputs": map[string]any{"textInputs": map[string]any{
				"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "We halve your cloud bill."}}}})
		if err != nil || res.IsError {
			t.Fatalf("run_prompt: %v %s", err, textOf(res))
		}
		id, _ := res.StructuredContent.(map[string]any)["run_id"].(string)
		return id
	}
	first, again, other := runID("42"), runID("42"), runID("43")
	if first == "" || first != again || first == other {
		t.Errorf("run ids with seeds 42, 42, 43: %q %q %q; want the first two equal and the third different", first, again, other)
	}
}
