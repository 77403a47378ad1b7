package betterprompt

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools"
)

const (
	testKey         = "bp_test_key"
	deepResearchVer = "5326247b-9496-4564-8298-35f19a183ef2"
)

var researchRequest = bpapi.CreateRunRequest{PromptVersionID: deepResearchVer,
	Inputs: bpapi.RunInputs{TextInputs: map[string]string{"question": "q?", "depth": "overview"}}}

// lifecycleEnv is a fake API with one run of the deep-research prompt
// already started, and a Deps whose logs are captured.
type lifecycleEnv struct {
	d    *Toolset
	c    *bpapi.Client
	fake *fakeapi.Server
	run  string // the upstream run's id
	logs *lockedBuffer
}

func newLifecycleEnv(t *testing.T, exclusive bool) *lifecycleEnv {
	t.Helper()
	cat, err := fakeapi.LoadCatalogueDir("../../testdata/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	fake, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: cat, SyncWindow: time.Millisecond})
	c := bpapi.New(bpapi.Options{BaseURL: base, APIKey: testKey})
	_, err = c.CreateRun(context.Background(), researchRequest)
	runID, ok := bpapi.TimedOutRunID(err)
	if !ok {
		t.Fatalf("want a 504 with a run id, got %v", err)
	}
	logs := &lockedBuffer{}
	d := &Toolset{Client: c, ExclusiveKey: exclusive, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	d.Tools(nil)
	d.runs.started = time.Now().Add(-time.Hour) // no previous instance's POST can create a run now
	d.runs.mu.Lock()
	d.runs.initLocked()
	d.runs.mu.Unlock()
	t.Cleanup(func() { c.CloseIdleConnections() })
	return &lifecycleEnv{d: d, c: c, fake: fake, run: runID, logs: logs}
}

// pending registers a submission in the given state, as if its POST were
// in flight (statePending) or had ended with err.
func (e *lifecycleEnv) pending(state subState, err error) *submission {
	s := &submission{handle: newHandle(time.Now(), deepResearchVer), versionID: deepResearchVer, submitted: time.Now().Add(-2 * time.Second),
		done: make(chan struct{}), changed: make(chan struct{}), log: e.d.logger(), state: state, err: err}
	if state != statePending {
		s.finished = time.Now()
	}
	e.d.runs.mu.Lock()
	e.d.runs.byHandle[s.handle] = s
	e.d.runs.mu.Unlock()
	return s
}

var errUnknown = errors.Join(bpapi.ErrOutcomeUnknown, errors.New("connection reset"))

// settleOnce looks in the run list once for s and records what it saw.
func (e *lifecycleEnv) settleOnce(t *testing.T, s *submission) {
	t.Helper()
	lk, err := e.d.runs.lookUp(context.Background(), e.d, e.c, s)
	if err != nil {
		t.Fatal(err)
	}
	e.d.runs.settle(e.d, s, lk)
}

// The rules of recovery through the run list: a run found there is a
// submission's for certain only when no other client and no other
// submission of this process could have started it.
func TestRecoveryRules(t *testing.T) {
	for _, tc := range []struct {
		name      string
		exclusive bool
		setup     func(e *lifecycleEnv)
		confirmed bool // the run is claimed for the submission
		candidate bool // the run is listed as a candidate
	}{
		{name: "one run, key used only by this server", exclusive: true, confirmed: true},
		{name: "one run, other clients may use the key", candidate: true},
		{name: "another submission of the version in flight", exclusive: true, candidate: true,
			setup: func(e *lifecycleEnv) { e.pending(statePending, nil) }},
		{name: "another submission with an unknown outcome", exclusive: true, candidate: true,
			setup: func(e *lifecycleEnv) { e.pending(stateUnknown, errUnknown) }},
		{name: "another submission refused", exclusive: true, confirmed: true,
			setup: func(e *lifecycleEnv) { e.pending(stateRefused, errors.New("422")) }},
		{name: "the run is another submission's", exclusive: true,
			setup: func(e *lifecycleEnv) {
				o := e.pending(stateStarted, nil)
				o.runID = e.run
				e.d.runs.claimed[e.run] = o.handle
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newLifecycleEnv(t, tc.exclusive)
			if tc.setup != nil {
				tc.setup(e)
			}
			s := e.pending(stateUnknown, errUnknown)
			e.settleOnce(t, s)
			state, runID, _ := e.d.runs.peek(s)
			if got := state == stateStarted && runID == e.run && e.d.runs.claimed[e.run] == s.handle; got != tc.confirmed {
				t.Errorf("confirmed = %v (state %d, run %q), want %v", got, state, runID, tc.confirmed)
			}
			snap := e.d.runs.read(s)
			listed := snap.look != nil && len(snap.look.candidates) == 1 && snap.look.candidates[0].RunID == e.run
			if listed != (tc.candidate || tc.confirmed) {
				t.Errorf("listed as a candidate = %v, want %v", listed, tc.candidate || tc.confirmed)
			}
			if tc.candidate && !strings.Contains(e.logs.String(), "run_id="+e.run) {
				t.Errorf("the candidate run was not logged:\n%s", e.logs.String())
			}
		})
	}
	t.Run("a refused POST is never settled from the list", func(t *testing.T) {
		e := newLifecycleEnv(t, true)
		s := e.pending(stateRefused, &bpapi.APIError{HTTPStatus: 402, Code: bpapi.CodePaymentRequired})
		e.settleOnce(t, s)
		if state, runID, _ := e.d.runs.peek(s); state != stateRefused || runID != "" {
			t.Errorf("state %d run %q for a run the API refused", state, runID)
		}
	})
}

// Once the start bound has passed, a submission without any run in the run
// list is known not to have started.
func TestNotStartedAfterTheBound(t *testing.T) {
	e := newLifecycleEnv(t, false)
	e.d.Wait.StartBound, e.d.runs.startBound = time.Second, time.Second
	s := e.pending(stateUnknown, errUnknown)
	s.versionID = coldEmailVersionForTests // no run of this version exists
	s.submitted = time.Now()
	e.settleOnce(t, s)
	if state, _, _ := e.d.runs.peek(s); state != stateUnknown {
		t.Fatalf("state %d before the bound; want still unknown", state)
	}
	s.submitted = time.Now().Add(-2 * time.Second) // the bound has passed
	s.finished = s.submitted                       // since the POST failed
	e.settleOnce(t, s)
	if state, _, _ := e.d.runs.peek(s); state != stateNotStarted {
		t.Errorf("state %d after the bound; want not started", state)
	}
}

const coldEmailVersionForTests = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"

// After the drain starts, no new paid run is started.
func TestSubmitAfterDrainIsRefused(t *testing.T) {
	e := newLifecycleEnv(t, false)
	if err := e.d.runs.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := e.fake.Count("POST /v1/runs")
	_, _, err := e.d.runs.submit(context.Background(), e.d, e.c, "", bpapi.CreateRunRequest{PromptVersionID: deepResearchVer})
	if !errors.Is(err, errShuttingDown) {
		t.Fatalf("submit after the drain: %v", err)
	}
	if e.fake.Count("POST /v1/runs") != before {
		t.Error("a POST was sent after the drain")
	}
}

// An abandoned submission's run id is logged, whether it was known when the
// call ended or arrives later.
func TestAbandonLogsTheRunID(t *testing.T) {
	e := newLifecycleEnv(t, false)
	known := e.pending(stateStarted, nil)
	known.runID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e02"
	e.d.runs.abandon(known, context.Canceled)
	if !strings.Contains(e.logs.String(), "run_id="+known.runID) {
		t.Errorf("the known run id was not logged:\n%s", e.logs.String())
	}
	later := e.pending(statePending, nil)
	e.d.runs.abandon(later, context.Canceled)
	e.d.runs.finish(later, nil, &bpapi.APIError{HTTPStatus: 504, Code: bpapi.CodeGatewayTimeout, RunID: e.run})
	if !strings.Contains(e.logs.String(), "level=INFO msg=\"run started after its tool call ended; it continues upstream\"") ||
		!strings.Contains(e.logs.String(), "run_id="+e.run) {
		t.Errorf("the late run id was not logged at info level:\n%s", e.logs.String())
	}
}

func TestHandles(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 4, 5, 678e6, time.UTC)
	h := newHandle(at, deepResearchVer)
	if !uuidPattern.MatchString(h) || h[14] != '8' || !strings.ContainsAny(h[19:20], "89ab") {
		t.Fatalf("handle %s is not a version-8 UUID", h)
	}
	if got, ok := handleTime(h); !ok || !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("handleTime(%s) = %v, %v; want %v", h, got, ok, at)
	}
	if h2 := newHandle(at, deepResearchVer); h2 == h {
		t.Error("two handles made at the same moment are equal")
	}
	if _, ok := handleTime("6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"); ok {
		t.Error("a version-4 UUID read as a handle")
	}
	matches := handleVersionMatcher(h)
	if !matches(deepResearchVer) || matches(coldEmailVersionForTests) {
		t.Error("the handle's version tag does not single out its prompt version")
	}
	// A handle without the tag (made before it existed) matches every version.
	untagged := h[:21] + "00" + h[23:]
	if m := handleVersionMatcher(untagged); !m(deepResearchVer) || !m(coldEmailVersionForTests) {
		t.Error("an untagged handle filters versions")
	}
}

