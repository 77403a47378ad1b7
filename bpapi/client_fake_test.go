package bpapi_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
)

// Ids from testdata/catalogue/INDEX.md.
const (
	coldEmailPrompt   = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01"
	coldEmailVersion  = "6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11"
	appIconVersion    = "3b4c5d6e-7f80-4192-a3b4-c5d6e7f8a999"
	doorbellPrompt    = "2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e11"
	stockVersion      = "7d7e3766-9e84-49da-acce-2000c0d76af1"
	researchVersion   = "5326247b-9496-4564-8298-35f19a183ef2"
	productPrompt     = "971bdfbe-ddc4-48a1-bbd1-b33965646a88"
	productVersion    = "84964cba-e085-465b-a0df-1eb7cfad1473"
	productOldVersion = "14360e19-90a8-48e1-92c4-a3a99922b20e"
	whiteboardPrompt  = "e4bc6cf7-37c3-4be5-8e74-9b0e8a3de669"
	unknownUUID       = "00000000-0000-4000-8000-000000000000"
)

var coldEmailInputs = bpapi.RunInputs{TextInputs: map[string]string{
	"company_name":      "Northwind Logistics",
	"recipient_role":    "Head of Operations",
	"value_proposition": "We cut warehouse pick errors by 40% with a camera-based checker that installs in a day",
}}

var (
	catalogueOnce sync.Once
	catalogue     []fakeapi.Prompt
	catalogueErr  error
)

// startFake runs the fake over the test catalogue (fast runs, no rate limit
// unless edit says otherwise) and returns it with a client for
// fakeapi.TestKey.
func startFake(t *testing.T, edit func(*fakeapi.Options), copts ...func(*bpapi.Options)) (*fakeapi.Server, *bpapi.Client) {
	t.Helper()
	catalogueOnce.Do(func() { catalogue, catalogueErr = fakeapi.LoadCatalogueDir("../testdata/catalogue") })
	if catalogueErr != nil {
		t.Fatal(catalogueErr)
	}
	opts := fakeapi.Options{Catalogue: catalogue, RateLimit: -1, TimeScale: 0.01, SyncWindow: 2 * time.Second}
	if edit != nil {
		edit(&opts)
	}
	s, base := fakeapi.NewTestServer(t, opts)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	o := bpapi.Options{BaseURL: base, APIKey: fakeapi.TestKey, HTTPClient: &http.Client{Transport: tr}, RateLimit: -1, UserAgent: "bpmcp/test"}
	for _, f := range copts {
		f(&o)
	}
	return s, bpapi.New(o)
}

