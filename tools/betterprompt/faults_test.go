package betterprompt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
)

// Upstream faults on the read path: a passing fault is retried away; a
// persistent one becomes a clear isError. Nothing crashes or hangs.
func TestUpstreamFaults(t *testing.T) {
	t.Parallel()
	const route = "GET /v1/me/credits"
	cases := []struct {
		name  string
		fault fakeapi.Fault
		ok    bool     // the call succeeds after retries
		want  []string // otherwise, the error text mentions these
	}{
		{"one 502", fakeapi.Fault{Status: 502}, true, nil},
		{"two 503s", fakeapi.Fault{Status: 503, Count: 2}, true, nil},
		{"one 500", fakeapi.Fault{Status: 500}, true, nil},
		{"persistent 500", fakeapi.Fault{Status: 500, Count: 100}, false, []string{"HTTP 500", "Try again"}},
		{"two 429s with Retry-After", fakeapi.Fault{Status: 429, RetryAfter: "1", Count: 2}, true, nil},
		{"429 storm", fakeapi.Fault{Status: 429, RetryAfter: "1", Count: 100}, false, []string{"429", "Wait"}},
		{"one HTML error page", fakeapi.Fault{Kind: fakeapi.FaultHTML}, true, nil},
		{"persistent HTML error pages", fakeapi.Fault{Kind: fakeapi.FaultHTML, Count: 100}, false, []string{"HTTP 502", "unexpected body"}},
		{"truncated JSON", fakeapi.Fault{Kind: fakeapi.FaultTruncated, Count: 100}, false, []string{"try again"}},
		{"empty body", fakeapi.Fault{Kind: fakeapi.FaultEmpty, Count: 100}, false, []string{"try again"}},
		{"one connection reset", fakeapi.Fault{Kind: fakeapi.FaultDrop}, true, nil},
		{"persistent connection resets", fakeapi.Fault{Kind: fakeapi.FaultDrop, Count: 100}, false, []string{"could not be reached"}},
		{"slower than the timeout", fakeapi.Fault{Latency: 5 * time.Second, Count: 100}, false, []string{"did not answer in time"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, withClient(func(o *bpapi.Options) {
				o.MaxRetryWait = 3 * time.Second
				o.RequestTimeout = 3 * time.Second // above two 1 s Retry-Afters, below the 5 s latency
			}))
			e.fake.InjectFault(route, tc.fault)
			start := time.Now()
			res := e.call(t, "get_credits", nil)
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("the call took %v", took)
			}
			if tc.ok {
				mustOK(t, res)
				return
			}
			mustError(t, res, tc.want...)
		})
	}
}

// A run read more than 24 hours after it was created says that its media
// links have probably expired (the API keeps outputs for 24 hours).
func TestExpiredOutputLinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withFake(func(o *fakeapi.Options) {
		o.Now = func() time.Time { return time.Now().Add(-25 * time.Hour) }
	}))
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": appIconVersion,
		"inputs": map[string]any{"textInputs": map[string]any{"app_concept": "habit tracker", "style": "clay"}}})
	mustOK(t, res)
	if !strings.Contains(text(res), "probably expired") {
		t.Errorf("no expiry warning for a run created 25 h ago: %s", text(res))
	}
}