// A huge wait_seconds waits the maximum instead of overflowing to nothing.
func TestWaitForClamps(t *testing.T) {
	d := &Toolset{Wait: WaitConfig{Default: 45 * time.Second, Max: 10 * time.Minute}}
	for _, s := range []float64{1e10, 1e300, 600, 601} {
		if got := d.waitFor(context.Background(), &s); got != 10*time.Minute {
			t.Errorf("waitFor(%g) = %v", s, got)
		}
	}
	half := 0.5
	if got := d.waitFor(context.Background(), &half); got != 500*time.Millisecond {
		t.Errorf("waitFor(0.5) = %v", got)
	}
}

// A handle this process does not know (another replica, a restart) is
// answered with the runs of its prompt version started around its time,
// never as this call's for certain, and, past the start bound without any,
// as not started.
func TestForeignHandle(t *testing.T) {
	e := newLifecycleEnv(t, true)
	o, err := e.d.foreignHandle(context.Background(), e.c, newHandle(time.Now().Add(-time.Second), deepResearchVer), errors.New("404"))
	if err != nil || o.run != nil || o.look == nil || len(o.look.candidates) != 1 || o.look.candidates[0].RunID != e.run {
		t.Errorf("outcome %+v, %v; want the run %s as an unconfirmed candidate", o, err, e.run)
	}
	v := e.d.renderOutcome(o).Value
	if v.Confirmed || v.Status != "unconfirmed" || len(v.Candidates) != 1 {
		t.Errorf("rendered %+v", v)
	}
	o, _ = e.d.foreignHandle(context.Background(), e.c, newHandle(time.Now().Add(-time.Second), coldEmailVersionForTests), errors.New("404"))
	if o.look == nil || len(o.look.candidates) != 0 || o.state != stateUnknown {
		t.Errorf("a handle of another version lists %+v", o.look)
	}
	o, _ = e.d.foreignHandle(context.Background(), e.c, newHandle(time.Now().Add(-48*time.Hour), deepResearchVer), errors.New("404"))
	if r := e.d.renderOutcome(o); o.state != stateNotStarted || !r.IsError || r.Value.Status != "not_started" {
		t.Errorf("a handle past its bound without runs: state %d, %+v", o.state, r.Value)
	}
	_, err = e.d.foreignHandle(context.Background(), e.c, "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11", errors.New("404"))
	if msg := describeError(err); !strings.Contains(msg, "No run with id") {
		t.Errorf("message for an unknown upstream id: %s", msg)
	}
}

