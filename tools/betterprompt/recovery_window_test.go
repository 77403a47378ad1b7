package betterprompt_test

import (
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// The window in which a submission's run must show in the run list, and
// what another instance (or this one after a restart) may conclude from it.

// waitForRuns waits until the fake holds n runs of testKey's account.
func waitForRuns(t *testing.T, f *fakeapi.Server, n int, within time.Duration) []fakeapi.RunInfo {
	t.Helper()
	for deadline := time.Now().Add(within); ; {
		if runs := f.Runs(testKey); len(runs) >= n || time.Now().After(deadline) {
			return runs
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A POST is in flight until it fails: the API may create its run at any
// moment before that. When the POST fails later than the start bound after
// it was sent (the defaults allow it: StartBound 150 s < CreateTimeout
// 180 s), the run it created falls after the end of the window, and the
// server declares "No run was started ... safe to call run_prompt again"
// at once, about a run that exists and is charged.
func TestRunCreatedWhileThePostWasInFlightIsNotDeclaredNotStarted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withStartBound(time.Second))
	// The request reaches the API 1.5 s after it was sent (a slow upload, a
	// queue in front of the API); the API creates the run, and the
	// connection is then cut before the answer.
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultDropAfterCreate, Latency: 1500 * time.Millisecond})
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 4})
	runs := e.fake.Runs(testKey)
	if len(runs) != 1 {
		t.Fatalf("setup: %d runs upstream, want 1", len(runs))
	}
	v := recovery(t, res)
	if v.Status == "not_started" || strings.Contains(text(res), "No run was started") || strings.Contains(text(res), "safe to call run_prompt again") {
		t.Fatalf("run %s was created while the POST was in flight, but the result says none was started: %s", runs[0].RunID, text(res))
	}
	if v.RunID != runs[0].RunID && !v.hasCandidate(runs[0].RunID) {
		t.Errorf("the created run %s is not named: %s", runs[0].RunID, text(res))
	}
}

// resendSpan promises that a handle this process no longer knows has a
// window holding every POST it may have sent. But the span is checked
// before the Retry-After sleep and the look at the run list, and the look
// itself takes time (after a 429 the list is often rate-limited too, and
// its GET waits for Retry-After): the resend goes out after resendSpan.
// Its run, created within the start bound of that resend, then falls
// outside foreignWindow, and another instance (or this one after a
// restart) answers get_run with "not_started" for a run that exists.
func TestResentPostStaysInsideTheForeignWindow(t *testing.T) {
	t.Parallel()
	// StartBound 6 s: resendSpan 1.2 s, foreign window to submission + 7.2 s.
	e := newEnv(t, withStartBound(6*time.Second))
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 429}) // no Retry-After: 1 s
	e.fake.InjectFault(routeList, fakeapi.Fault{Status: 429, RetryAfter: "1"})
	// The resend reaches the API 5.3 s after it was sent (within the start
	// bound), creates the run, and a proxy answers 500.
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultStatusAfterCreate, Status: 500, Latency: 5300 * time.Millisecond})

	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 1})
	handle := recovery(t, res).RunID
	if !res.IsError {
		res = e.call(t, "get_run", map[string]any{"run_id": handle, "wait_seconds": 5})
	}
	if e.fake.Count(routeCreate) == 1 {
		// The POST was not sent again, too late after the submission: the
		// 429 is the answer, and nothing was started.
		if len(e.fake.Runs(testKey)) != 0 || !res.IsError || !strings.Contains(text(res), "nothing was started") {
			t.Fatalf("one POST, %d runs: %s", len(e.fake.Runs(testKey)), text(res))
		}
		return
	}
	runs := waitForRuns(t, e.fake, 1, 10*time.Second)
	if len(runs) != 1 || e.fake.Count(routeCreate) != 2 {
		t.Fatalf("setup: %d runs, %d POSTs; want 1 run from the resend", len(runs), e.fake.Count(routeCreate))
	}
	created := runs[0].RunID

	// Another instance of the server, which does not know the handle.
	other := newPeer(t, e)
	got := callWith(t, other, "get_run", map[string]any{"run_id": handle, "wait_seconds": 0})
	v := recovery(t, got)
	if v.Status == "not_started" || strings.Contains(text(got), "No run was started") {
		t.Fatalf("run %s was created by the resent POST of handle %s, but another instance says none was started: %s", created, handle, text(got))
	}
	if !v.hasCandidate(created) {
		t.Errorf("the resent POST's run %s is not a candidate of handle %s: %s", created, handle, text(got))
	}
}

// The same gap, with --exclusive-key: the run of a call wrongly declared
// not started is left unclaimed and is no competitor, so the next call of
// the prompt whose POST fails finds it as the only run in its window and
// is handed it as its own (outputs of another caller's inputs), while the
// first caller was told nothing was charged.
func TestRunOfACallDeclaredNotStartedIsNotHandedToTheNext(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withStartBound(time.Second), withExclusiveKey())
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultDropAfterCreate, Latency: 1500 * time.Millisecond})
	first := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 4})
	runs := e.fake.Runs(testKey)
	if len(runs) != 1 {
		t.Fatalf("setup: %d runs upstream, want 1", len(runs))
	}
	firstsRun := runs[0].RunID

	// The next call's POST fails before it reaches the API: it starts nothing.
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 500})
	next := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion,
		"inputs":       map[string]any{"textInputs": map[string]any{"company_name": "Other Co", "recipient_role": "CFO", "value_proposition": "Something else."}},
		"wait_seconds": 4})
	if n := len(e.fake.Runs(testKey)); n != 1 {
		t.Fatalf("setup: %d runs upstream, want 1", n)
	}
	if v := recovery(t, next); v.RunID == firstsRun || len(v.Outputs) > 0 {
		t.Errorf("the first call's run %s was handed to the next call as its own (the first was told: %q): %s",
			firstsRun, text(first), text(next))
	}
}

