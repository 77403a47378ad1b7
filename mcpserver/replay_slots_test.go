package mcpserver

import (
	"encoding/json"
	"io"
	"strings"
	"testing"
)

// A tools/call delivered again (an HTTP-level retry) while the key's wait
// slots are all held joins the run its first delivery started: it must not
// be told that nothing was run, or the caller runs it again and pays twice.
func TestReplayWhenEveryWaitSlotIsHeldIsNotToldNothingRan(t *testing.T) {
	t.Parallel()
	e := newHTTPEnv(t, HTTPOptions{})
	e.deps.MaxWaitsPerKey = 1 // the first delivery holds the key's only slot
	init := e.post(t, map[string]string{"MCP-Protocol-Version": "2025-11-25"}, "")
	session := init.Header.Get("Mcp-Session-Id")
	headers := map[string]string{"MCP-Protocol-Version": "2025-11-25", "Mcp-Session-Id": session}
	e.post(t, headers, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"run_prompt","arguments":` + researchArgs + `,"wait_seconds":5}}}`

	first := make(chan string, 1)
	go func() {
		resp := e.post(t, headers, body)
		raw, _ := io.ReadAll(resp.Body)
		first <- string(raw)
	}()
	waitUntil(t, func() bool { return e.fake.Count("POST /v1/runs") == 1 })

	resp := e.post(t, headers, body) // the retry, while the first still waits
	raw, _ := io.ReadAll(resp.Body)
	second := string(raw)
	<-first

	runs := e.fake.Runs(serverKey)
	if len(runs) != 1 {
		t.Fatalf("%d runs upstream, want 1", len(runs))
	}
	if strings.Contains(second, "nothing was run") || strings.Contains(second, `"isError":true`) {
		t.Fatalf("the redelivered request was told that nothing ran, though run %s did:\n%s", runs[0].RunID, second)
	}
	// While the API still holds the first delivery's request, the answer is
	// the handle that resolves to its run.
	if !strings.Contains(second, runs[0].RunID) {
		var answer struct {
			Result struct {
				StructuredContent struct {
					RunID string `json:"run_id"`
				} `json:"structuredContent"`
			} `json:"result"`
		}
		if err := json.Unmarshal(raw, &answer); err != nil || answer.Result.StructuredContent.RunID == "" {
			t.Fatalf("no run_id in the answer (%v):\n%s", err, second)
		}
		handle := answer.Result.StructuredContent.RunID
		get := `{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"get_run","arguments":{"run_id":"` + handle + `","wait_seconds":5}}}`
		resp := e.post(t, headers, get)
		got, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(got), runs[0].RunID) {
			t.Errorf("the redelivered request's run_id %s does not lead to the run %s its first delivery started:\n%s", handle, runs[0].RunID, got)
		}
	}
}