func TestFakeEveryEndpoint(t *testing.T) {
	t.Parallel()
	s, c := startFake(t, nil)
	ctx := context.Background()

	rows, err := c.SearchPrompts(ctx, "  cold email  ")
	if err != nil {
		t.Fatalf("SearchPrompts: %v", err)
	}
	i := slices.IndexFunc(rows, func(r bpapi.PromptSummary) bool { return r.PromptID == coldEmailPrompt })
	if i < 0 {
		t.Fatalf("search rows %+v lack the cold email prompt", rows)
	}
	if r := rows[i]; r.PromptVersionID != coldEmailVersion || r.Slug != "cold-email-opener" || r.Model.Index == nil || *r.Model.Index != 50 ||
		r.Modality != "text" || r.EstimatedCredits == nil || *r.EstimatedCredits == 0 || len(r.Config) == 0 {
		t.Errorf("search row %+v", r)
	}
	if none, err := c.SearchPrompts(ctx, "qwxzjv nothing matches this"); err != nil || none == nil || len(none) != 0 {
		t.Errorf("no-match search = %v, %v", none, err)
	}
	if video, err := c.SearchPrompts(ctx, "doorbell camera hello"); err != nil ||
		slices.ContainsFunc(video, func(r bpapi.PromptSummary) bool { return r.PromptID == doorbellPrompt }) {
		t.Errorf("video prompt searchable: %v, %v", video, err)
	}

	p, err := c.GetPrompt(ctx, coldEmailPrompt, "")
	if err != nil || p.PromptVersionID != coldEmailVersion || p.PromptID != coldEmailPrompt || p.Title == "" || len(p.Config) == 0 {
		t.Fatalf("GetPrompt = %+v, %v", p, err)
	}
	old, err := c.GetPrompt(ctx, productPrompt, productOldVersion)
	if err != nil || old.PromptVersionID != productOldVersion {
		t.Fatalf("GetPrompt pinned = %+v, %v", old, err)
	}
	legacy, err := c.GetPrompt(ctx, whiteboardPrompt, "")
	if err != nil || len(legacy.InputsJTD) == 0 || !strings.Contains(string(legacy.InputConfig()), "inputsJTD") {
		t.Fatalf("legacy prompt = %+v, %v", legacy, err)
	}
	vl, err := c.ListPromptVersions(ctx, productPrompt)
	if err != nil || len(vl.Versions) != 2 || vl.Versions[0].PromptVersionID != productVersion || !vl.Versions[0].IsLatest ||
		vl.Versions[1].PromptVersionID != productOldVersion || vl.Versions[1].IsLatest {
		t.Fatalf("ListPromptVersions = %+v, %v", vl, err)
	}
	pv, err := c.GetPromptVersion(ctx, coldEmailVersion)
	if err != nil || pv.PromptID != coldEmailPrompt || len(pv.Config) == 0 {
		t.Fatalf("GetPromptVersion = %+v, %v", pv, err)
	}

	before, err := c.Credits(ctx)
	if err != nil || before <= 0 {
		t.Fatalf("Credits = %d, %v", before, err)
	}
	since := time.Now().Add(-time.Minute).Unix()
	run, err := c.CreateRun(ctx, bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion, Inputs: coldEmailInputs})
	if err != nil {
		t.Fatalf("CreateRun: %v", err)
	}
	if run.Status != bpapi.RunSucceeded || !bpapi.IsUUID(run.RunID) || run.PromptVersionID != coldEmailVersion ||
		len(run.Outputs) == 0 || run.Outputs[0].Type != bpapi.OutputText || run.Outputs[0].Data == "" || run.Tokens == nil || run.CreatedAt == "" {
		t.Fatalf("run = %+v", run)
	}
	got, err := c.GetRun(ctx, run.RunID)
	if err != nil || got.RunID != run.RunID || got.Status != bpapi.RunSucceeded || got.Cost() != run.Cost() {
		t.Fatalf("GetRun = %+v, %v", got, err)
	}
	after, err := c.Credits(ctx)
	if err != nil || after != before-run.Cost() {
		t.Errorf("credits %d -> %d after a run costing %d (%v)", before, after, run.Cost(), err)
	}

	img, err := c.CreateRun(ctx, bpapi.CreateRunRequest{PromptVersionID: appIconVersion,
		Inputs: bpapi.RunInputs{TextInputs: map[string]string{"app_concept": "a habit tracker for houseplants", "style": "clay"}}})
	if err != nil || img.Status != bpapi.RunSucceeded || len(img.Outputs) != 2 || img.Outputs[0].Type != bpapi.OutputImage ||
		!strings.HasPrefix(img.Outputs[0].Data, "http") {
		t.Fatalf("image run = %+v, %v", img, err)
	}

	list, err := c.ListRuns(ctx, bpapi.ListRunsParams{Limit: 1, Status: bpapi.RunSucceeded, Since: since})
	if err != nil || len(list.Rows) != 1 || list.Rows[0].RunID != img.RunID || !list.HasMore {
		t.Fatalf("ListRuns page 1 = %+v, %v", list, err)
	}
	next, err := c.ListRuns(ctx, bpapi.ListRunsParams{Limit: 10, StartingAfter: list.Rows[0].RunID})
	if err != nil || len(next.Rows) != 1 || next.Rows[0].RunID != run.RunID || next.HasMore || next.Rows[0].Credits == nil || next.Rows[0].RunName == "" {
		t.Fatalf("ListRuns page 2 = %+v, %v", next, err)
	}
	back, err := c.ListRuns(ctx, bpapi.ListRunsParams{EndingBefore: run.RunID})
	if err != nil || len(back.Rows) != 1 || back.Rows[0].RunID != img.RunID {
		t.Fatalf("ListRuns endingBefore = %+v, %v", back, err)
	}

	me, err := c.Me(ctx)
	if err != nil || me.Username == nil || *me.Username == "" {
		t.Fatalf("Me = %+v, %v", me, err)
	}
	res, err := c.Resources(ctx)
	if err != nil || res.Hash == "" || res.FindModel("gpt-4.1-mini") == nil || res.FindModel("sora-2") == nil {
		t.Fatalf("Resources = %+v, %v", res, err)
	}

	for _, r := range s.Requests() {
		if r.Route == "" || r.Status != http.StatusOK {
			t.Errorf("fake logged %s %s (route %q) answered %d", r.Method, r.Path, r.Route, r.Status)
		}
	}
}