// A waiter that followed the run list's guess switches to the run the API
// names when the POST answers.
func TestAwaitRunFollowsTheAPIsRunID(t *testing.T) {
	e := newLifecycleEnv(t, true) // e.run: a run of the same version by another client
	ctx := context.Background()
	s := e.pending(statePending, nil)
	lk, err := e.d.runs.lookUp(ctx, e.d, e.c, s)
	if err != nil {
		t.Fatal(err)
	}
	suggested, ok := e.d.runs.confirmPending(e.d, s, lk)
	if !ok || suggested.RunID != e.run {
		t.Fatalf("setup: confirmPending = %v, %v", suggested, ok)
	}
	_, err = e.c.CreateRun(ctx, researchRequest)
	ours, _ := bpapi.TimedOutRunID(err)
	w := &waiter{d: e.d, c: e.c, deadline: time.Now().Add(800 * time.Millisecond)}
	type res struct {
		out waitOutcome
		err error
	}
	done := make(chan res, 1)
	started := make(chan struct{})
	go func() {
		close(started)
		o, err := w.awaitRun(ctx, suggested.RunID, deepResearchVer, s)
		done <- res{o, err}
	}()
	<-started
	e.d.runs.finish(s, nil, &bpapi.APIError{HTTPStatus: 504, Code: bpapi.CodeGatewayTimeout, RunID: ours})
	r := <-done
	if r.err != nil || r.out.run == nil || r.out.run.RunID != ours {
		t.Errorf("waiter returned %+v, %v; want our run %s, not %s", r.out.run, r.err, ours, suggested.RunID)
	}
	if e.d.runs.claimed[suggested.RunID] == s.handle {
		t.Errorf("the suggested run %s is still claimed", suggested.RunID)
	}
}

