package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
)

const recordKey = "bp_RECORDCANARY_0c4f5e6a7b8d9e10"

// replayCalls are the calls recorded once and replayed.
var replayCalls = []struct {
	tool string
	args map[string]any
}{
	{"search_prompts", map[string]any{"query": "email"}},
	{"get_prompt", map[string]any{"prompt_id": coldEmailPrompt}},
	{"run_prompt", map[string]any{"prompt_id": coldEmailPrompt, "wait_seconds": 30, "inputs": map[string]any{
		"textInputs": map[string]any{"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "We halve your cloud bill."}}}},
	{"get_credits", map[string]any{}},
}

// callAll makes replayCalls through cs and returns each result as JSON
// (its content, structured content and isError).
func callAll(t *testing.T, ctx context.Context, cs *mcp.ClientSession) []string {
	t.Helper()
	var out []string
	for _, c := range replayCalls {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: c.tool, Arguments: c.args})
		if err != nil {
			t.Fatalf("%s: %v", c.tool, err)
		}
		if res.IsError {
			t.Fatalf("%s: %s", c.tool, textOf(res))
		}
		b, _ := json.Marshal(struct {
			Content    []mcp.Content
			Structured any
			IsError    bool
		}{res.Content, res.StructuredContent, res.IsError})
		out = append(out, string(b))
	}
	return out
}

func stdioSession(t *testing.T, ctx context.Context, env []string, args ...string) *mcp.ClientSession {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(), env...)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "replay-test", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// A session recorded against the API (the fake standing in for it)
// replays to identical tool results over stdio and, for two episodes at
// once, over HTTP; a call with no recording is an isError that names it,
// and a replay sends nothing to the API.
func TestRecordThenReplay(t *testing.T) {
	prompts, err := fakeapi.LoadCatalogue(os.DirFS("../testdata/catalogue"))
	if err != nil {
		t.Fatal(err)
	}
	bp := fakeapi.New(fakeapi.Options{Catalogue: prompts, Keys: map[string]fakeapi.Key{recordKey: {Credits: 1000}},
		SyncWindow: 3 * time.Second, TimeScale: 0.01})
	bpURL := serveLoopback(t, bp) + "/v1"
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	rec := stdioSession(t, ctx, []string{"BETTERPROMPT_API_KEY=" + recordKey}, "--base-url", bpURL, "--record", dir)
	recorded := callAll(t, ctx, rec)
	imageURL := runImage(t, ctx, rec)
	_ = rec.Close()

	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) < len(replayCalls) {
		t.Fatalf("%d interactions recorded for %d calls", len(files), len(replayCalls))
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if strings.Contains(string(b), recordKey) {
			t.Fatalf("%s holds the key", f)
		}
	}
	sent := len(bp.Requests())

	// Over stdio, with no key and the API's address unknown to it.
	rp := stdioSession(t, ctx, nil, "--replay", dir, "--base-url", bpURL)
	replayed := callAll(t, ctx, rp)
	for i := range recorded {
		if replayed[i] != recorded[i] {
			t.Errorf("%s replayed differently:\nrecorded %s\nreplayed %s", replayCalls[i].tool, recorded[i], replayed[i])
		}
	}
	// The image the run made, downloaded when recorded (its link expires),
	// served from the replay's own address.
	replayedURL := runImage(t, ctx, rp)
	if replayedURL == imageURL || !strings.Contains(replayedURL, "/media/") {
		t.Errorf("the replayed image is at %s (recorded at %s); want the local copy", replayedURL, imageURL)
	}
	if resp, err := http.Get(replayedURL); err != nil || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
		t.Errorf("the replayed image %s: %v %+v", replayedURL, err, resp)
	} else {
		_ = resp.Body.Close()
	}
	res, err := rp.CallTool(ctx, &mcp.CallToolParams{Name: "search_prompts", Arguments: map[string]any{"query": "zebra"}})
	if err != nil || !res.IsError || !strings.HasPrefix(textOf(res), "Replay: no recording of GET") || !strings.Contains(textOf(res), "zebra") ||
		strings.Contains(textOf(res), "bug") {
		t.Errorf("a call with no recording: %v %s", err, textOf(res))
	}
	_ = rp.Close()

	// Over HTTP, two episodes at once, each from the start of the cassette.
	endpoint := startHTTPWith(t, "--replay", dir, "--base-url", bpURL)
	var wg sync.WaitGroup
	for _, ep := range []string{"one", "two"} {
		wg.Go(func() {
			hc := &http.Client{Transport: headerTransport{map[string]string{"X-Bpmcp-Episode": ep}}}
			cs, err := mcp.NewClient(&mcp.Implementation{Name: ep, Version: "1"}, nil).
				Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}, nil)
			if err != nil {
				t.Error(err)
				return
			}
			defer func() { _ = cs.Close() }()
			got := callAll(t, ctx, cs)
			for i := range recorded {
				if got[i] != recorded[i] {
					t.Errorf("episode %s: %s replayed differently:\nrecorded %s\nreplayed %s", ep, replayCalls[i].tool, recorded[i], got[i])
				}
			}
		})
	}
	wg.Wait()
	if n := len(bp.Requests()); n != sent {
		t.Errorf("the replays sent %d requests to the API", n-sent)
	}
}