func TestFakeErrors(t *testing.T) {
	t.Parallel()
	s, c := startFake(t, func(o *fakeapi.Options) {
		o.Keys = map[string]fakeapi.Key{fakeapi.TestKey: {Credits: 100000}, "bp_poor_key": {Credits: 1}, "bp_lapsed_key": {Credits: 100, Lapsed: true}}
	})
	ctx := context.Background()
	run, err := c.CreateRun(ctx, bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion, Inputs: coldEmailInputs})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		call func() error
		is   func(error) bool
	}{
		{"unknown key", func() error { _, err := c.WithAPIKey("bp_nobody").Me(ctx); return err }, bpapi.IsUnauthorized},
		{"no key", func() error { _, err := c.WithAPIKey("").Credits(ctx); return err }, bpapi.IsUnauthorized},
		{"lapsed plan", func() error { _, err := c.WithAPIKey("bp_lapsed_key").Me(ctx); return err }, bpapi.IsPaymentRequired},
		{"not enough credits", func() error {
			_, err := c.WithAPIKey("bp_poor_key").CreateRun(ctx, bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion, Inputs: coldEmailInputs})
			return err
		}, bpapi.IsPaymentRequired},
		{"unknown prompt", func() error { _, err := c.GetPrompt(ctx, unknownUUID, ""); return err }, bpapi.IsNotFound},
		{"unknown version", func() error { _, err := c.GetPromptVersion(ctx, unknownUUID); return err }, bpapi.IsNotFound},
		{"unknown run", func() error { _, err := c.GetRun(ctx, unknownUUID); return err }, bpapi.IsNotFound},
		{"unknown versions", func() error { _, err := c.ListPromptVersions(ctx, unknownUUID); return err }, bpapi.IsNotFound},
		{"missing input", func() error {
			_, err := c.CreateRun(ctx, bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion})
			return err
		}, bpapi.IsValidation},
		{"bad run option", func() error {
			_, err := c.CreateRun(ctx, bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion, Inputs: coldEmailInputs,
				RunOptions: map[string]string{"nonsense": "x"}})
			return err
		}, bpapi.IsValidation},
		{"both cursors", func() error {
			_, err := c.ListRuns(ctx, bpapi.ListRunsParams{StartingAfter: run.RunID, EndingBefore: run.RunID})
			return err
		}, bpapi.IsValidation},
		{"limit out of range", func() error { _, err := c.ListRuns(ctx, bpapi.ListRunsParams{Limit: 51}); return err }, bpapi.IsValidation},
	}
	for _, tt := range tests {
		err := tt.call()
		var ae *bpapi.APIError
		if !tt.is(err) || !errors.As(err, &ae) || ae.Code == "" || ae.Message == "" {
			t.Errorf("%s: err = %v", tt.name, err)
		}
		if errors.Is(err, bpapi.ErrOutcomeUnknown) {
			t.Errorf("%s: a refused request claims the outcome is unknown", tt.name)
		}
	}
	if n := len(s.Runs(fakeapi.TestKey)) + len(s.Runs("bp_poor_key")); n != 1 {
		t.Errorf("%d runs were created by refused requests", n)
	}
}

