package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/internal/syncbuf"
)

// httpLoad is one row of part 3.
type httpLoad struct {
	Mode          string // "session" or "stateless"
	Tool          string
	Concurrency   int
	Duration      time.Duration
	Calls, Errors int
	FirstError    string
	Latency       sample
	ServerCPU     time.Duration
	UpstreamReqs  int
	UpstreamConns int64
}

func (h httpLoad) perSecond() float64 { return float64(h.Calls) / h.Duration.Seconds() }

// httpServer is the binary serving Streamable HTTP.
type httpServer struct {
	cmd    *exec.Cmd
	url    string
	stderr *syncbuf.Buffer
}

func startHTTP(bin string, up *upstream, stateless bool, extra ...string) (*httpServer, error) {
	args := []string{"--transport", "http", "--addr", "127.0.0.1:0", "--log-format", "json"}
	if stateless {
		args = append(args, "--stateless")
	}
	args = append(args, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = serverEnv("BETTERPROMPT_API_KEY="+benchKey, "BETTERPROMPT_BASE_URL="+up.baseURL, "BPMCP_RATE_LIMIT=-1")
	errPipe, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h := &httpServer{cmd: cmd, stderr: &syncbuf.Buffer{}}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = h.stderr.Write(append(line, '\n'))
			var rec struct {
				Msg string `json:"msg"`
				URL string `json:"url"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "serving MCP over Streamable HTTP" && rec.URL != "" {
				select {
				case urls <- rec.URL:
				default:
				}
			}
		}
	}()
	select {
	case h.url = <-urls:
		return h, nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("the HTTP server did not log its URL within 10 s: %s", tail(h.stderr.String(), 500))
	}
}

func (h *httpServer) stop() {
	_ = h.cmd.Process.Signal(interrupt)
	done := make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = h.cmd.Process.Kill()
		<-done
	}
}

// mcpHTTPClient is one MCP client over Streamable HTTP (legacy protocol era
// 2025-11-25, which has sessions unless the server is --stateless).
type mcpHTTPClient struct {
	c       *http.Client
	url     string
	session string
	id      int
}

func (m *mcpHTTPClient) post(body string) (*http.Response, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, m.url, strings.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
	if m.session != "" {
		req.Header.Set("Mcp-Session-Id", m.session)
	}
	resp, err := m.c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b, err
}

// call sends a request and returns the JSON-RPC response's result.
func (m *mcpHTTPClient) call(method, params string) (json.RawMessage, error) {
	m.id++
	resp, body, err := m.post(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, m.id, method, params))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, tail(string(body), 200))
	}
	if m.session == "" {
		m.session = resp.Header.Get("Mcp-Session-Id")
	}
	msg := body
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		msg = nil
		// The response is the last data line that carries our id.
		for _, line := range bytes.Split(body, []byte("\n")) {
			if d, ok := bytes.CutPrefix(line, []byte("data: ")); ok && bytes.Contains(d, []byte(`"result"`)) || ok && bytes.Contains(d, []byte(`"error"`)) {
				msg = d
			}
		}
		if msg == nil {
			return nil, fmt.Errorf("event stream without a response: %s", tail(string(body), 200))
		}
	}
	var r response
	if err := json.Unmarshal(msg, &r); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, errors.New(r.Error.Message)
	}
	return r.Result, nil
}

func (m *mcpHTTPClient) initialize() error {
	if _, err := m.call("initialize", initializeParams); err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	resp, body, err := m.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("notifications/initialized: HTTP %d: %s", resp.StatusCode, tail(string(body), 200))
	}
	return nil
}

// httpTool is a tool call used for load.
type httpTool struct {
	name, args string
}

var httpTools = []httpTool{
	{"get_credits", "{}"},
	{"search_prompts", `{"query":"email"}`},
}

// measureHTTP runs each tool at each concurrency against a server in one
// mode, for warm then d.
func measureHTTP(bin string, up *upstream, reset func(), stateless bool, levels []int, warm, d time.Duration) ([]httpLoad, error) {
	mode := "session"
	if stateless {
		mode = "stateless"
	}
	srv, err := startHTTP(bin, up, stateless)
	if err != nil {
		return nil, err
	}
	defer srv.stop()
	client := &http.Client{Transport: &http.Transport{
		MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute,
	}}
	// One client per unit of the highest concurrency, initialized once;
	// each row uses the first c of them.
	clients := make([]*mcpHTTPClient, slices.Max(levels))
	for i := range clients {
		clients[i] = &mcpHTTPClient{c: client, url: srv.url}
		if err := clients[i].initialize(); err != nil {
			return nil, fmt.Errorf("%s mode: %w (server log: %s)", mode, err, tail(srv.stderr.String(), 300))
		}
	}
	var out []httpLoad
	for _, tool := range httpTools {
		for _, c := range levels {
			reset()
			_ = runLoad(clients[:c], tool, warm) // warm-up, discarded
			fake := up.fake.Load()
			reqs0, conns0 := fake.Count("*"), up.conns.Load()
			cpu0, err := cpuTime(srv.cmd.Process.Pid)
			if err != nil {
				return nil, err
			}
			r := runLoad(clients[:c], tool, d)
			cpu1, err := cpuTime(srv.cmd.Process.Pid)
			if err != nil {
				return nil, err
			}
			r.Mode, r.Concurrency = mode, c
			r.ServerCPU = cpu1 - cpu0
			r.UpstreamReqs = fake.Count("*") - reqs0
			r.UpstreamConns = up.conns.Load() - conns0
			out = append(out, r)
		}
	}
	return out, nil
}

// runLoad has every client call tool in a closed loop for d.
func runLoad(clients []*mcpHTTPClient, tool httpTool, d time.Duration) httpLoad {
	type partial struct {
		lat      sample
		errs     int
		firstErr string
	}
	parts := make([]partial, len(clients))
	params := `{"name":"` + tool.name + `","arguments":` + tool.args + `}`
	start := make(chan struct{})
	var wg sync.WaitGroup
	var deadline time.Time
	for i, m := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			p := &parts[i]
			for time.Now().Before(deadline) {
				t0 := time.Now()
				res, err := m.call("tools/call", params)
				if err == nil {
					err = checkToolResult(res)
				}
				if err != nil {
					p.errs++
					if p.firstErr == "" {
						p.firstErr = err.Error()
					}
					continue
				}
				p.lat = append(p.lat, time.Since(t0))
			}
		}()
	}
	t0 := time.Now()
	deadline = t0.Add(d)
	close(start)
	wg.Wait()
	r := httpLoad{Tool: tool.name, Duration: time.Since(t0)}
	for _, p := range parts {
		r.Latency = append(r.Latency, p.lat...)
		r.Errors += p.errs
		if r.FirstError == "" {
			r.FirstError = p.firstErr
		}
	}
	r.Calls = len(r.Latency)
	return r
}

// connReuse compares, in process, bpapi clients at high concurrency: the
// default client (bpapi's own transport) against one whose transport keeps
// as many idle connections per host as there are concurrent calls. It
// shows the cost of the idle-connection limit seen in the HTTP rows.
type connReuse struct {
	Label         string
	Concurrency   int
	Calls, Errors int
	Duration      time.Duration
	Latency       sample
	Conns         int64
}

func measureConnReuse(up *upstream, reset func(), concurrency int, d time.Duration) ([]connReuse, error) {
	bigIdle := func() *http.Client {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConns, t.MaxIdleConnsPerHost = 0, concurrency // 0: no overall cap (the default caps at 100)
		return &http.Client{Transport: t}
	}
	variants := []struct {
		label  string
		client func() *bpapi.Client
	}{
		{"bpapi default transport (as the server runs)", func() *bpapi.Client {
			return bpapi.New(bpapi.Options{BaseURL: up.baseURL, APIKey: benchKey, RateLimit: -1})
		}},
		{fmt.Sprintf("same client, transport with MaxIdleConnsPerHost %d, MaxIdleConns 0 (no cap)", concurrency), func() *bpapi.Client {
			return bpapi.New(bpapi.Options{BaseURL: up.baseURL, APIKey: benchKey, RateLimit: -1, HTTPClient: bigIdle()})
		}},
	}
	var out []connReuse
	for _, v := range variants {
		reset()
		c := v.client()
		ctx := context.Background()
		run := func(d time.Duration) connReuse {
			lats := make([]sample, concurrency)
			errs := make([]int, concurrency)
			var wg sync.WaitGroup
			deadline := time.Now().Add(d)
			t0 := time.Now()
			for i := range concurrency {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for time.Now().Before(deadline) {
						c0 := time.Now()
						if _, err := c.Credits(ctx); err != nil {
							errs[i]++
							continue
						}
						lats[i] = append(lats[i], time.Since(c0))
					}
				}()
			}
			wg.Wait()
			r := connReuse{Label: v.label, Concurrency: concurrency, Duration: time.Since(t0)}
			for i := range lats {
				r.Latency = append(r.Latency, lats[i]...)
				r.Errors += errs[i]
			}
			r.Calls = len(r.Latency)
			return r
		}
		run(d / 5) // warm-up
		conns0 := up.conns.Load()
		r := run(d)
		r.Conns = up.conns.Load() - conns0
		out = append(out, r)
	}
	return out, nil
}
