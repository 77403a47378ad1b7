package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/calltrace"
)

// traceCanary is a caller's BetterPrompt key: no trace line may hold it,
// even when an agent pastes it into an argument.
const traceCanary = "bp_TRACECANARY_5f0c9e1d2b7a4c68"

// headerTransport adds headers to every request.
type headerTransport struct {
	headers map[string]string
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.headers {
		r.Header.Set(k, v)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// readTrace decodes every line of a trace strictly: a field the README
// does not document fails.
func readTrace(t *testing.T, path string) ([]calltrace.Entry, []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var entries []calltrace.Entry
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		dec := json.NewDecoder(bytes.NewReader(sc.Bytes()))
		dec.DisallowUnknownFields()
		var e calltrace.Entry
		if err := dec.Decode(&e); err != nil {
			t.Fatalf("trace line %q: %v", sc.Text(), err)
		}
		entries = append(entries, e)
	}
	return entries, raw
}

// Over HTTP with callers' own keys: a line per call, with the episode the
// caller named, what the call did upstream, and never the key.
func TestTraceOverHTTP(t *testing.T) {
	prompts, err := fakeapi.LoadCatalogue(os.DirFS("../testdata/catalogue"))
	if err != nil {
		t.Fatal(err)
	}
	bp := fakeapi.New(fakeapi.Options{Catalogue: prompts, Keys: map[string]fakeapi.Key{traceCanary: {Credits: 1000}},
		SyncWindow: 3 * time.Second, TimeScale: 0.01})
	bpURL := serveLoopback(t, bp) + "/v1"
	trace := filepath.Join(t.TempDir(), "trace.jsonl")
	p := start(t, []string{"--transport", "http", "--addr", "127.0.0.1:0", "--per-request-keys", "--base-url", bpURL,
		"--trace", trace, "--log-format", "json"})
	var endpoint string
	select {
	case endpoint = <-p.url:
	case <-time.After(20 * time.Second):
		t.Fatalf("the server did not report its address:\n%s", p.logs())
	}
	hc := &http.Client{Transport: headerTransport{map[string]string{
		"X-BetterPrompt-Api-Key": traceCanary, "X-Bpmcp-Episode": "episode-7"}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "trace-test", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cs.Close() }()
	calls := []struct {
		tool string
		args map[string]any
	}{
		{"search_prompts", map[string]any{"query": "email " + traceCanary}}, // a key pasted by the agent
		{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "wait_seconds": 30, "inputs": map[string]any{
			"textInputs": map[string]any{"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "We halve your cloud bill."}}}},
		{"get_prompt", map[string]any{"prompt_id": "00000000-0000-4000-8000-000000000000"}}, // no such prompt
	}
	for _, c := range calls {
		if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args}); err != nil {
			t.Fatalf("%s: %v", c.tool, err)
		}
	}
	entries, raw := readTrace(t, trace)
	if bytes.Contains(raw, []byte(traceCanary)) {
		t.Fatalf("the trace holds the caller's key:\n%s", raw)
	}
	if len(entries) != len(calls) {
		t.Fatalf("%d trace lines for %d calls:\n%s", len(entries), len(calls), raw)
	}
	for i, e := range entries {
		if e.Tool != calls[i].tool || e.Episode != "episode-7" || e.Time.IsZero() || e.DurationMS <= 0 || e.UpstreamRequests < 1 || len(e.Arguments) == 0 {
			t.Errorf("line %d: %+v", i+1, e)
		}
	}
	if run := entries[1]; run.Outcome != "ok" || run.IsError || run.Status != "succeeded" || run.RunID == "" ||
		run.Credits == nil || *run.Credits <= 0 || run.UpstreamRequests < 2 {
		t.Errorf("run_prompt's line: %+v", run)
	}
	if miss := entries[2]; !miss.IsError || miss.Outcome != "tool_error" || miss.Error == "" {
		t.Errorf("the failed call's line: %+v", miss)
	}
	if !strings.Contains(string(entries[1].Arguments), `"company_name":"Acme"`) {
		t.Errorf("run_prompt's arguments: %s", entries[1].Arguments)
	}

	// The README's example script sums it per episode.
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("python3 is needed to check docs/trace-summary.py")
	}
	out, err := exec.Command(python, "../docs/trace-summary.py", trace).CombinedOutput()
	if err != nil {
		t.Fatalf("docs/trace-summary.py: %v\n%s", err, out)
	}
	want := fmt.Sprintf("episode-7 %d 1 1 %d %d", len(calls), *entries[1].Credits,
		entries[0].UpstreamRequests+entries[1].UpstreamRequests+entries[2].UpstreamRequests)
	if got := strings.Join(strings.Fields(string(out)), " "); !strings.Contains(got, want) {
		t.Errorf("docs/trace-summary.py printed:\n%s\nwant a row %q", out, want)
	}
}

// Over stdio (the sandbox): a line per call, in the session "stdio",
// without an episode; a balance is not a charge.
func TestTraceOverStdio(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace.jsonl")
	cmd := exec.Command(binary, append(append([]string{}, sandboxArgs...), "--trace", trace)...)
	cmd.Env = cleanEnv()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "trace-test", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_credits", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	_ = cs.Close()
	entries, raw := readTrace(t, trace)
	if len(entries) != 1 || entries[0].Tool != "get_credits" || entries[0].Session != "stdio" || entries[0].Episode != "" ||
		entries[0].IsError || entries[0].UpstreamRequests < 1 || entries[0].Credits != nil {
		t.Errorf("trace over stdio:\n%s", raw)
	}
}
