package mcpserver

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/internal/metrics"
)

// /readyz is ready by default, not ready while a guard it needs cannot be
// checked, and draining once the shutdown began; /healthz stays ok.
func TestReadyz(t *testing.T) {
	storeDown := false
	opts := HTTPOptions{Stateless: true, Ready: func(context.Context) error {
		if storeDown {
			return errors.New("the shared state store is unavailable")
		}
		return nil
	}}
	tr := newHTTPTransport(New("test", nil), opts)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.Host = "127.0.0.1"
		tr.handler.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/readyz"); code != http.StatusOK || !strings.Contains(body, `"ready"`) {
		t.Errorf("ready: %d %s", code, body)
	}
	storeDown = true
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "store is unavailable") {
		t.Errorf("store down: %d %s", code, body)
	}
	if code, _ := get("/healthz"); code != http.StatusOK {
		t.Errorf("healthz with the store down: %d", code)
	}
	storeDown = false
	tr.draining.Store(true)
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "draining") {
		t.Errorf("draining: %d %s", code, body)
	}
}

// Every tool call is counted by tool and outcome.
func TestToolCallsAreCounted(t *testing.T) {
	m := metrics.New()
	h := countCalls(m)(func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return &mcp.CallToolResult{IsError: true}, nil
	})
	_, _ = h(context.Background(), func() mcp.CallToolRequest { r := mcp.CallToolRequest{}; r.Params.Name = "run_prompt"; return r }())
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `bpmcp_tool_calls_total{outcome="tool_error",tool="run_prompt"} 1`) {
		t.Errorf("tool calls not counted:\n%s", rec.Body.String())
	}
}
