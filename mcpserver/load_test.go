package mcpserver

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/goleak"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

var load = flag.Bool("load", false, "run the HTTP load test (go test ./mcpserver -run TestLoad -load -v)")

// TestLoad: 200 concurrent HTTP clients, each with its own BetterPrompt key
// (multi-tenant mode), make 50 mixed tool calls each. Every call must
// succeed and no goroutine may be left behind. It reports latency
// percentiles and the process's peak RSS (server, fake API and clients share
// the process). Rate limits are off on both sides so that the server, not
// the 5 requests/second budget, is what is measured.
func TestLoad(t *testing.T) {
	if !*load {
		t.Skip("load test: run with go test ./mcpserver -run TestLoad -load -v")
	}
	const clients, callsEach = 200, 50
	cat, err := fakeapi.LoadCatalogueDir("../testdata/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	keys := make(map[string]fakeapi.Key, clients)
	for i := range clients {
		keys[fmt.Sprintf("bp_load_%03d", i)] = fakeapi.Key{Credits: 1 << 30}
	}
	fake, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: cat, Keys: keys, RateLimit: -1, TimeScale: 0.01})
	deps := &betterprompt.Toolset{
		Client:         bpapi.New(bpapi.Options{BaseURL: base, RateLimit: -1}),
		PerRequestKeys: true,
		Wait:           betterprompt.WaitConfig{Default: 30 * time.Second, PollMin: 50 * time.Millisecond, PollMax: 200 * time.Millisecond},
	}
	handler, stop := NewHTTPHandler(New("load", []tools.Toolset{deps}), HTTPOptions{PerRequestKeys: true, Toolsets: []tools.Toolset{deps}})
	ts := httptest.NewServer(handler)

	type sample struct {
		tool string
		d    time.Duration
	}
	var (
		mu      sync.Mutex
		samples []sample
		errs    []string
	)
	calls := []struct {
		tool string
		args map[string]any
	}{
		{"search_prompts", map[string]any{"query": "email"}},
		{"get_prompt", map[string]any{"prompt_id": "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e04"}},
		{"get_credits", nil},
		{"run_prompt", map[string]any{"prompt_version_id": "5e8d7c6b-a4f3-4e21-9d0c-7b6a5f4e3d44",
			"inputs": map[string]any{"textInputs": map[string]any{"objective": "clicks", "platform": "linkedin"}}}},
		{"get_prompt", map[string]any{"prompt_id": "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e07"}},
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("bp_load_%03d", i)
			c, err := client.NewStreamableHttpClient(ts.URL+"/mcp", transport.WithHTTPHeaders(map[string]string{betterprompt.KeyHeader: key}))
			if err != nil {
				mu.Lock()
				errs = append(errs, err.Error())
				mu.Unlock()
				return
			}
			defer c.Close()
			ctx := context.Background()
			init := mcp.InitializeRequest{}
			init.Params.ProtocolVersion = "2025-11-25"
			if _, err := c.Initialize(ctx, init); err != nil {
				mu.Lock()
				errs = append(errs, "initialize: "+err.Error())
				mu.Unlock()
				return
			}
			for j := range callsEach {
				call := calls[(i+j)%len(calls)]
				req := mcp.CallToolRequest{}
				req.Params.Name, req.Params.Arguments = call.tool, call.args
				t0 := time.Now()
				res, err := c.CallTool(ctx, req)
				d := time.Since(t0)
				mu.Lock()
				switch {
				case err != nil:
					errs = append(errs, call.tool+": "+err.Error())
				case res.IsError:
					errs = append(errs, call.tool+": "+resultText(res))
				default:
					samples = append(samples, sample{call.tool, d})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = stop(ctx)
	ts.Close()
	_ = deps.Drain(ctx)

	if len(errs) > 0 {
		t.Errorf("%d of %d calls failed; first: %s", len(errs), clients*callsEach, errs[0])
	}
	all := make([]time.Duration, len(samples))
	byTool := map[string][]time.Duration{}
	for i, s := range samples {
		all[i] = s.d
		byTool[s.tool] = append(byTool[s.tool], s.d)
	}
	t.Logf("%d clients x %d calls = %d calls in %v (%.0f calls/s), %d errors, %d upstream requests, %d runs",
		clients, callsEach, len(samples)+len(errs), elapsed.Round(time.Millisecond),
		float64(len(samples))/elapsed.Seconds(), len(errs), len(fake.Requests()), countRuns(fake, keys))
	t.Logf("all calls: p50 %v, p99 %v", percentile(all, 50), percentile(all, 99))
	for tool, ds := range byTool {
		t.Logf("%-15s p50 %v, p99 %v (%d calls)", tool, percentile(ds, 50), percentile(ds, 99), len(ds))
	}
	t.Logf("peak RSS of the test process: %s", peakRSS())
	goleak.VerifyNone(t, goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"))
}

func countRuns(fake *fakeapi.Server, keys map[string]fakeapi.Key) int {
	n := 0
	for k := range keys {
		n += len(fake.Runs(k))
	}
	return n
}

func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*p/100)].Round(10 * time.Microsecond)
}

// peakRSS reads VmHWM, the process's peak resident set size, on Linux.
func peakRSS() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmHWM:") {
			return strings.TrimSpace(strings.TrimPrefix(line, "VmHWM:"))
		}
	}
	return "unknown"
}
