package tools_test

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools"
)

// The API key never appears in a log line at any level, an error or a tool
// result, whatever path a call takes.
func TestKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	const canary = "bp_CANARY_9f2c41d7e8"
	for _, key := range []string{canary, canary + "_unknown"} {
		t.Run(key, func(t *testing.T) {
			var logs tools.SyncBuffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			e := newEnv(t, withKey(key), withSyncWindow(50*time.Millisecond), withTimeScale(0.02),
				withFake(func(o *fakeapi.Options) { o.Keys[canary] = fakeapi.Key{Credits: 100000} }),
				withClient(func(o *bpapi.Options) { o.Logger = logger; o.MaxRetryWait = 2 * time.Second }),
				withDeps(func(d *tools.Deps) { d.Logger = logger }))
			var results []string
			call := func(tool string, args map[string]any) {
				results = append(results, text(e.call(t, tool, args)))
			}
			call("search_prompts", map[string]any{"query": "email"})
			call("get_prompt", map[string]any{"prompt_id": coldEmailPrompt})
			call("get_credits", nil)
			call("run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
			call("run_prompt", map[string]any{"prompt_version_id": deepResearchVer, "wait_seconds": 0.05,
				"inputs": researchInputs})
			call("run_prompt", map[string]any{"prompt_id": failingPrompt, "inputs": map[string]any{"textInputs": map[string]any{"ticker": "X"}}})
			call("run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": map[string]any{}})
			call("get_run", map[string]any{"run_id": "00000000-0000-4000-8000-000000000000", "wait_seconds": 0})
			for _, f := range []fakeapi.Fault{{Status: 500, Count: 10}, {Kind: fakeapi.FaultHTML, Count: 10}, {Status: 429, RetryAfter: "1", Count: 10}} {
				e.fake.InjectFault("*", f)
				call("get_credits", nil)
				call("run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
				e.fake.ClearFaults()
			}
			if logs.String() == "" {
				t.Fatal("no logs were written; the test would prove nothing")
			}
			if strings.Contains(logs.String(), canary) {
				t.Errorf("the key appears in the logs:\n%s", logs.String())
			}
			for _, r := range results {
				if strings.Contains(r, canary) {
					t.Errorf("the key appears in a result: %s", r)
				}
			}
		})
	}
}
