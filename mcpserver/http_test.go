package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"go.uber.org/goleak"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/syncbuf"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

func TestMain(m *testing.M) {
	// The tests here mostly wait for simulated runs rather than compute, so
	// more of them wait at once than there are cores (-parallel still wins).
	_ = flag.Set("test.parallel", "8")
	goleak.VerifyTestMain(m,
		goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// mcp-go keeps a finished task for its TTL in a sleeping goroutine.
		goleak.IgnoreAnyFunction("github.com/mark3labs/mcp-go/server.(*MCPServer).scheduleTaskCleanup"))
}

const (
	serverKey = "bp_server_key"
	aliceKey  = "bp_alice_key"
	bobKey    = "bp_bob_key"

	deepResearchVer = "5326247b-9496-4564-8298-35f19a183ef2"
)

type httpEnv struct {
	fake      *fakeapi.Server
	deps      *betterprompt.Toolset
	url       string
	mcp       *server.MCPServer
	transport *httpTransport
}

func newHTTPEnv(t *testing.T, opts HTTPOptions) *httpEnv {
	t.Helper()
	fake, base := fakeapi.NewTestServer(t, fakeapi.Options{
		Catalogue: loadCatalogue(t), SyncWindow: 10 * time.Second, TimeScale: 0.05,
		Keys: map[string]fakeapi.Key{serverKey: {Credits: 5000}, aliceKey: {Credits: 222}, bobKey: {Credits: 333}},
	})
	deps := &betterprompt.Toolset{
		Client:         bpapi.New(bpapi.Options{BaseURL: base, APIKey: serverKey}),
		PerRequestKeys: opts.PerRequestKeys,
		Wait:           betterprompt.WaitConfig{Default: 5 * time.Second, PollMin: 20 * time.Millisecond, PollMax: 100 * time.Millisecond},
	}
	opts.Toolsets = []tools.Toolset{deps}
	srv := New("test", opts.Toolsets)
	tr := newHTTPTransport(srv, opts)
	ts := httptest.NewServer(tr.handler)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = tr.streamable.Shutdown(ctx) // ends GET streams and the idle-session sweeper
		ts.Close()
		_ = deps.Drain(ctx)
	})
	return &httpEnv{fake: fake, deps: deps, url: ts.URL + "/mcp", mcp: srv, transport: tr}
}

