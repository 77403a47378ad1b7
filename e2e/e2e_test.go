// Package e2e drives the built bpmcp binary with the official MCP Go SDK as
// the client, over stdio and Streamable HTTP, in the legacy (2025-11-25) and
// modern (2026-07-28) protocol eras, against the built-in sandbox. Using a
// client that is not mcp-go keeps the tests from sharing the server's
// misunderstandings of the protocol.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bpmcp-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "bpmcp")
	build := exec.Command("go", "build", "-o", binary, "..")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build the server:", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

const (
	coldEmailPrompt  = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01"
	coldEmailVersion = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"
	appIconVersion   = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f8a999"
	deepResearchVer  = "5326247b-9496-4564-8298-35f19a183ef2"
	failingPrompt    = "415be72d-145a-4112-9883-dffddb2efd29"
)

// sandboxArgs run the sandbox five times faster than real time: the slow
// research prompt (30 s) then takes 6 s.
var sandboxArgs = []string{"--sandbox", "--sandbox-time-scale", "0.2", "--log-format", "json", "--log-level", "debug"}

type progressLog struct {
	mu     sync.Mutex
	values []float64
	msgs   []string
}

func (p *progressLog) add(v float64, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.values = append(p.values, v)
	p.msgs = append(p.msgs, msg)
}

func newClient(progress *progressLog) *mcp.Client {
	return mcp.NewClient(&mcp.Implementation{Name: "bpmcp-e2e", Version: "0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			progress.add(r.Params.Progress, r.Params.Message)
		},
	})
}

// startHTTP starts the binary over HTTP on a free loopback port and returns
// the MCP endpoint URL.
func startHTTP(t *testing.T, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	args := append(append([]string{"--transport", "http", "--addr", "127.0.0.1:0"}, sandboxArgs...), extra...)
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = cleanEnv()
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	urls := make(chan string, 1)
	var logs bytes.Buffer
	var logsMu sync.Mutex
	go func() {
		re := regexp.MustCompile(`http://127\.0\.0\.1:\d+/mcp`)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logsMu.Lock()
			logs.WriteString(sc.Text() + "\n")
			logsMu.Unlock()
			if u := re.FindString(sc.Text()); u != "" && strings.Contains(sc.Text(), "serving MCP") {
				select {
				case urls <- u:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		logsMu.Lock()
		defer logsMu.Unlock()
		if t.Failed() {
			t.Logf("server stderr:\n%s", logs.String())
		}
	})
	select {
	case u := <-urls:
		return u
	case <-time.After(20 * time.Second):
		t.Fatal("the HTTP server did not report its address")
		return ""
	}
}

// cleanEnv keeps the server from picking up a developer's real key.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BETTERPROMPT_") && !strings.HasPrefix(kv, "BETTERWAIFU_") && !strings.HasPrefix(kv, "BPMCP_") {
			env = append(env, kv)
		}
	}
	return env
}

