package tools

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
)

const (
	testKey         = "bp_test_key"
	deepResearchVer = "5326247b-9496-4564-8298-35f19a183ef2"
)

// lifecycleEnv is a fake API with one run of the deep-research prompt
// already started, and a Deps whose logs are captured.
type lifecycleEnv struct {
	d    *Deps
	c    *bpapi.Client
	fake *fakeapi.Server
	run  string // the upstream run's id
	logs *bytes.Buffer
}

func newLifecycleEnv(t *testing.T) *lifecycleEnv {
	t.Helper()
	cat, err := fakeapi.LoadCatalogueDir("../testdata/catalogue")
	if err != nil {
		t.Fatal(err)
	}
	fake, base := fakeapi.NewTestServer(t, fakeapi.Options{Catalogue: cat, SyncWindow: time.Millisecond})
	c := bpapi.New(bpapi.Options{BaseURL: base, APIKey: testKey})
	_, err = c.CreateRun(context.Background(), bpapi.CreateRunRequest{PromptVersionID: deepResearchVer,
		Inputs: bpapi.RunInputs{TextInputs: map[string]string{"question": "q?", "depth": "overview"}}})
	runID, ok := bpapi.TimedOutRunID(err)
	if !ok {
		t.Fatalf("want a 504 with a run id, got %v", err)
	}
	logs := &bytes.Buffer{}
	d := &Deps{Client: c, Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	All(d)
	d.runs.byID, d.runs.claimed = map[string]*submission{}, map[string]bool{}
	t.Cleanup(func() { c.CloseIdleConnections() })
	return &lifecycleEnv{d: d, c: c, fake: fake, run: runID, logs: logs}
}

// pending registers a submission as if its POST were in flight (finished
// zero) or had ended with err.
func (e *lifecycleEnv) pending(err error, finished bool) *submission {
	s := &submission{handle: newHandle(time.Now()), versionID: deepResearchVer, submitted: time.Now().Add(-2 * time.Second),
		done: make(chan struct{}), log: e.d.logger(), err: err}
	if finished {
		s.finished = time.Now()
	}
	e.d.runs.byID[s.handle] = s
	return s
}

func TestFindRunID(t *testing.T) {
	unknown := errors.Join(bpapi.ErrOutcomeUnknown, errors.New("connection reset"))
	t.Run("certain match", func(t *testing.T) {
		e := newLifecycleEnv(t)
		s := e.pending(nil, false)
		if got, row, err := e.d.runs.findRunID(context.Background(), e.c, s); err != nil || got != e.run || row == nil || row.RunID != e.run {
			t.Fatalf("findRunID = %q, want %s", got, e.run)
		}
		if !e.d.runs.claimed[e.run] {
			t.Error("the run is not claimed")
		}
	})
	t.Run("another submission in flight", func(t *testing.T) {
		e := newLifecycleEnv(t)
		e.pending(nil, false)
		if got, _, _ := e.d.runs.findRunID(context.Background(), e.c, e.pending(nil, false)); got != "" {
			t.Errorf("claimed %s although two runs of the prompt are in flight", got)
		}
	})
	t.Run("another submission with an unknown outcome", func(t *testing.T) {
		e := newLifecycleEnv(t)
		e.pending(unknown, true)
		if got, _, _ := e.d.runs.findRunID(context.Background(), e.c, e.pending(nil, false)); got != "" {
			t.Errorf("claimed %s, which may be the other submission's run", got)
		}
	})
	t.Run("the POST definitely failed", func(t *testing.T) {
		e := newLifecycleEnv(t)
		s := e.pending(&bpapi.APIError{HTTPStatus: 402, Code: bpapi.CodePaymentRequired}, true)
		if got, _, _ := e.d.runs.findRunID(context.Background(), e.c, s); got != "" {
			t.Errorf("claimed %s for a run the API refused", got)
		}
	})
	t.Run("already claimed", func(t *testing.T) {
		e := newLifecycleEnv(t)
		e.d.runs.claimed[e.run] = true
		if got, _, _ := e.d.runs.findRunID(context.Background(), e.c, e.pending(nil, false)); got != "" {
			t.Errorf("claimed %s twice", got)
		}
	})
}

// After the drain starts, no new paid run is started.
func TestSubmitAfterDrainIsRefused(t *testing.T) {
	e := newLifecycleEnv(t)
	if err := e.d.runs.wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	before := e.fake.Count("POST /v1/runs")
	_, err := e.d.runs.submit(context.Background(), e.d, e.c, "", bpapi.CreateRunRequest{PromptVersionID: deepResearchVer})
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
	e := newLifecycleEnv(t)
	known := e.pending(nil, false)
	known.runID = "0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e02"
	e.d.runs.abandon(known, context.Canceled)
	if !strings.Contains(e.logs.String(), "run_id="+known.runID) {
		t.Errorf("the known run id was not logged:\n%s", e.logs.String())
	}
	later := e.pending(nil, false)
	e.d.runs.abandon(later, context.Canceled)
	e.d.runs.finish(later, nil, &bpapi.APIError{HTTPStatus: 504, Code: bpapi.CodeGatewayTimeout, RunID: e.run})
	if !strings.Contains(e.logs.String(), "level=INFO msg=\"run started after its tool call ended; it continues upstream\"") ||
		!strings.Contains(e.logs.String(), "run_id="+e.run) {
		t.Errorf("the late run id was not logged at info level:\n%s", e.logs.String())
	}
}

func TestHandles(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 4, 5, 678e6, time.UTC)
	h := newHandle(at)
	if !uuidPattern.MatchString(h) || h[14] != '8' || !strings.ContainsAny(h[19:20], "89ab") {
		t.Fatalf("handle %s is not a version-8 UUID", h)
	}
	if got, ok := handleTime(h); !ok || !got.Equal(at.Truncate(time.Millisecond)) {
		t.Errorf("handleTime(%s) = %v, %v; want %v", h, got, ok, at)
	}
	if h2 := newHandle(at); h2 == h {
		t.Error("two handles made at the same moment are equal")
	}
	if _, ok := handleTime("6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"); ok {
		t.Error("a version-4 UUID read as a handle")
	}
}

// A huge wait_seconds waits the maximum instead of overflowing to nothing.
func TestWaitForClamps(t *testing.T) {
	d := &Deps{Wait: WaitConfig{Default: 45 * time.Second, Max: 10 * time.Minute}}
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
// answered with the runs started around its time, not with "no such run".
func TestUnknownHandleListsRunsOfThatMoment(t *testing.T) {
	e := newLifecycleEnv(t)
	err := e.d.unknownRunError(context.Background(), e.c, newHandle(time.Now().Add(-time.Second)), errors.New("404"))
	if msg := describeError(err); !strings.Contains(msg, e.run) || !strings.Contains(msg, "Do not start the run again") {
		t.Errorf("message does not list the run: %s", msg)
	}
	err = e.d.unknownRunError(context.Background(), e.c, newHandle(time.Now().Add(-48*time.Hour)), errors.New("404"))
	if msg := describeError(err); !strings.Contains(msg, "most likely started none") {
		t.Errorf("message for a moment without runs: %s", msg)
	}
	err = e.d.unknownRunError(context.Background(), e.c, "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11", errors.New("404"))
	if msg := describeError(err); !strings.Contains(msg, "No run with id") {
		t.Errorf("message for an unknown upstream id: %s", msg)
	}
}