// A submission made while the run list is being read is seen by the
// ambiguity check, so its run is not claimed for another submission.
func TestSubmissionsMadeWhileListingCount(t *testing.T) {
	e := newLifecycleEnv(t, true)
	s := e.pending(stateUnknown, errUnknown)
	s.submitted = time.Now()
	e.fake.InjectFault("GET /v1/runs", fakeapi.Fault{Latency: 300 * time.Millisecond})
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		lk, err := e.d.runs.lookUp(context.Background(), e.d, e.c, s)
		if err == nil {
			e.d.runs.settle(e.d, s, lk)
		}
	}()
	waitFor(t, func() bool { return e.fake.Count("GET /v1/runs") == 1 })
	o, _, err := e.d.runs.submit(context.Background(), e.d, e.c, "", researchRequest)
	if err != nil {
		t.Fatal(err)
	}
	<-settled
	<-o.done
	_, claimed, _ := e.d.runs.peek(s)
	if _, oid, _ := e.d.runs.peek(o); claimed != "" && claimed == oid {
		t.Errorf("s claimed o's run %s", claimed)
	}
	_ = e.d.runs.wait(context.Background())
}

// A POST that the API refuses while the run list is being read claims
// nothing.
func TestRefusalWhileListingClaimsNothing(t *testing.T) {
	e := newLifecycleEnv(t, true)
	s := e.pending(statePending, nil)
	s.submitted = time.Now()
	e.fake.InjectFault("GET /v1/runs", fakeapi.Fault{Latency: 300 * time.Millisecond})
	got := make(chan bool, 1)
	go func() {
		lk, err := e.d.runs.lookUp(context.Background(), e.d, e.c, s)
		if err != nil {
			got <- false
			return
		}
		_, ok := e.d.runs.confirmPending(e.d, s, lk)
		got <- ok
	}()
	waitFor(t, func() bool { return e.fake.Count("GET /v1/runs") == 1 })
	e.d.runs.finish(s, nil, &bpapi.APIError{HTTPStatus: 402, Code: bpapi.CodePaymentRequired})
	if <-got {
		t.Errorf("claimed a run for a POST the API refused (402)")
	}
}