func connect(t *testing.T, transport, era string, progress *progressLog) *mcp.ClientSession {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var tr mcp.Transport
	switch transport {
	case "stdio":
		cmd := exec.Command(binary, sandboxArgs...)
		cmd.Env = cleanEnv()
		cmd.Stderr = io.Discard
		tr = &mcp.CommandTransport{Command: cmd}
	case "http":
		tr = &mcp.StreamableClientTransport{Endpoint: startHTTP(t)}
	}
	var opts *mcp.ClientSessionOptions
	if era != "" {
		opts = &mcp.ClientSessionOptions{ProtocolVersion: era}
	}
	cs, err := newClient(progress).Connect(ctx, tr, opts)
	if err != nil {
		t.Fatalf("connect over %s (era %q): %v", transport, era, err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// outputSchemas compiles every tool's outputSchema with an independent
// validator.
func outputSchemas(t *testing.T, tools []*mcp.Tool) map[string]*jsonschema.Schema {
	t.Helper()
	out := make(map[string]*jsonschema.Schema)
	for _, tool := range tools {
		b, err := json.Marshal(tool.OutputSchema)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		url := "mem://" + tool.Name + ".json"
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
		s, err := c.Compile(url)
		if err != nil {
			t.Fatalf("output schema of %s: %v", tool.Name, err)
		}
		out[tool.Name] = s
	}
	return out
}

type caller struct {
	t       *testing.T
	cs      *mcp.ClientSession
	schemas map[string]*jsonschema.Schema
}

// call invokes a tool, checks structuredContent against the outputSchema
// and that text content accompanies it, and returns the structured value.
func (c *caller) call(name string, args map[string]any, progressToken any) (*mcp.CallToolResult, map[string]any) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	params := &mcp.CallToolParams{Name: name, Arguments: args}
	if progressToken != nil {
		params.SetProgressToken(progressToken)
	}
	res, err := c.cs.CallTool(ctx, params)
	if err != nil {
		c.t.Fatalf("%s: %v", name, err)
	}
	if len(res.Content) == 0 {
		c.t.Errorf("%s: no content", name)
	}
	if res.StructuredContent == nil {
		if !res.IsError {
			c.t.Errorf("%s: no structuredContent", name)
		}
		return res, nil
	}
	b, _ := json.Marshal(res.StructuredContent)
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.schemas[name].Validate(inst); err != nil {
		c.t.Errorf("%s: structuredContent does not match the outputSchema: %v\n%s", name, err, b)
	}
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return res, m
}

func textOf(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func TestEveryToolOverEveryTransportAndEra(t *testing.T) {
	for _, transport := range []string{"stdio", "http"} {
		for _, era := range []string{"2025-11-25", ""} {
			name := transport + "/legacy"
			if era == "" {
				name = transport + "/modern"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				progress := &progressLog{}
				cs := connect(t, transport, era, progress)
				want := era
				if want == "" {
					want = "2026-07-28"
				}
				if v := cs.InitializeResult(); v == nil || v.ProtocolVersion != want {
					t.Fatalf("negotiated protocol %+v, want %s", v, want)
				}
				if icons := cs.InitializeResult().ServerInfo.Icons; len(icons) == 0 || !strings.HasPrefix(icons[0].Source, "data:image/svg+xml;base64,") {
					t.Errorf("server icons %+v", icons)
				}
				list, err := cs.ListTools(context.Background(), nil)
				if err != nil {
					t.Fatal(err)
				}
				if len(list.Tools) != 10 { // BetterPrompt's six, BetterWaifu's four (the sandbox serves both)
					t.Fatalf("%d tools", len(list.Tools))
				}
				c := &caller{t: t, cs: cs, schemas: outputSchemas(t, list.Tools)}
				exerciseTools(t, c, progress)
				exerciseBetterWaifu(t, c)
			})
		}
	}
}

// exerciseResources lists the resource templates and reads a prompt as a
// resource, as a host that attaches resources would.
func exerciseResources(t *testing.T, c *caller) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := c.cs.ListResourceTemplates(ctx, nil)
	if err != nil || len(list.ResourceTemplates) < 2 {
		t.Fatalf("resources/templates/list: %v %+v", err, list)
	}
	read, err := c.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: "betterprompt://prompts/" + coldEmailPrompt})
	if err != nil || len(read.Contents) != 1 || read.Contents[0].MIMEType != "application/json" ||
		!strings.Contains(read.Contents[0].Text, coldEmailVersion) {
		t.Fatalf("resources/read of a prompt: %v %+v", err, read)
	}
}