func loadCatalogue(t *testing.T) []fakeapi.Prompt {
	t.Helper()
	cat, err := fakeapi.LoadCatalogueDir("../testdata/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

// serving is ServeHTTP itself on a free loopback port, against a fake API
// with the catalogue and the server's key.
type serving struct {
	deps   *betterprompt.Toolset
	addr   string
	cancel context.CancelFunc // starts the shutdown
	served chan error         // ServeHTTP's result
}

func serve(t *testing.T, fo fakeapi.Options, logger *slog.Logger, opts HTTPOptions) *serving {
	t.Helper()
	fo.Catalogue = loadCatalogue(t)
	if fo.Keys == nil {
		fo.Keys = map[string]fakeapi.Key{serverKey: {Credits: 1000}}
	}
	_, base := fakeapi.NewTestServer(t, fo)
	deps := &betterprompt.Toolset{Client: bpapi.New(bpapi.Options{BaseURL: base, APIKey: serverKey}), Logger: logger}
	ctx, cancel := context.WithCancel(context.Background())
	s := &serving{deps: deps, cancel: cancel, served: make(chan error, 1)}
	opts.Addr, opts.Logger, opts.Toolsets = "127.0.0.1:0", logger, []tools.Toolset{deps}
	addrs := make(chan net.Addr, 1)
	go func() { s.served <- ServeHTTP(ctx, New("test", opts.Toolsets), opts, func(a net.Addr) { addrs <- a }) }()
	s.addr = (<-addrs).String()
	return s
}

// initializeBody is a legacy-era initialize request.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`

// post sends one raw JSON-RPC message (initialize when body is "") with the
// given headers.
func (e *httpEnv) post(t *testing.T, headers map[string]string, body string) *http.Response {
	t.Helper()
	if body == "" {
		body = initializeBody
	}
	return e.send(t, http.MethodPost, headers, body)
}

// send sends one HTTP request to the MCP endpoint; its body is closed when
// the test ends.
func (e *httpEnv) send(t *testing.T, method string, headers map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, e.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func (e *httpEnv) mcpClient(t *testing.T, headers map[string]string) *client.Client {
	t.Helper()
	return connect(t, e.url, headers)
}

// connect starts an mcp-go client on url and initializes it (legacy era);
// it is closed when the test ends.
func connect(t *testing.T, url string, headers map[string]string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(headers))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = "2025-11-25"
	init.Params.ClientInfo = mcp.Implementation{Name: "t", Version: "0"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func callTool(t *testing.T, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = name, args
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func resultText(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

func TestOriginCheck(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{AllowedOrigins: []string{"http://localhost:6274", "https://App.Example/"}})
	cases := []struct {
		origin string
		want   int
	}{
		{"", http.StatusOK},
		{"http://localhost:6274", http.StatusOK},
		{"https://app.example", http.StatusOK}, // case and trailing slash do not matter
		{"http://evil.example", http.StatusForbidden},
		{"http://localhost:6274.evil.example", http.StatusForbidden},
		{"null", http.StatusForbidden},
	}
	for _, tc := range cases {
		resp := e.post(t, map[string]string{"Origin": tc.origin}, "")
		if resp.StatusCode != tc.want {
			t.Errorf("Origin %q: HTTP %d, want %d", tc.origin, resp.StatusCode, tc.want)
		}
		if tc.want == http.StatusForbidden {
			body, _ := io.ReadAll(resp.Body)
			if !json.Valid(body) || !strings.Contains(string(body), "Origin not allowed") {
				t.Errorf("403 body %s", body)
			}
		}
	}
	// With no allow-list, every request that carries an Origin is refused.
	strict := newHTTPEnv(t, HTTPOptions{})
	if resp := strict.post(t, map[string]string{"Origin": "http://localhost:6274"}, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("empty allow-list: HTTP %d, want 403", resp.StatusCode)
	}
}

// A page from an allowed origin (the MCP Inspector's) can call the server
// from the browser: its preflight is answered without the bearer token, and
// every answer, refusals included, carries the CORS headers it needs.
func TestCORS(t *testing.T) {
	const inspector = "http://localhost:6274"
	e := newHTTPEnv(t, HTTPOptions{AllowedOrigins: []string{inspector}, AuthToken: "s3cret-token", MaxBodyBytes: 1024})
	preflight := func(origin string) *http.Response {
		return e.send(t, http.MethodOptions, map[string]string{
			"Origin":                         origin,
			"Access-Control-Request-Method":  "POST",
			"Access-Control-Request-Headers": "content-type,mcp-session-id,mcp-protocol-version,authorization", // as the Inspector sends them
			"Content-Type":                   "",
			"Accept":                         "*/*",
		}, "")
	}
	list := func(h http.Header, name string) map[string]bool {
		set := map[string]bool{}
		for _, v := range strings.Split(h.Get(name), ",") {
			set[strings.ToLower(strings.TrimSpace(v))] = true
		}
		return set
	}

	resp := preflight(inspector)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != inspector {
		t.Fatalf("preflight: HTTP %d, Access-Control-Allow-Origin %q", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	methods, headers := list(resp.Header, "Access-Control-Allow-Methods"), list(resp.Header, "Access-Control-Allow-Headers")
	for _, m := range []string{"get", "post", "delete", "options"} {
		if !methods[m] {
			t.Errorf("preflight: Access-Control-Allow-Methods %q lacks %s", resp.Header.Get("Access-Control-Allow-Methods"), m)
		}
	}
	for _, h := range []string{"content-type", "authorization", "mcp-session-id", "mcp-protocol-version", "last-event-id",
		"mcp-method", "mcp-name", strings.ToLower(betterprompt.KeyHeader), "x-bpmcp-episode"} {
		if !headers[h] {
			t.Errorf("preflight: Access-Control-Allow-Headers %q lacks %s", resp.Header.Get("Access-Control-Allow-Headers"), h)
		}
	}
	if resp.Header.Get("Access-Control-Max-Age") == "" || !list(resp.Header, "Vary")["origin"] {
		t.Errorf("preflight: Max-Age %q, Vary %q", resp.Header.Get("Access-Control-Max-Age"), resp.Header.Get("Vary"))
	}

	// Answers to the page, whether it is served or refused.
	cases := []struct {
		name    string
		headers map[string]string
		body    string
		want    int
	}{
		{"initialize", map[string]string{"Authorization": "Bearer s3cret-token"}, "", http.StatusOK},
		{"no token", nil, "", http.StatusUnauthorized},
		{"body too large", map[string]string{"Authorization": "Bearer s3cret-token"}, `{"pad":"` + strings.Repeat("x", 2048) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range cases {
		tc.headers = maps.Clone(tc.headers)
		if tc.headers == nil {
			tc.headers = map[string]string{}
		}
		tc.headers["Origin"] = inspector
		resp := e.post(t, tc.headers, tc.body)
		exposed := list(resp.Header, "Access-Control-Expose-Headers")
		if resp.StatusCode != tc.want || resp.Header.Get("Access-Control-Allow-Origin") != inspector ||
			!exposed["mcp-session-id"] || !exposed["www-authenticate"] || !list(resp.Header, "Vary")["origin"] {
			t.Errorf("%s: HTTP %d (want %d), Allow-Origin %q, Expose-Headers %q, Vary %q", tc.name, resp.StatusCode, tc.want,
				resp.Header.Get("Access-Control-Allow-Origin"), resp.Header.Get("Access-Control-Expose-Headers"), resp.Header.Get("Vary"))
		}
		if tc.want == http.StatusOK && resp.Header.Get("Mcp-Session-Id") == "" {
			t.Errorf("%s: no Mcp-Session-Id", tc.name)
		}
	}

	// Other origins still get 403 and no CORS headers, preflight or not;
	// clients without Origin get none either.
	for name, resp := range map[string]*http.Response{
		"preflight from another origin": preflight("http://evil.example"),
		"POST from another origin":      e.post(t, map[string]string{"Origin": "http://evil.example", "Authorization": "Bearer s3cret-token"}, ""),
	} {
		if resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: HTTP %d, Access-Control-Allow-Origin %q", name, resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
		}
	}
	if resp := e.post(t, map[string]string{"Authorization": "Bearer s3cret-token"}, ""); resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("no Origin: Access-Control-Allow-Origin %q", resp.Header.Get("Access-Control-Allow-Origin"))
	}
}

// mcp-go's DNS-rebinding guard stays on: a loopback listener refuses a
// foreign Host.
func TestHostCheck(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{})
	if resp := e.post(t, map[string]string{"Host": "evil.example"}, ""); resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign Host: HTTP %d, want 403", resp.StatusCode)
	}
}

func TestCallerToken(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{AuthToken: "s3cret-token"})
	for _, auth := range []string{"", "Bearer wrong", "Basic czNjcmV0LXRva2Vu", "Bearer s3cret-token-but-longer"} {
		resp := e.post(t, map[string]string{"Authorization": auth}, "")
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("Authorization %q: HTTP %d, WWW-Authenticate %q", auth, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	if resp := e.post(t, map[string]string{"Authorization": "Bearer s3cret-token"}, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("right token: HTTP %d", resp.StatusCode)
	}
	// The caller's token authenticates the caller only: upstream requests
	// carry the server's BetterPrompt key.
	c := e.mcpClient(t, map[string]string{"Authorization": "Bearer s3cret-token"})
	if res := callTool(t, c, "get_credits", nil); res.IsError || !strings.Contains(resultText(res), "5000") {
		t.Fatalf("get_credits: %s", resultText(res))
	}
	for _, r := range e.fake.Requests() {
		if r.KeyHash != fakeapi.HashKey(serverKey) {
			t.Errorf("upstream request %s %s did not carry the server's key", r.Method, r.Path)
		}
	}
}

// In multi-tenant mode each caller's own key is used, the server's never,
// and one caller's run handles are invisible to another.
func TestPerRequestKeys(t *testing.T) {
	t.Parallel()
	e := newHTTPEnv(t, HTTPOptions{PerRequestKeys: true})
	anon := e.mcpClient(t, nil)
	if res := callTool(t, anon, "get_credits", nil); !res.IsError || !strings.Contains(resultText(res), betterprompt.KeyHeader) {
		t.Errorf("no key: %s", resultText(res))
	}
	alice := e.mcpClient(t, map[string]string{betterprompt.KeyHeader: aliceKey})
	bob := e.mcpClient(t, map[string]string{betterprompt.KeyHeader: bobKey})
	if res := callTool(t, alice, "get_credits", nil); res.IsError || !strings.Contains(resultText(res), "222") {
		t.Errorf("alice: %s", resultText(res))
	}
	if res := callTool(t, bob, "get_credits", nil); res.IsError || !strings.Contains(resultText(res), "333") {
		t.Errorf("bob: %s", resultText(res))
	}
	for _, r := range e.fake.Requests() {
		if r.KeyHash == fakeapi.HashKey(serverKey) {
			t.Errorf("the server's own key was used for %s %s", r.Method, r.Path)
		}
	}

	// Alice starts a slow run and gets a handle before the API answers.
	res := callTool(t, alice, "run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 0.1,
		"inputs": map[string]any{"textInputs": map[string]any{"depth": "overview", "question": "q?"}}})
	if res.IsError {
		t.Fatalf("alice's run: %s", resultText(res))
	}
	var view betterprompt.RunView
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &view)
	// Bob learns nothing of it: to his key the handle is unknown, and his
	// account has no run it could be.
	got := callTool(t, bob, "get_run", map[string]any{"run_id": view.RunID, "wait_seconds": 0})
	var bobs betterprompt.RunView
	b, _ = json.Marshal(got.StructuredContent)
	_ = json.Unmarshal(b, &bobs)
	if len(bobs.Outputs) > 0 || len(bobs.Candidates) > 0 || (!got.IsError && bobs.Status != "unconfirmed") {
		t.Errorf("bob can read alice's run %s: %s", view.RunID, resultText(got))
	}
	if got := callTool(t, alice, "get_run", map[string]any{"run_id": view.RunID, "wait_seconds": 10}); got.IsError || !strings.Contains(resultText(got), "succeeded") {
		t.Errorf("alice's own run: %s", resultText(got))
	}
}

func TestBodyLimit(t *testing.T) {
	e := newHTTPEnv(t, HTTPOptions{MaxBodyBytes: 1024})
	big := `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("x", 4096) + `"}}`
	if resp := e.post(t, nil, big); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize body: HTTP %d, want 413", resp.StatusCode)
	}
	// Without Content-Length (chunked), the limit stops the read; here the
	// read of the method, which comes after the padding.
	padFirst := `{"params":{"pad":"` + strings.Repeat("x", 4096) + `"},"jsonrpc":"2.0","id":1,"method":"initialize"}`
	req, _ := http.NewRequest(http.MethodPost, e.url, io.MultiReader(strings.NewReader(padFirst)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize chunked body: HTTP %d, want 413", resp.StatusCode)
	}
}

// Shutdown lets an in-flight call finish before the server stops.
func TestGracefulDrain(t *testing.T) {
	t.Parallel()
	srv := serve(t, fakeapi.Options{TimeScale: 0.03}, nil, HTTPOptions{ShutdownGrace: 10 * time.Second})
	deps, cancel, served := srv.deps, srv.cancel, srv.served
	url := "http://" + srv.addr + "/mcp"
	c := connect(t, url, nil)
	results := make(chan *mcp.CallToolResult, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "run_prompt"
		req.Params.Arguments = map[string]any{"prompt_version_id": deepResearchVer, // 30 s × 0.03 ≈ 0.9 s
			"inputs": map[string]any{"textInputs": map[string]any{"depth": "overview", "question": "q?"}}}
		res, err := c.CallTool(context.Background(), req)
		if err != nil {
			t.Errorf("in-flight call: %v", err)
		}
		results <- res
	}()
	time.Sleep(200 * time.Millisecond)
	cancel() // shut down while the run is in flight
	if res := <-results; res == nil || res.IsError || !strings.Contains(resultText(res), "succeeded") {
		t.Errorf("the in-flight call did not complete: %+v", res)
	}
	if err := <-served; err != nil {
		t.Errorf("ServeHTTP: %v", err)
	}
	_ = deps.Drain(context.Background())
	if _, err := http.Post(url, "application/json", bytes.NewReader(nil)); err == nil {
		t.Error("the server still accepts connections after shutdown")
	}
}

// MCP tasks are off over HTTP (mcp-go v1.2.1 would send every task's
// status to every session, and without sessions let any caller list and
// read every task): the capability is not offered, tasks/list is refused,
// and a task-augmented call is processed as a plain call, as the spec
// allows a receiver without task support to do.
func TestTasksAreOffOverHTTP(t *testing.T) {
	t.Parallel()
	for _, stateless := range []bool{false, true} {
		t.Run(fmt.Sprintf("stateless=%v", stateless), func(t *testing.T) {
			e := newHTTPEnv(t, HTTPOptions{Stateless: stateless, PerRequestKeys: stateless})
			headers := map[string]string{"MCP-Protocol-Version": "2025-11-25"}
			if stateless {
				headers[betterprompt.KeyHeader] = aliceKey
			}
			rpc := func(session string, body string) map[string]any {
				t.Helper()
				h := maps.Clone(headers)
				if session != "" {
					h["Mcp-Session-Id"] = session
				}
				resp := e.post(t, h, body)
				raw, _ := io.ReadAll(resp.Body)
				if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
					for _, line := range strings.Split(string(raw), "\n") {
						if data, ok := strings.CutPrefix(line, "data: "); ok && strings.Contains(data, `"id":`) {
							raw = []byte(data)
						}
					}
				}
				var msg map[string]any
				_ = json.Unmarshal(raw, &msg)
				if msg == nil {
					msg = map[string]any{}
				}
				msg["session"] = resp.Header.Get("Mcp-Session-Id")
				return msg
			}
			init := rpc("", "")
			session, _ := init["session"].(string)
			result, _ := init["result"].(map[string]any)
			if caps, _ := result["capabilities"].(map[string]any); caps["tasks"] != nil {
				t.Errorf("tasks offered over HTTP: %v", caps["tasks"])
			}
			_ = rpc(session, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
			call := rpc(session, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_prompt","task":{"ttl":60000},
				"arguments":{"prompt_version_id":"`+deepResearchVer+`","inputs":{"textInputs":{"depth":"overview","question":"q?"}}}}}`)
			r, _ := call["result"].(map[string]any)
			if r["task"] != nil {
				t.Fatalf("a task was created over HTTP: %v", call)
			}
			if sc, _ := r["structuredContent"].(map[string]any); sc["status"] != "succeeded" {
				t.Errorf("the call was not processed as a plain call: %v", call)
			}
			list := rpc(session, `{"jsonrpc":"2.0","id":3,"method":"tasks/list","params":{}}`)
			if list["error"] == nil {
				t.Errorf("tasks/list answered over HTTP: %v", list)
			}
		})
	}
}

// A client that sends its headers too slowly, or goes quiet, is cut off.
func TestSlowClientIsCutOff(t *testing.T) {
	srv := serve(t, fakeapi.Options{}, nil, HTTPOptions{
		ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond, IdleTimeout: 300 * time.Millisecond})
	defer func() {
		srv.cancel()
		<-srv.served
	}()
	addr := srv.addr
	for name, partial := range map[string]string{
		"slow headers": "POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: appl",
		"slow body":    "POST /mcp HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"jsonrpc\"",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, partial); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.Copy(io.Discard, conn) // returns when the server closes the connection
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s: the connection stayed open %v", name, took)
		}
		_ = conn.Close()
	}
}

func TestOwnOriginsAreAllowed(t *testing.T) {
	got := ownOrigins(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8080})
	for _, want := range []string{"http://127.0.0.1:8080", "http://localhost:8080", "http://[::1]:8080"} {
		if !strings.Contains(strings.Join(got, " "), want) {
			t.Errorf("own origins %v lack %s", got, want)
		}
	}
	if got := ownOrigins(&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8080}); got != nil {
		t.Errorf("a non-loopback listener allows %v", got)
	}
}

// Shutdown with a call that outlasts the grace period and a GET stream
// open: the server stops within the grace, the call is answered first with
// the id to follow the run with, and the run id still reaches the log once
// the API answers.
func TestShutdownPastGraceKeepsTheRunID(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := serve(t, fakeapi.Options{TimeScale: 0.1}, logger, HTTPOptions{ShutdownGrace: 500 * time.Millisecond}) // deep research: 3 s
	deps, cancel, served := srv.deps, srv.cancel, srv.served
	url := "http://" + srv.addr + "/mcp"
	c := connect(t, url, nil)
	// A listening GET stream, which http.Server.Shutdown alone never closes.
	get, _ := http.NewRequest(http.MethodGet, url, nil)
	get.Header.Set("Accept", "text/event-stream")
	get.Header.Set("Mcp-Session-Id", c.GetSessionId())
	if resp, err := http.DefaultClient.Do(get); err == nil {
		defer resp.Body.Close()
	}
	results := make(chan *mcp.CallToolResult, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "run_prompt"
		req.Params.Arguments = map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 30,
			"inputs": map[string]any{"textInputs": map[string]any{"depth": "overview", "question": "q?"}}}
		res, _ := c.CallTool(context.Background(), req)
		results <- res
	}()
	time.Sleep(300 * time.Millisecond)
	stopped := time.Now()
	cancel()
	select {
	case <-served:
		if took := time.Since(stopped); took > 3*time.Second {
			t.Errorf("shutdown took %v with a 500 ms grace", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeHTTP did not return")
	}
	if res := <-results; res == nil || res.IsError || !strings.Contains(resultText(res), "get_run") {
		t.Errorf("the waiting call was not answered with its run id: %+v", res)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := deps.Drain(wctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "msg=\"run started") || !strings.Contains(logs.String(), "run_id=") {
		t.Errorf("the run id was not logged:\n%s", logs.String())
	}
}

// Per-request keys with no toolset to name their header would answer every
// call "bring your key": the server refuses to start instead.
func TestPerRequestKeysNeedToolsets(t *testing.T) {
	t.Parallel()
	err := ServeHTTP(context.Background(), New("test", nil), HTTPOptions{Addr: "127.0.0.1:0", PerRequestKeys: true}, nil)
	if err == nil || !strings.Contains(err.Error(), "Toolsets") {
		t.Errorf("ServeHTTP = %v; want a refusal naming HTTPOptions.Toolsets", err)
	}
}