// A task call stops at shutdown, and its run id is logged before exit.
func TestTaskStopsAtShutdownAndLogsTheRunID(t *testing.T) {
	cat, err := fakeapi.LoadCatalogueDir("../../testdata/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	fake, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: cat, SyncWindow: 300 * time.Millisecond})
	c := bpapi.New(bpapi.Options{BaseURL: base, APIKey: testKey})
	t.Cleanup(c.CloseIdleConnections)
	logs := &lockedBuffer{}
	d := &Toolset{Client: c, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Wait: WaitConfig{Max: 20 * time.Second, PollMin: 50 * time.Millisecond, PollMax: 100 * time.Millisecond}}
	var handler func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
	for _, st := range d.Tools(&tools.Tasks{}) {
		if st.Tool.Name == "run_prompt" {
			handler = st.Handler
		}
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "run_prompt"
	req.Params.Arguments = map[string]any{"prompt_version_id": deepResearchVer,
		"inputs": map[string]any{"textInputs": map[string]any{"question": "q?", "depth": "overview"}}}
	req.Params.Task = &mcp.TaskParams{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *mcp.CallToolResult, 1)
	go func() { r, _ := handler(ctx, req); done <- r }()
	waitFor(t, func() bool { return fake.Count("POST /v1/runs") == 1 })
	cancel() // the request ends (as mcp-go's task context does); the task must go on
	time.Sleep(100 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the task ended with its creating request")
	default:
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := d.Drain(wctx); err != nil { // shutdown
		t.Fatal(err)
	}
	select {
	case r := <-done:
		if r == nil || r.IsError {
			t.Errorf("the task was not answered with its run: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the task went on after shutdown")
	}
	runs := fake.Runs(testKey)
	if len(runs) != 1 || !strings.Contains(logs.String(), runs[0].RunID) {
		t.Errorf("run %v never reached the info log:\n%s", runs, logs.String())
	}
}

func TestHandleTimeRejectsForeignUUIDs(t *testing.T) {
	for i := range 10000 {
		at := time.UnixMilli(time.Now().UnixMilli() - int64(i)*7919)
		if got, ok := handleTime(newHandle(at, deepResearchVer)); !ok || !got.Equal(at) {
			t.Fatalf("handle of %v reads as %v, %v", at, got, ok)
		}
	}
	for _, id := range []string{"ffffffff-ffff-8fff-bfff-ffffffffffff", "00000000-0000-8000-8000-000000000000",
		"0123abcd-ef01-8123-0000-000000000000", "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"} {
		if at, ok := handleTime(id); ok {
			t.Errorf("handleTime(%s) = %v; want not a handle", id, at)
		}
	}
}

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent log writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A submission whose outcome is unknown and that no recovery watches any
// more (it gave up while the list was unreadable) is looked up by the call
// that asks, which says truthfully when the list still cannot be read.
func TestUnwatchedUnknownSubmissionIsLookedUpByTheCall(t *testing.T) {
	e := newLifecycleEnv(t, false)
	s := e.pending(stateUnknown, errUnknown)
	e.fake.InjectFault("GET /v1/runs", fakeapi.Fault{Status: 500, Count: -1})
	ctx := context.Background()
	w := &waiter{d: e.d, c: e.c, deadline: time.Now().Add(time.Second), progress: tools.NewProgress(ctx, nil)}
	out, err := w.awaitSubmission(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if msg := e.d.renderNoRun(out).Value.Message; out.lookErr == nil || !strings.Contains(msg, "could not be read") || strings.Contains(msg, "in 0 s") {
		t.Errorf("lookErr %v, message %q; want the unreadable list said", out.lookErr, msg)
	}
	e.fake.ClearFaults()
	out, err = w.awaitSubmission(ctx, s)
	if err != nil || out.look == nil || len(out.look.candidates) != 1 || out.look.candidates[0].RunID != e.run {
		t.Errorf("outcome %+v, %v; want the run list read and %s listed", out, err, e.run)
	}
}
