package mcpserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/syncbuf"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

const researchArgs = `{"prompt_version_id":"` + deepResearchVer + `","inputs":{"textInputs":{"depth":"overview","question":"q?"}}`

// A tools/call delivered three times with the same JSON-RPC id in one
// session (an HTTP-level retry does this) starts one paid run, and every
// delivery is answered with it.
func TestReplayedRequestStartsOneRun(t *testing.T) {
	t.Parallel()
	e := newHTTPEnv(t, HTTPOptions{})
	init := e.post(t, map[string]string{"MCP-Protocol-Version": "2025-11-25"}, "")
	session := init.Header.Get("Mcp-Session-Id")
	headers := map[string]string{"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": session}
	e.post(t, headers, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_prompt","arguments":` + researchArgs + `,"wait_seconds":5}}}`
	answers := make([]string, 3)
	var wg sync.WaitGroup
	for i := range answers {
		wg.Go(func() {
			resp := e.post(t, headers, body)
			raw, _ := io.ReadAll(resp.Body)
			answers[i] = string(raw)
		})
	}
	wg.Wait()
	if n := e.fake.Count("POST /v1/runs"); n != 1 {
		t.Errorf("%d POSTs for one request delivered three times, want 1", n)
	}
	runs := e.fake.Runs(serverKey)
	if len(runs) != 1 {
		t.Fatalf("%d runs upstream", len(runs))
	}
	for i, a := range answers {
		if !strings.Contains(a, runs[0].RunID) {
			t.Errorf("delivery %d was not answered with the run %s: %s", i, runs[0].RunID, a)
		}
	}
	// A new id is a new request, and starts a new run.
	e.post(t, headers, strings.Replace(body, `"id":7`, `"id":8`, 1))
	if n := e.fake.Count("POST /v1/runs"); n != 2 {
		t.Errorf("%d POSTs after a new request, want 2", n)
	}
}

// SIGTERM over HTTP: a call waiting for a run that outlasts the shutdown
// grace is answered with its run id before its stream closes, and the run
// id reaches the log once the API answers.
func TestShutdownAnswersWaitingCalls(t *testing.T) {
	t.Parallel()
	var logs syncbuf.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := serve(t, fakeapi.Options{TimeScale: 0.1}, logger, HTTPOptions{ShutdownGrace: 2 * time.Second}) // deep research: 3 s
	c := connect(t, "http://"+srv.addr+"/mcp", nil)
	results := make(chan *mcp.CallToolResult, 1)
	go func() {
		req := mcp.CallToolRequest{}
		req.Params.Name = "run_prompt"
		req.Params.Arguments = map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 55,
			"inputs": map[string]any{"textInputs": map[string]any{"depth": "overview", "question": "q?"}}}
		res, err := c.CallTool(context.Background(), req)
		if err != nil {
			t.Errorf("the waiting call got no answer: %v", err)
		}
		results <- res
	}()
	waitUntil(t, func() bool { return strings.Contains(logs.String(), "submitting a run") })
	srv.cancel() // SIGTERM
	var res *mcp.CallToolResult
	select {
	case res = <-results:
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting call was not answered")
	}
	if res == nil || res.IsError {
		t.Fatalf("the waiting call was answered with an error: %+v", res)
	}
	var v betterprompt.RunView
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &v)
	if v.RunID == "" || !strings.Contains(resultText(res), "get_run") || !strings.Contains(resultText(res), v.RunID) {
		t.Errorf("the answer does not hand over the run: %s", resultText(res))
	}
	if err := <-srv.served; err != nil {
		t.Errorf("ServeHTTP: %v", err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer wcancel()
	if err := srv.deps.Drain(wctx); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "run_id=") {
		t.Errorf("the run id was not logged:\n%s", logs.String())
	}
}

// stdioServer runs ServeStdio on pipes against a fake API.
type stdioServer struct {
	in     *io.PipeWriter
	out    *bufio.Scanner
	deps   *betterprompt.Toolset
	cancel context.CancelFunc
	served chan error // ServeStdio's result, once
	exited chan struct{}
}