// TestFakeTimedOutRun: a run that outlasts the synchronous window comes back
// as a 504 with its run id, and polling finds it finished.
func TestFakeTimedOutRun(t *testing.T) {
	t.Parallel()
	s, c := startFake(t, func(o *fakeapi.Options) { o.SyncWindow = 100 * time.Millisecond; o.TimeScale = 1 })
	ctx := context.Background()
	_, err := c.CreateRun(ctx, bpapi.CreateRunRequest{PromptVersionID: researchVersion,
		Inputs: bpapi.RunInputs{TextInputs: map[string]string{"question": "Is a four-day work week a good idea?", "depth": "standard"}}})
	id, ok := bpapi.TimedOutRunID(err)
	if !ok || errors.Is(err, bpapi.ErrOutcomeUnknown) {
		t.Fatalf("err = %v, want a 504 with a run id", err)
	}
	run, err := c.GetRun(ctx, id)
	if err != nil || run.Status.Final() {
		t.Fatalf("GetRun = %+v, %v; want an unfinished run", run, err)
	}
	s.FinishRun(id)
	run, err = c.GetRun(ctx, id)
	if err != nil || run.Status != bpapi.RunSucceeded || len(run.Outputs) == 0 {
		t.Fatalf("GetRun after finish = %+v, %v", run, err)
	}
}

func TestFakeFailedRun(t *testing.T) {
	t.Parallel()
	_, c := startFake(t, nil)
	run, err := c.CreateRun(context.Background(), bpapi.CreateRunRequest{PromptVersionID: stockVersion,
		Inputs: bpapi.RunInputs{TextInputs: map[string]string{"ticker": "AAPL"}}})
	if err != nil || run.Status != bpapi.RunFailed ||
		!slices.ContainsFunc(run.Outputs, func(o bpapi.Output) bool { return o.Type == bpapi.OutputError && o.Data != "" }) {
		t.Fatalf("failed run = %+v, %v", run, err)
	}
}