// exerciseBetterWaifu calls the four BetterWaifu tools of the sandbox: the
// models, the account, a generation whose image is a real WebP file, and
// following it again; structuredContent is checked against each tool's
// outputSchema by c.
func exerciseBetterWaifu(t *testing.T, c *caller) {
	res, out := c.call("betterwaifu_list_models", map[string]any{}, nil)
	models, _ := out["models"].([]any)
	if res.IsError || len(models) == 0 || out["count"] != float64(len(models)) {
		t.Fatalf("betterwaifu_list_models: %s", textOf(res))
	}
	if res, out = c.call("betterwaifu_get_account", map[string]any{}, nil); res.IsError || out["subscription"] == nil {
		t.Fatalf("betterwaifu_get_account: %s", textOf(res))
	}
	id := models[0].(map[string]any)["id"]
	res, out = c.call("betterwaifu_generate", map[string]any{"prompt": "1girl, solo, e2e", "model_version_id": id, "wait_seconds": 30}, "bw")
	images, _ := out["images"].([]any)
	if res.IsError || out["status"] != "succeeded" || len(images) != 1 {
		t.Fatalf("betterwaifu_generate: %s", textOf(res))
	}
	url, _ := images[0].(map[string]any)["url"].(string)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || len(body) < 12 || string(body[:4]) != "RIFF" || string(body[8:12]) != "WEBP" {
		t.Errorf("image %s: HTTP %d, %d bytes, not a WebP file", url, resp.StatusCode, len(body))
	}
	// inline_images embeds a preview of the WebP image, as a JPEG.
	res, out = c.call("betterwaifu_get_generation", map[string]any{"generation_id": out["generation_id"], "wait_seconds": 0,
		"inline_images": true}, nil)
	if res.IsError || out["status"] != "succeeded" {
		t.Errorf("betterwaifu_get_generation: %s", textOf(res))
	}
	previews := 0
	for _, ct := range res.Content {
		if im, ok := ct.(*mcp.ImageContent); ok && im.MIMEType == "image/jpeg" && len(im.Data) > 0 {
			previews++
		}
	}
	if previews != 1 {
		t.Errorf("betterwaifu_get_generation with inline_images: %d previews\n%s", previews, textOf(res))
	}
}

