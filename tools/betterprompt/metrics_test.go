package betterprompt_test

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/internal/metrics"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// A run is counted once as started and once as ended with its charge, the
// requests by route template and status; no label carries a key, an id or
// a prompt's text.
func TestMetricsCountRunsAndRequests(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	e := newEnv(t, withDeps(func(d *betterprompt.Toolset) { d.Metrics = m }), withClient(func(o *bpapi.Options) {
		o.Observe = func(method, path string, status int, d time.Duration) {
			m.Upstream("betterprompt", method, metrics.Route(path), status, d)
		}
	}))
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs})
	mustOK(t, res)
	var v betterprompt.RunView
	structured(t, res, &v)
	mustOK(t, e.call(t, "get_run", map[string]any{"run_id": v.RunID, "wait_seconds": 0})) // read again: not counted again
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`bpmcp_runs_total{api="betterprompt",event="started"} 1`,
		`bpmcp_runs_total{api="betterprompt",event="succeeded"} 1`,
		`bpmcp_credits_charged_total{api="betterprompt"} 38`,
		`bpmcp_upstream_requests_total{api="betterprompt",method="POST",route="/v1/runs",status="200"} 1`,
		`route="/v1/runs/{id}"`,
		`bpmcp_wait_seconds_count{api="betterprompt"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, secret := range []string{testKey, v.RunID, coldEmailVersion, "Acme"} {
		if strings.Contains(body, secret) {
			t.Errorf("metrics carry %q", secret)
		}
	}
}