func TestFakeFaults(t *testing.T) {
	t.Parallel()
	const (
		postRuns = "POST /v1/runs"
		getMe    = "GET /v1/me"
	)
	tests := []struct {
		name      string
		route     string
		fault     fakeapi.Fault
		post      bool
		wantCalls int
		wantOK    bool
		unknown   bool
		runMade   bool // the fault lets the API create the run
	}{
		{name: "POST 500", route: postRuns, fault: fakeapi.Fault{Status: 500}, post: true, wantCalls: 1, unknown: true},
		{name: "POST HTML 502", route: postRuns, fault: fakeapi.Fault{Kind: fakeapi.FaultHTML}, post: true, wantCalls: 1, unknown: true},
		{name: "POST 504 without envelope", route: postRuns, fault: fakeapi.Fault{Status: 504, Body: "<html>Gateway Timeout</html>"}, post: true, wantCalls: 1, unknown: true},
		{name: "POST dropped", route: postRuns, fault: fakeapi.Fault{Kind: fakeapi.FaultDrop}, post: true, wantCalls: 1, unknown: true},
		{name: "POST dropped after create", route: postRuns, fault: fakeapi.Fault{Kind: fakeapi.FaultDropAfterCreate}, post: true, wantCalls: 1, unknown: true, runMade: true},
		{name: "POST truncated 200", route: postRuns, fault: fakeapi.Fault{Kind: fakeapi.FaultTruncated}, post: true, wantCalls: 1, unknown: true},
		{name: "POST 429 is not sent again", route: postRuns, fault: fakeapi.Fault{Status: 429, RetryAfter: "1"}, post: true, wantCalls: 1},
		{name: "GET 429 then ok", route: getMe, fault: fakeapi.Fault{Status: 429, RetryAfter: "1"}, wantCalls: 2, wantOK: true},
		{name: "GET 429 without Retry-After", route: getMe, fault: fakeapi.Fault{Status: 429}, wantCalls: 2, wantOK: true},
		{name: "GET HTML 502 twice", route: getMe, fault: fakeapi.Fault{Kind: fakeapi.FaultHTML, Count: 2}, wantCalls: 3, wantOK: true},
		{name: "GET 503", route: getMe, fault: fakeapi.Fault{Status: 503}, wantCalls: 2, wantOK: true},
		{name: "GET dropped", route: getMe, fault: fakeapi.Fault{Kind: fakeapi.FaultDrop}, wantCalls: 2, wantOK: true},
		{name: "GET 500 always", route: getMe, fault: fakeapi.Fault{Status: 500, Count: -1}, wantCalls: 2},
		{name: "GET empty 200", route: getMe, fault: fakeapi.Fault{Kind: fakeapi.FaultEmpty}, wantCalls: 1},
		{name: "GET truncated 200", route: getMe, fault: fakeapi.Fault{Kind: fakeapi.FaultTruncated}, wantCalls: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, c := startFake(t, nil)
			s.InjectFault(tt.route, tt.fault)
			ctx := context.Background()
			var err error
			if tt.post {
				_, err = c.CreateRun(ctx, bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion, Inputs: coldEmailInputs})
			} else {
				_, err = c.Me(ctx)
			}
			if (err == nil) != tt.wantOK {
				t.Fatalf("err = %v, want ok %v", err, tt.wantOK)
			}
			if got := s.Count(tt.route); got != tt.wantCalls {
				t.Errorf("fake saw %d calls, want %d", got, tt.wantCalls)
			}
			if got := errors.Is(err, bpapi.ErrOutcomeUnknown); got != tt.unknown {
				t.Errorf("ErrOutcomeUnknown = %v, want %v (err %v)", got, tt.unknown, err)
			}
			if tt.post {
				if n := len(s.Runs(fakeapi.TestKey)); (n == 1) != tt.runMade || n > 1 {
					t.Errorf("%d runs exist", n)
				}
			}
			if tt.runMade && tt.unknown {
				// The documented recovery: look the run up with ListRuns.
				list, err := c.ListRuns(ctx, bpapi.ListRunsParams{Limit: 5})
				if err != nil || len(list.Rows) != 1 || list.Rows[0].PromptVersionID != coldEmailVersion {
					t.Errorf("recovery via ListRuns = %+v, %v", list, err)
				}
			}
		})
	}
}

// TestFakeRateLimit: 20 concurrent pollers through clients derived with
// WithAPIKey, with the client's default limiter, against the fake's own
// 5 requests/second bucket: no 429.
func TestFakeRateLimit(t *testing.T) {
	t.Parallel()
	s, root := startFake(t, func(o *fakeapi.Options) { o.RateLimit = 5; o.Burst = 6 },
		func(o *bpapi.Options) { o.RateLimit = 0; o.Burst = 0 })
	// The fake's bucket has one token more than the client's burst, to
	// absorb the scheduling jitter between the client's limiter and the
	// fake's clock (see TestPollersStayUnderTheLimit).
	run, err := root.CreateRun(context.Background(), bpapi.CreateRunRequest{PromptVersionID: coldEmailVersion, Inputs: coldEmailInputs})
	if err != nil {
		t.Fatal(err)
	}
	polls := bpapi.PollConcurrently(t, root, fakeapi.TestKey, 20, run.RunID, 1500*time.Millisecond)
	if n := s.Count429(); n != 0 {
		t.Errorf("the fake answered 429 %d times", n)
	}
	if polls < 5 {
		t.Errorf("only %d polls succeeded", polls)
	}
}