func exerciseTools(t *testing.T, c *caller, progress *progressLog) {
	res, out := c.call("search_prompts", map[string]any{"query": "cold email"}, nil)
	if res.IsError || !strings.Contains(textOf(res), coldEmailPrompt) {
		t.Fatalf("search_prompts: %s", textOf(res))
	}
	if prompts, _ := out["prompts"].([]any); len(prompts) == 0 {
		t.Fatalf("search_prompts: no prompts")
	}

	// Video prompts are found with modality "video"; their rows carry no
	// price (and the output schema, which the SDK checks, allows that).
	res, out = c.call("search_prompts", map[string]any{"query": "clip", "modality": "video"}, nil)
	videos, _ := out["prompts"].([]any)
	if res.IsError || len(videos) == 0 {
		t.Fatalf("search_prompts for video: %s", textOf(res))
	}
	for _, v := range videos {
		if row, _ := v.(map[string]any); row["modality"] != "video" {
			t.Errorf("video search row %v", row)
		}
	}
	// A prompt is reached by its slug as well as by its id.
	res, out = c.call("get_prompt", map[string]any{"prompt_id": "cold-email-opener"}, nil)
	if res.IsError || out["prompt_version_id"] != coldEmailVersion {
		t.Fatalf("get_prompt by slug: %s", textOf(res))
	}

	res, out = c.call("get_prompt", map[string]any{"prompt_id": coldEmailPrompt}, nil)
	if res.IsError || out["prompt_version_id"] != coldEmailVersion {
		t.Fatalf("get_prompt: %s", textOf(res))
	}
	exerciseResources(t, c)
	example := out["example_inputs"]
	// The price, type and run options are there before anything is spent.
	if out["modality"] != "text" || out["estimated_credits"] != float64(40) || out["run_options_schema"] == nil {
		t.Errorf("get_prompt price/type/run options: modality %v, estimated_credits %v, run_options_schema %v",
			out["modality"], out["estimated_credits"], out["run_options_schema"])
	}
	// A video prompt by its page link, with its price.
	res, out = c.call("get_prompt", map[string]any{"prompt_id": "https://betterprompt.me/prompts/doorbell-camera-hello"}, nil)
	if res.IsError || out["modality"] != "video" || out["estimated_credits"] != float64(400) {
		t.Errorf("get_prompt of a video prompt by link: %s", textOf(res))
	}
	// An option no text model takes is refused before anything is sent.
	res, _ = c.call("run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": example,
		"run_options": map[string]any{"aspectRatio": "3:4"}}, nil)
	if !res.IsError || !strings.Contains(textOf(res), "run_options.aspectRatio") {
		t.Errorf("run_options for another type of model: %s", textOf(res))
	}

	// The example inputs get_prompt offers are accepted by run_prompt.
	res, out = c.call("run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": example}, nil)
	if res.IsError || out["status"] != "succeeded" {
		t.Fatalf("run_prompt: %s", textOf(res))
	}
	if sent, _ := out["inputs_sent"].(map[string]any); sent == nil || sent["textInputs"] == nil {
		t.Errorf("run_prompt: no inputs_sent in %v", out)
	}
	runID, _ := out["run_id"].(string)
	res, out = c.call("get_run", map[string]any{"run_id": runID, "wait_seconds": 0}, nil)
	if res.IsError || out["status"] != "succeeded" || out["run_id"] != runID {
		t.Fatalf("get_run: %s", textOf(res))
	}

	res, _ = c.call("run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": map[string]any{"textInputs": map[string]any{}}}, nil)
	if !res.IsError || !strings.Contains(textOf(res), "company_name") {
		t.Errorf("invalid inputs: %s", textOf(res))
	}

	res, out = c.call("run_prompt", map[string]any{"prompt_version_id": appIconVersion,
		"inputs": map[string]any{"textInputs": map[string]any{"app_concept": "a plant tracker", "style": "clay"}}}, nil)
	if res.IsError || out["status"] != "succeeded" {
		t.Fatalf("image run: %s", textOf(res))
	}
	links := 0
	for _, ct := range res.Content {
		if l, ok := ct.(*mcp.ResourceLink); ok {
			links++
			if l.MIMEType != "image/png" {
				t.Errorf("resource link MIME type %q", l.MIMEType)
			}
			resp, err := http.Get(l.URI)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.HasPrefix(body, []byte("\x89PNG")) {
				t.Errorf("image URL %s: HTTP %d, %d bytes", l.URI, resp.StatusCode, len(body))
			}
		}
	}
	if links == 0 {
		t.Error("image run: no resource_link")
	}

	res, _ = c.call("run_prompt", map[string]any{"prompt_id": failingPrompt, "inputs": map[string]any{"textInputs": map[string]any{"ticker": "ACME"}}}, nil)
	if !res.IsError || !strings.Contains(textOf(res), "refused") {
		t.Errorf("failing run: %s", textOf(res))
	}

	// A 6 s run with a progress token: notifications arrive while waiting.
	res, out = c.call("run_prompt", map[string]any{"prompt_version_id": deepResearchVer,
		"inputs": map[string]any{"textInputs": map[string]any{"question": "Is fusion near?", "depth": "overview"}}}, "progress-1")
	if res.IsError || out["status"] != "succeeded" {
		t.Fatalf("slow run: %s", textOf(res))
	}
	time.Sleep(200 * time.Millisecond) // mcp-go may deliver the last notification after the result
	progress.mu.Lock()
	if len(progress.values) == 0 {
		t.Error("no progress notification during a 6 s run")
	}
	for i := 1; i < len(progress.values); i++ {
		if progress.values[i] <= progress.values[i-1] {
			t.Errorf("progress did not increase: %v", progress.values)
		}
	}
	progress.mu.Unlock()

	res, out = c.call("get_credits", map[string]any{}, nil)
	if res.IsError {
		t.Fatalf("get_credits: %s", textOf(res))
	}
	if credits, _ := out["credits"].(float64); credits <= 0 {
		t.Errorf("credits = %v", out["credits"])
	}
}

// The HTTP endpoint refuses foreign browser origins and answers /healthz.
func TestHTTPOriginAndHealth(t *testing.T) {
	endpoint := startHTTP(t, "--allowed-origins", "http://localhost:6274")
	post := func(origin string) int {
		req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"probe","version":"0"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("http://evil.example"); got != http.StatusForbidden {
		t.Errorf("foreign Origin: HTTP %d, want 403", got)
	}
	if got := post("http://localhost:6274"); got != http.StatusOK {
		t.Errorf("allowed Origin: HTTP %d, want 200", got)
	}
	if got := post(""); got != http.StatusOK {
		t.Errorf("no Origin: HTTP %d, want 200", got)
	}
	resp, err := http.Get(strings.TrimSuffix(endpoint, "/mcp") + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz: HTTP %d", resp.StatusCode)
	}
}
