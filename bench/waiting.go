package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
	"github.com/bpmcp/bpmcp/tools/betterprompt"
)

// Part 4 runs in process: betterprompt.Toolset and their handlers, as the binary
// builds them, against a fake on a loopback port. Time may be accelerated
// by a factor scale < 1; then every duration that matters is multiplied by
// it alike — the fake's run duration (TimeScale) and sync window, the
// server's wait settings (WaitConfig), wait_seconds, and both rate limits
// (divided) — and measured times are divided by it, so the figures read as
// real-time seconds. At scale 1 the settings are exactly the binary's
// defaults.

// waitScenario is one run to wait for.
type waitScenario struct {
	Run time.Duration // how long the run takes upstream (before scaling)
	// Agent makes the calls an agent makes under a host's ~60 s tool
	// timeout: run_prompt with the default wait (45 s), then get_run with
	// the default wait until the run is final. Otherwise one run_prompt call
	// with wait_seconds long enough for the whole run.
	Agent bool
}

func (w waitScenario) label() string {
	if w.Agent {
		return fmt.Sprintf("%s run, run_prompt + get_run (default 45 s waits)", secsShort(w.Run))
	}
	return fmt.Sprintf("%s run, one run_prompt call (wait_seconds %s)", secsShort(w.Run), secsShort(w.Run+time.Minute))
}

func secsShort(d time.Duration) string { return fmt.Sprintf("%g s", d.Seconds()) }

type waitResult struct {
	waitScenario
	ToolCalls    int
	Posts        int // POST /v1/runs
	Polls        int // GET /v1/runs/{runId}
	Lists        int // GET /v1/runs (finding a run whose POST is still held)
	Other        int // anything else during the run (should be 0)
	Elapsed      time.Duration
	Delay        time.Duration // tool return − RunInfo.FinishedAt, real-time equivalent
	Status       string
	RequestTimes []time.Duration // arrival of each upstream request after the first call, real-time equivalent
}

func (r waitResult) requests() int { return r.Posts + r.Polls + r.Lists + r.Other }

// interval is the mean time between upstream requests over the run.
func (r waitResult) interval() time.Duration {
	if r.requests() == 0 {
		return 0
	}
	return r.Elapsed / time.Duration(r.requests())
}

// waitPrompt is the catalogue prompt the runs use (cold-email-opener).
const (
	waitPromptVersion = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"
	waitPromptID      = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01"
	waitInputs        = `{"textInputs":{"company_name":"Northwind Logistics","recipient_role":"Head of Operations","value_proposition":"We cut pick errors by 40%"}}`
)

// measureWaiting runs every scenario at once (each with its own fake and
// server state, so their requests cannot mix) and returns when all are done.
func measureWaiting(cat []fakeapi.Prompt, scenarios []waitScenario, scale float64) ([]waitResult, error) {
	var base *fakeapi.Prompt
	for i := range cat {
		if cat[i].PromptID == waitPromptID {
			base = &cat[i]
		}
	}
	if base == nil {
		return nil, fmt.Errorf("prompt %s is not in the catalogue", waitPromptID)
	}
	results := make([]waitResult, len(scenarios))
	errs := make([]error, len(scenarios))
	var wg sync.WaitGroup
	for i, sc := range scenarios {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = waitOnce(*base, sc, scale)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return results, nil
}

func scaled(d time.Duration, scale float64) time.Duration {
	return time.Duration(float64(d) * scale)
}

func waitOnce(p fakeapi.Prompt, sc waitScenario, scale float64) (waitResult, error) {
	res := waitResult{waitScenario: sc}
	p.DurationMs = int(sc.Run / time.Millisecond)
	fake := fakeapi.New(fakeapi.Options{
		Catalogue:  []fakeapi.Prompt{p},
		Keys:       map[string]fakeapi.Key{benchKey: {Credits: 1 << 30}},
		SyncWindow: scaled(120*time.Second, scale),
		TimeScale:  scale,
		RateLimit:  5 / scale,
	})
	hs := httptest.NewServer(fake)
	defer hs.Close()
	defer fake.Close()

	def := betterprompt.DefaultWaitConfig()
	deps := &betterprompt.Toolset{
		Client: bpapi.New(bpapi.Options{BaseURL: hs.URL + "/v1", APIKey: benchKey, RateLimit: 5 / scale}),
		Wait: betterprompt.WaitConfig{
			Default:       scaled(def.Default, scale),
			Max:           scaled(def.Max, scale),
			CreateTimeout: scaled(def.CreateTimeout, scale),
			PollMin:       scaled(def.PollMin, scale),
			PollMax:       scaled(def.PollMax, scale),
			ProgressEvery: scaled(def.ProgressEvery, scale),
		},
	}
	handlers := map[string]func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error){}
	for _, t := range deps.Tools(nil) {
		handlers[t.Tool.Name] = t.Handler
	}
	ctx := context.Background()
	call := func(name string, args map[string]any) (betterprompt.RunView, error) {
		req := mcp.CallToolRequest{}
		req.Params.Name = name
		req.Params.Arguments = args
		r, err := handlers[name](ctx, req)
		if err != nil {
			return betterprompt.RunView{}, err
		}
		if r.IsError {
			return betterprompt.RunView{}, fmt.Errorf("%s: %v", name, r.Content)
		}
		v, _ := r.StructuredContent.(betterprompt.RunView)
		return v, nil
	}
	// An agent reads the prompt first; that also fills the server's cache
	// of prompt configurations, so run_prompt then sends only the POST.
	if _, err := call("get_prompt", map[string]any{"prompt_id": waitPromptID}); err != nil {
		return res, err
	}
	before := len(fake.Requests())

	var inputs map[string]any
	_ = json.Unmarshal([]byte(waitInputs), &inputs)
	args := map[string]any{"prompt_version_id": waitPromptVersion, "inputs": inputs}
	if !sc.Agent {
		args["wait_seconds"] = (sc.Run + time.Minute).Seconds() * scale
	}
	start := time.Now()
	v, err := call("run_prompt", args)
	res.ToolCalls++
	for err == nil && sc.Agent && v.Status != "succeeded" && v.Status != "failed" && res.ToolCalls < 100 {
		v, err = call("get_run", map[string]any{"run_id": v.RunID})
		res.ToolCalls++
	}
	returned := time.Now()
	if err != nil {
		return res, err
	}
	res.Status = v.Status
	res.Elapsed = time.Duration(float64(returned.Sub(start)) / scale)
	info, ok := fake.Run(v.RunID)
	if !ok || info.FinishedAt.IsZero() {
		return res, fmt.Errorf("%s: the run %s is not finished upstream (status %s)", sc.label(), v.RunID, v.Status)
	}
	res.Delay = time.Duration(float64(returned.Sub(info.FinishedAt)) / scale)
	for _, r := range fake.Requests()[before:] {
		switch r.Route {
		case "POST /v1/runs":
			res.Posts++
		case "GET /v1/runs/{runId}":
			res.Polls++
		case "GET /v1/runs":
			res.Lists++
		default:
			res.Other++
		}
		res.RequestTimes = append(res.RequestTimes, time.Duration(float64(r.Time.Sub(start))/scale))
	}
	return res, nil
}