// startHTTPWith starts the server over HTTP with args (no sandbox).
func startHTTPWith(t *testing.T, args ...string) string {
	t.Helper()
	p := start(t, append([]string{"--transport", "http", "--addr", "127.0.0.1:0", "--log-format", "json"}, args...))
	select {
	case u := <-p.url:
		return u
	case <-time.After(20 * time.Second):
		t.Fatalf("the server did not report its address:\n%s", p.logs())
		return ""
	}
}

// runImage runs the sandbox catalogue's image prompt through cs and returns
// its first image's URL.
func runImage(t *testing.T, ctx context.Context, cs *mcp.ClientSession) string {
	t.Helper()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_prompt", Arguments: map[string]any{
		"prompt_version_id": appIconVersion, "wait_seconds": 30,
		"inputs": map[string]any{"textInputs": map[string]any{"app_concept": "Zap", "style": "clay"}}}})
	if err != nil || res.IsError {
		t.Fatalf("the image run: %v %s", err, textOf(res))
	}
	var run struct {
		Outputs []struct {
			Type string `json:"type"`
			Data string `json:"data"`
		} `json:"outputs"`
	}
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &run)
	for _, o := range run.Outputs {
		if o.Type == "image" {
			return o.Data
		}
	}
	t.Fatalf("the image run has no image: %s", b)
	return ""
}

// A replay sends nothing anywhere, even to BetterWaifu when the cassette
// holds none of its calls and a caller brings its own key
// (--per-request-keys): the call is a miss, not a request to the API.
func TestReplayWithoutBetterWaifuSendsNothing(t *testing.T) {
	const callerKey = "bw_REPLAYCALLERCANARY_31415"
	var hits atomic.Int32
	bwURL := serveLoopback(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"username":"live","credits":5}`))
	})) + "/api/v1"
	dir := t.TempDir()
	in := `{"seq":1,"api":"betterprompt","method":"GET","path":"/v1/me","status":200,"response_body":{"status":"SUCCESS","data":{}}}`
	if err := os.WriteFile(filepath.Join(dir, "000001-GET-v1-me.json"), []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	endpoint := startHTTPWith(t, "--replay", dir, "--per-request-keys", "--betterwaifu-base-url", bwURL)
	hc := &http.Client{Transport: headerTransport{map[string]string{"X-BetterWaifu-Api-Key": callerKey}}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bw", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cs.Close() }()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "betterwaifu_get_account", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the replay sent %d requests to BetterWaifu with the caller's key", n)
	}
	if !res.IsError || !strings.Contains(textOf(res), "no recording of GET") {
		t.Errorf("a BetterWaifu call with no recording: isError %v, %s", res.IsError, textOf(res))
	}
}
