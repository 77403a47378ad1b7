package tools

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/mark3labs/mcp-go/mcp"
)

// Regression tests for the second review of the run lifecycle.

var researchRequest = bpapi.CreateRunRequest{PromptVersionID: deepResearchVer,
	Inputs: bpapi.RunInputs{TextInputs: map[string]string{"question": "q?", "depth": "overview"}}}

// A waiter that followed the run list's guess switches to the run the API
// names when the POST answers.
func TestAwaitRunFollowsTheAPIsRunID(t *testing.T) {
	e := newLifecycleEnv(t) // e.run: a run of the same version by another client
	ctx := context.Background()
	s := e.pending(nil, false)
	suggested, _, _ := e.d.runs.findRunID(ctx, e.c, s)
	if suggested != e.run {
		t.Fatalf("setup: findRunID = %q", suggested)
	}
	_, err := e.c.CreateRun(ctx, researchRequest)
	ours, _ := bpapi.TimedOutRunID(err)
	w := &waiter{d: e.d, c: e.c, deadline: time.Now().Add(800 * time.Millisecond)}
	type res struct {
		out waitOutcome
		err error
	}
	done := make(chan res, 1)
	go func() { o, err := w.awaitRun(ctx, suggested, deepResearchVer, s); done <- res{o, err} }()
	time.Sleep(100 * time.Millisecond)
	e.d.runs.finish(s, nil, &bpapi.APIError{HTTPStatus: 504, Code: bpapi.CodeGatewayTimeout, RunID: ours})
	r := <-done
	if r.err != nil || r.out.run == nil || r.out.run.RunID != ours {
		t.Errorf("waiter returned %+v, %v; want our run %s, not %s", r.out.run, r.err, ours, suggested)
	}
}

// A submission made while the run list is being read is seen by the
// ambiguity check, so its run is not claimed for another submission.
func TestFindRunIDSeesSubmissionsMadeMeanwhile(t *testing.T) {
	cat, err := fakeapi.LoadCatalogueDir("../testdata/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	fake, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: cat, SyncWindow: 500 * time.Millisecond})
	c := bpapi.New(bpapi.Options{BaseURL: base, APIKey: testKey})
	t.Cleanup(c.CloseIdleConnections)
	d := &Deps{Client: c}
	All(d)
	d.runs.byID, d.runs.claimed = map[string]*submission{}, map[string]bool{}
	// s: a POST that failed with an unknown outcome and in fact created nothing.
	unknown := errors.Join(bpapi.ErrOutcomeUnknown, errors.New("connection reset"))
	s := &submission{handle: newHandle(time.Now()), versionID: deepResearchVer, submitted: time.Now(),
		done: make(chan struct{}), log: d.logger(), err: unknown, finished: time.Now()}
	close(s.done)
	d.runs.byID[s.handle] = s

	fake.InjectFault("GET /v1/runs", fakeapi.Fault{Latency: 300 * time.Millisecond})
	got := make(chan string, 1)
	go func() { id, _, _ := d.runs.findRunID(context.Background(), c, s); got <- id }()
	time.Sleep(50 * time.Millisecond)
	o, err := d.runs.submit(context.Background(), d, c, "", researchRequest)
	if err != nil {
		t.Fatal(err)
	}
	claimed := <-got
	<-o.done
	if oid := d.runs.runID(o); claimed != "" && claimed == oid {
		t.Errorf("s claimed o's run %s", claimed)
	}
	_ = d.runs.wait(context.Background())
}

// A POST that the API refuses while the run list is being read claims
// nothing.
func TestFindRunIDAfterARefusal(t *testing.T) {
	e := newLifecycleEnv(t)
	s := e.pending(nil, false)
	s.submitted = time.Now()
	e.fake.InjectFault("GET /v1/runs", fakeapi.Fault{Latency: 300 * time.Millisecond})
	got := make(chan string, 1)
	go func() { id, _, _ := e.d.runs.findRunID(context.Background(), e.c, s); got <- id }()
	time.Sleep(50 * time.Millisecond)
	e.d.runs.finish(s, nil, &bpapi.APIError{HTTPStatus: 402, Code: bpapi.CodePaymentRequired})
	if id := <-got; id != "" {
		t.Errorf("claimed run %s for a POST the API refused (402)", id)
	}
}

// A task call stops at shutdown, and its run id is logged before exit.
func TestTaskStopsAtShutdownAndLogsTheRunID(t *testing.T) {
	cat, err := fakeapi.LoadCatalogueDir("../testdata/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	fake, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: cat, SyncWindow: 300 * time.Millisecond})
	c := bpapi.New(bpapi.Options{BaseURL: base, APIKey: testKey})
	t.Cleanup(c.CloseIdleConnections)
	logs := &lockedBuffer{}
	d := &Deps{Client: c, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Wait: WaitConfig{Max: 20 * time.Second, PollMin: 50 * time.Millisecond, PollMax: 100 * time.Millisecond}}
	var handler func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
	for _, st := range All(d) {
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
	time.Sleep(100 * time.Millisecond)
	cancel() // the request ends (as mcp-go's task context does); the task must go on
	time.Sleep(100 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the task ended with its creating request")
	default:
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := d.WaitForRuns(wctx); err != nil { // shutdown
		t.Fatal(err)
	}
	select {
	case <-done:
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
		if got, ok := handleTime(newHandle(at)); !ok || !got.Equal(at) {
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