// --exclusive-key says that only this server starts runs with the key, and
// the README handles restarts (handles of a previous instance resolve to
// candidates). But a restarted instance knows nothing of the POSTs its
// previous life had in flight: the run such a POST creates (within the
// start bound of its sending, after the restart) is unclaimed and has no
// competitor, so a new call whose POST fails is handed it as its own,
// while the caller who started it is told by get_run that it is one of the
// runs that may be theirs.
func TestRestartedExclusiveServerDoesNotConfirmThePreviousInstancesRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The previous instance's POST is on its way (it reaches the API 1 s
	// after it was sent); the instance then dies.
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Latency: time.Second})
	old := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 0.2})
	handle := recovery(t, old).RunID

	restarted := newPeer(t, e, func(d *betterprompt.Toolset) { d.ExclusiveKey = true })
	// A new call on the restarted instance; its POST fails before it
	// reaches the API: it starts nothing.
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 500})
	next := callWith(t, restarted, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion,
		"inputs":       map[string]any{"textInputs": map[string]any{"company_name": "Other Co", "recipient_role": "CFO", "value_proposition": "Something else."}},
		"wait_seconds": 4})
	runs := e.fake.Runs(testKey)
	if len(runs) != 1 {
		t.Fatalf("setup: %d runs upstream, want 1 (the previous instance's)", len(runs))
	}
	previous := runs[0].RunID
	if v := recovery(t, next); v.RunID == previous || len(v.Outputs) > 0 {
		mine := recovery(t, callWith(t, restarted, "get_run", map[string]any{"run_id": handle, "wait_seconds": 0}))
		t.Errorf("the previous instance's run %s (handle %s, which get_run now answers as %s with candidates %v) was handed to a new call as its own: %s",
			previous, handle, mine.Status, mine.Candidates, text(next))
	}
}

// get_run with a handle this instance does not know lists the runs of the
// prompt in the handle's window as runs that may be the caller's own,
// including runs this instance knows for certain to be another call's (the
// API named them in answer to its own POSTs). A caller whose start never
// reached the API is then told to pick among other callers' runs (and
// reads their outputs) instead of being told that nothing was started.
func TestForeignHandleDoesNotOfferRunsClaimedByOtherCalls(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withStartBound(time.Second))
	// Caller 1's start, on the instance that then goes away, fails before
	// it reaches the API.
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Status: 500})
	first := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 0.1})
	handle := recovery(t, first).RunID
	submitted := time.Now()

	// Caller 2 runs the same prompt on the instance that remains; the API
	// answers with its run id.
	other := newPeer(t, e)
	second := callWith(t, other, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion,
		"inputs":       map[string]any{"textInputs": map[string]any{"company_name": "Other Co", "recipient_role": "CFO", "value_proposition": "Something else."}},
		"wait_seconds": 5})
	mustOK(t, second)
	theirs := runView(t, second).RunID
	if n := len(e.fake.Runs(testKey)); n != 1 {
		t.Fatalf("setup: %d runs upstream, want 1 (caller 2's)", n)
	}

	// After the handle's window, caller 1 asks the remaining instance.
	time.Sleep(time.Until(submitted.Add(1500 * time.Millisecond)))
	got := callWith(t, other, "get_run", map[string]any{"run_id": handle, "wait_seconds": 0})
	if v := recovery(t, got); v.hasCandidate(theirs) || v.RunID == theirs {
		t.Errorf("caller 2's run %s, which this instance knows to be caller 2's, is offered to caller 1 (handle %s): %s", theirs, handle, text(got))
	}
}

// A handle another instance does not know has a window that holds every
// moment its POST may have been in flight: a run created late in a long
// POST is a candidate, never "not started".
func TestForeignHandleWindowCoversALongPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withStartBound(time.Second))
	e.fake.InjectFault(routeCreate, fakeapi.Fault{Kind: fakeapi.FaultDropAfterCreate, Latency: 1500 * time.Millisecond})
	res := e.call(t, "run_prompt", map[string]any{"prompt_version_id": coldEmailVersion, "inputs": coldEmailInputs, "wait_seconds": 0.2})
	handle := recovery(t, res).RunID
	runs := waitForRuns(t, e.fake, 1, 5*time.Second)
	if len(runs) != 1 {
		t.Fatalf("setup: %d runs", len(runs))
	}
	time.Sleep(500 * time.Millisecond) // past the start bound after the POST was sent
	got := callWith(t, newPeer(t, e), "get_run", map[string]any{"run_id": handle, "wait_seconds": 0})
	if v := recovery(t, got); v.Status == "not_started" || !v.hasCandidate(runs[0].RunID) {
		t.Errorf("run %s, created while the POST of handle %s was in flight, is not a candidate: %s", runs[0].RunID, handle, text(got))
	}
}