func startStdio(t *testing.T, timeScale float64, opts StdioOptions) *stdioServer {
	t.Helper()
	_, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: loadCatalogue(t), TimeScale: timeScale,
		Keys: map[string]fakeapi.Key{serverKey: {Credits: 1000}}})
	deps := &betterprompt.Toolset{Client: bpapi.New(bpapi.Options{BaseURL: base, APIKey: serverKey})}
	opts.Toolsets = []tools.Toolset{deps}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	s := &stdioServer{in: inW, out: bufio.NewScanner(outR), deps: deps, cancel: cancel, served: make(chan error, 1), exited: make(chan struct{})}
	s.out.Buffer(nil, 1<<20)
	go func() {
		defer close(s.exited)
		s.served <- ServeStdio(ctx, New("test", opts.Toolsets, WithTasks()), inR, outW, io.Discard, opts)
		_ = outW.Close()
	}()
	t.Cleanup(func() {
		cancel()
		_ = inW.Close()
		go func() { _, _ = io.Copy(io.Discard, outR) }()
		<-s.exited
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = deps.Drain(ctx)
	})
	s.send(t, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"0"}}}`)
	s.send(t, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if m := s.next(t); m["id"] != float64(1) {
		t.Fatalf("initialize: %v", m)
	}
	return s
}

func (s *stdioServer) send(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(s.in, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// next returns the next response (skipping notifications).
func (s *stdioServer) next(t *testing.T) map[string]any {
	t.Helper()
	for s.out.Scan() {
		var m map[string]any
		if err := json.Unmarshal(s.out.Bytes(), &m); err != nil {
			t.Fatalf("stdout carries a non-JSON line %q", s.out.Text())
		}
		if m["method"] == nil {
			return m
		}
	}
	t.Fatalf("stdout closed: %v", s.out.Err())
	return nil
}

func callText(m map[string]any) (string, bool) {
	r, _ := m["result"].(map[string]any)
	isError, _ := r["isError"].(bool)
	var b strings.Builder
	content, _ := r["content"].([]any)
	for _, c := range content {
		if item, _ := c.(map[string]any); item["type"] == "text" {
			fmt.Fprintln(&b, item["text"])
		}
	}
	return b.String(), isError
}

// SIGTERM on stdio: a call waiting for a run is answered with its run id
// before the server exits.
func TestStdioShutdownAnswersWaitingCalls(t *testing.T) {
	t.Parallel()
	s := startStdio(t, 0.1, StdioOptions{}) // deep research: 3 s
	s.send(t, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_prompt","arguments":`+researchArgs+`,"wait_seconds":55}}}`)
	time.Sleep(300 * time.Millisecond) // the POST is in flight
	s.cancel()                         // SIGTERM
	answer := s.next(t)
	text, isError := callText(answer)
	if answer["id"] != float64(2) || isError || !strings.Contains(text, "get_run") || !strings.Contains(text, "run_id=") {
		t.Fatalf("the waiting call was answered with %v", answer)
	}
	select {
	case <-s.served:
	case <-time.After(10 * time.Second):
		t.Fatal("ServeStdio did not return after the shutdown")
	}
}

// The input closing (`printf … | bpmcp`) is not a cancellation: the calls
// already received are answered before the server exits.
func TestStdioEOFAnswersPendingCalls(t *testing.T) {
	t.Parallel()
	s := startStdio(t, 0.02, StdioOptions{EOFGrace: 20 * time.Second}) // deep research: 0.6 s
	s.send(t, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"run_prompt","arguments":`+researchArgs+`,"wait_seconds":10}}}`)
	s.send(t, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_credits","arguments":{}}}`)
	_ = s.in.Close() // end of input
	got := map[float64]string{}
	for range 2 {
		m := s.next(t)
		text, isError := callText(m)
		if isError {
			t.Errorf("call %v answered with an error: %s", m["id"], text)
		}
		id, _ := m["id"].(float64)
		got[id] = text
	}
	if !strings.Contains(got[2], "succeeded") || strings.Contains(got[2], "cancelled") {
		t.Errorf("the run was not waited for: %s", got[2])
	}
	if !strings.Contains(got[3], "credits") {
		t.Errorf("get_credits: %s", got[3])
	}
	select {
	case err := <-s.served:
		if err != nil {
			t.Errorf("ServeStdio: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ServeStdio did not return after the input closed")
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
	}
}
