package betterprompt_test

import (
	"context"

	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
)

// A rate-limit code in an answer that is not a plain refusal: the 429
// policy decides about a resend, but the answer keeps its meaning (a run
// the API named, or an outcome that may be a run) once it is not resent.

// A POST answered with a status that leaves the outcome unknown (here a
// 503 from a gateway) but whose envelope says TOO_MANY_REQUESTS_ERROR is
// rate limited (bpapi.IsRateLimited reads the code) and also wraps
// bpapi.ErrOutcomeUnknown. The 429 policy decides whether to send it again,
// but once it is not sent again, the run may still have been created: the
// outcome stays unknown until the start bound, as before the move. It must
// not be reported as a 429 that started nothing.
func TestRateLimitedButOutcomeUnknownPostIsNotRefused(t *testing.T) {
	t.Parallel()
	// A start bound of 1 s leaves no time to send the POST again (a fifth of
	// it), so the first answer is final.
	e := newEnv(t, withStartBound(time.Second))
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 503,
		Body: `{"status":"TOO_MANY_REQUESTS_ERROR","message":"Rate limit exceeded","data":null}`})
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 0.5})
	if n := e.fake.Count(routeCreate); n != 1 {
		t.Fatalf("setup: %d POSTs, want 1", n)
	}
	if res.IsError || strings.Contains(text(res), "nothing was started") || strings.Contains(text(res), "no credits were spent") {
		t.Errorf("a POST whose outcome is unknown (503) was reported as refused before the start bound: %s", text(res))
	}
	if v := recovery(t, res); v.RunID == "" || v.Status == "not_started" {
		t.Errorf("want a handle to follow while the outcome is unknown, got %+v: %s", v, text(res))
	}
}

// The same precedence loses a run id the API named: an answer to the POST
// that carries data.runId with a 504 (bpapi.TimedOutRunID) but whose
// envelope code is TOO_MANY_REQUESTS_ERROR is rate limited too. Before the
// move, the answer's run id was followed (the run list's guess never
// overrides the API); now it is reduced to an unconfirmed candidate, or,
// when the run list does not show it, to "nothing was started".
func TestRunIDNamedWithA429CodeIsFollowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withStartBound(time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	named, err := e.deps.Client.CreateRun(ctx, bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion,
		Inputs: bpapi.RunInputs{TextInputs: map[string]string{"company_name": "Acme", "recipient_role": "CTO", "value_proposition": "x"}}})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 504,
		Body: `{"status":"TOO_MANY_REQUESTS_ERROR","message":"slow down","data":{"runId":"` + named.RunID + `"}}`})
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 3})
	if v := recovery(t, res); v.RunID != named.RunID || v.Status != "succeeded" {
		t.Errorf("the API named run %s in its answer, but the result is %+v: %s", named.RunID, v, text(res))
	}
}
