package betterprompt

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/syncbuf"
	"github.com/bpmcp/bpmcp/runs"
	"github.com/bpmcp/bpmcp/tools"
)

const (
	testKey         = "bp_test_key"
	deepResearchVer = "5326247b-9496-4564-8298-35f19a183ef2"
)

var researchRequest = bpapi.CreateRunRequest{PromptVersionID: deepResearchVer,
	Inputs: bpapi.RunInputs{TextInputs: map[string]string{"question": "q?", "depth": "overview"}}}

// lifecycleEnv is a fake API with one run of the deep-research prompt
// already started, and a Toolset whose logs are captured.
type lifecycleEnv struct {
	d    *Toolset
	c    *bpapi.Client
	fake *fakeapi.Server
	run  string // the upstream run's id
	logs *syncbuf.Buffer
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
	logs := &syncbuf.Buffer{}
	d := &Toolset{Client: c, ExclusiveKey: exclusive, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	d.upSince = time.Now().Add(-time.Hour) // no previous instance's POST can create a run now
	d.Tools(nil)
	t.Cleanup(func() { c.CloseIdleConnections() })
	return &lifecycleEnv{d: d, c: c, fake: fake, run: runID, logs: logs}
}

// A handle this process does not know (another replica, a restart) is
// answered through the API's run list with the runs of its prompt version
// started around its time, rendered as unconfirmed candidates, and, past
// the start bound without any, as not started; an id that is no handle is
// said not to exist. (runs.TestForeignHandle checks the rules.)
func TestForeignHandle(t *testing.T) {
	t.Parallel()
	e := newLifecycleEnv(t, true)
	follow := func(id string) (runs.Outcome, error) {
		return e.d.runEngine().Follow(context.Background(), upstream{e.c}, e.c.KeyID(), id, time.Now(), nil)
	}
	o, err := follow(runs.NewHandle(time.Now().Add(-time.Second), deepResearchVer))
	if err != nil || o.Job != nil || o.Look == nil || len(o.Look.Candidates) != 1 || o.Look.Candidates[0].ID != e.run {
		t.Errorf("outcome %+v, %v; want the run %s as an unconfirmed candidate", o, err, e.run)
	}
	v := e.d.renderOutcome(o).Value
	if v.Confirmed || v.Status != "unconfirmed" || len(v.Candidates) != 1 || v.Candidates[0].RunID != e.run || v.Candidates[0].CreatedAt == "" {
		t.Errorf("rendered %+v", v)
	}
	o, _ = follow(runs.NewHandle(time.Now().Add(-time.Second), coldEmailVersionForTests))
	if o.Look == nil || len(o.Look.Candidates) != 0 || o.State != runs.StateUnknown {
		t.Errorf("a handle of another version lists %+v", o.Look)
	}
	o, _ = follow(runs.NewHandle(time.Now().Add(-48*time.Hour), deepResearchVer))
	if r := e.d.renderOutcome(o); o.State != runs.StateNotStarted || !r.IsError || r.Value.Status != "not_started" {
		t.Errorf("a handle past its bound without runs: state %d, %+v", o.State, r.Value)
	}
	_, err = follow("6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11")
	if msg := describeError(engineError(err)); !strings.Contains(msg, "No run with id") {
		t.Errorf("message for an unknown upstream id: %s", msg)
	}
}

const coldEmailVersionForTests = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"

// A submission whose run list could not be read is said so, not worded as
// an empty list or as certain in 0 s. (runs.TestUnwatchedUnknownSubmission
// IsLookedUpByTheCall checks that the call reads the list.)
func TestUnreadableRunListIsSaid(t *testing.T) {
	t.Parallel()
	d := &Toolset{}
	d.Tools(nil)
	o := runs.Outcome{Handle: runs.NewHandle(time.Now().Add(-time.Hour), deepResearchVer), State: runs.StateUnknown,
		CertainAt: time.Now().Add(-time.Minute), Submitted: time.Now().Add(-time.Hour),
		Cause: errors.Join(bpapi.ErrOutcomeUnknown, errors.New("connection reset")), LookErr: &bpapi.APIError{HTTPStatus: 500}}
	if msg := d.renderNoRun(o).Value.Message; !strings.Contains(msg, "could not be read") || strings.Contains(msg, "in 0 s") {
		t.Errorf("message %q; want the unreadable list said", msg)
	}
}

// A huge wait_seconds waits the maximum instead of overflowing to nothing.
func TestWaitForClamps(t *testing.T) {
	t.Parallel()
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

// A task call stops at shutdown, and its run id is logged before exit.
func TestTaskStopsAtShutdownAndLogsTheRunID(t *testing.T) {
	t.Parallel()
	cat, err := fakeapi.LoadCatalogueDir("../../testdata/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	fake, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: cat, SyncWindow: 300 * time.Millisecond})
	c := bpapi.New(bpapi.Options{BaseURL: base, APIKey: testKey})
	t.Cleanup(c.CloseIdleConnections)
	logs := &syncbuf.Buffer{}
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

// waitFor polls cond until it holds or five seconds pass.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
	}
}
