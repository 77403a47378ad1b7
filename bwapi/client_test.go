package bwapi_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/bwapi"
	"github.com/bpmcp/bpmcp/bwapi/fakeapi"
)

// clock is a settable clock for the fake.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func start(t *testing.T, opts fakeapi.Options) (*fakeapi.Server, *bwapi.Client, *clock) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	fake, base := fakeapi.NewTestServer(t, opts)
	return fake, bwapi.New(bwapi.Options{BaseURL: base, APIKey: fakeapi.TestKey}), clk
}

func TestAccountAndModels(t *testing.T) {
	t.Parallel()
	_, c, _ := start(t, fakeapi.Options{})
	ctx := context.Background()
	a, err := c.Account(ctx)
	if err != nil || a.Username != "tester" || a.Credits != 500 || !a.Subscription.Active() || a.Subscription.Plan != "pro" {
		t.Fatalf("account %+v, %v", a, err)
	}
	ms, err := c.Models(ctx)
	if err != nil || len(ms) != len(fakeapi.DefaultModels) || ms[0].ID != 902311 || ms[3].BaseModel != "Pony" {
		t.Fatalf("models %+v, %v", ms, err)
	}
}

// A generation goes queued → processing → succeeded, with a real image.
func TestGenerationLifecycle(t *testing.T) {
	t.Parallel()
	fake, c, clk := start(t, fakeapi.Options{})
	ctx := context.Background()
	g, err := c.Generate(ctx, bwapi.GenerateRequest{Prompt: "1girl, solo", ModelVersionID: 814910, Width: 832, Height: 1216})
	if err != nil || !strings.HasPrefix(g.ID, "job_") || g.Status != bwapi.Queued {
		t.Fatalf("generate %+v, %v", g, err)
	}
	r, err := c.Generation(ctx, g.ID)
	if err != nil || r.Status != bwapi.Queued || r.QueuePosition == nil || *r.QueuePosition < 1 {
		t.Fatalf("queued: %+v, %v", r, err)
	}
	clk.Advance(4 * time.Second)
	if r, err = c.Generation(ctx, g.ID); err != nil || r.Status != bwapi.Processing || r.QueuePosition != nil {
		t.Fatalf("processing: %+v, %v", r, err)
	}
	clk.Advance(5 * time.Second)
	if r, err = c.Generation(ctx, g.ID); err != nil || r.Status != bwapi.Succeeded || r.Output == nil || len(r.Output.Images) != 1 || r.Output.Seed == "" {
		t.Fatalf("succeeded: %+v, %v", r, err)
	}
	if !strings.HasSuffix(r.Output.Images[0].URL, ".webp") || r.Output.Images[0].ID == "" {
		t.Errorf("image %+v", r.Output.Images[0])
	}
	if fake.Credits(fakeapi.TestKey) != 490 {
		t.Errorf("credits %d, want 490", fake.Credits(fakeapi.TestKey))
	}
}

// Every refusal is an *APIError of its status, recognised by its helper.
func TestErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	inactive := map[string]fakeapi.Key{fakeapi.TestKey: {Username: "x", Credits: 100, Subscription: &fakeapi.Subscription{Status: "canceled"}}}
	poor := map[string]fakeapi.Key{fakeapi.TestKey: {Username: "x", Credits: 0, Subscription: &fakeapi.Subscription{Status: "active"}}}
	cases := []struct {
		name  string
		keys  map[string]fakeapi.Key
		req   bwapi.GenerateRequest
		check func(error) bool
	}{
		{"moderation", nil, bwapi.GenerateRequest{Prompt: "something flagged", ModelVersionID: 814910}, bwapi.IsModeration},
		{"unknown model", nil, bwapi.GenerateRequest{Prompt: "x", ModelVersionID: 1}, bwapi.IsBadRequest},
		{"inactive subscription", inactive, bwapi.GenerateRequest{Prompt: "x", ModelVersionID: 814910}, bwapi.IsForbidden},
		{"no credits", poor, bwapi.GenerateRequest{Prompt: "x", ModelVersionID: 814910}, bwapi.IsPaymentRequired},
	}
	for _, tc := range cases {
		_, c, _ := start(t, fakeapi.Options{Keys: tc.keys})
		if _, err := c.Generate(ctx, tc.req); !tc.check(err) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	_, c, _ := start(t, fakeapi.Options{})
	if _, err := c.WithAPIKey("bw_wrong").Account(ctx); !bwapi.IsUnauthorized(err) {
		t.Errorf("wrong key: %v", err)
	}
	if _, err := c.Generation(ctx, "job_nope"); !bwapi.IsNotFound(err) {
		t.Errorf("unknown generation: %v", err)
	}
	// The limits: a second generation while one is active is a 429 with
	// Retry-After.
	if _, err := c.Generate(ctx, bwapi.GenerateRequest{Prompt: "a", ModelVersionID: 814910}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Generate(ctx, bwapi.GenerateRequest{Prompt: "b", ModelVersionID: 814910})
	if busy, after := bwapi.IsBusy(err); !busy || after != 68*time.Second {
		t.Errorf("second generation: %v (busy %v, retry after %v; want 8 s of work + 60 s)", err, busy, after)
	}
}

// POST /generate is sent once: a dropped connection, before or after the
// generation was created, is ErrOutcomeUnknown, and reads are retried.
func TestGenerateIsNeverResent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, kind := range []fakeapi.FaultKind{fakeapi.FaultDrop, fakeapi.FaultDropAfterCreate} {
		fake, c, _ := start(t, fakeapi.Options{})
		fake.InjectFault("POST /generate", fakeapi.Fault{Kind: kind})
		_, err := c.Generate(ctx, bwapi.GenerateRequest{Prompt: "x", ModelVersionID: 814910})
		if !errors.Is(err, bwapi.ErrOutcomeUnknown) {
			t.Errorf("fault %d: %v", kind, err)
		}
		if n := fake.Count("POST /generate"); n != 1 {
			t.Errorf("fault %d: %d POSTs, want 1", kind, n)
		}
		fake.InjectFault("POST /generate", fakeapi.Fault{Status: 500})
		if _, err := c.Generate(ctx, bwapi.GenerateRequest{Prompt: "x", ModelVersionID: 814910}); err == nil || fake.Count("POST /generate") != 2 {
			t.Errorf("a 500 to POST was resent or hidden: %v, %d POSTs", err, fake.Count("POST /generate"))
		}
	}
	fake, c, _ := start(t, fakeapi.Options{})
	fake.InjectFault("GET /account", fakeapi.Fault{Status: 502, Count: 2})
	if _, err := c.Account(ctx); err != nil || fake.Count("GET /account") != 3 {
		t.Errorf("a read was not retried: %v after %d requests", err, fake.Count("GET /account"))
	}
}

// The id of a 201 is read whatever it is called; without one, ErrNoID.
func TestGenerateReadsTheIDLeniently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for body, want := range map[string]string{
		`{"id":"job_a","status":"queued"}`:       "job_a",
		`{"generation_id":"job_b"}`:              "job_b",
		`{"data":{"id":"job_c"}}`:                "job_c",
		`{"generation":{"generationId":12345}}`:  "12345",
		`{"status":"queued","message":"queued"}`: "",
	} {
		fake, c, _ := start(t, fakeapi.Options{})
		fake.InjectFault("POST /generate", fakeapi.Fault{Status: 201, Body: body})
		g, err := c.Generate(ctx, bwapi.GenerateRequest{Prompt: "x", ModelVersionID: 814910})
		switch {
		case want == "" && !errors.Is(err, bwapi.ErrNoID):
			t.Errorf("%s: %v, want ErrNoID", body, err)
		case want != "" && (err != nil || g.ID != want || g.Status != bwapi.Queued):
			t.Errorf("%s: %+v, %v", body, g, err)
		}
	}
}

// A key the API echoes back never reaches an error.
func TestEchoedKeyIsRedacted(t *testing.T) {
	t.Parallel()
	fake, c, _ := start(t, fakeapi.Options{})
	fake.InjectFault("GET /account", fakeapi.Fault{Status: 401, Body: `{"error":"bad key Bearer ` + fakeapi.TestKey + `"}`})
	_, err := c.Account(context.Background())
	if err == nil || strings.Contains(err.Error(), fakeapi.TestKey) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error %v", err)
	}
	if s := strings.Join([]string{c.KeyID()}, ""); strings.Contains(s, fakeapi.TestKey) {
		t.Error("KeyID shows the key")
	}
}

// A generation's loosely typed fields never fail its reading: a seed wider
// than 64 bits, an error given as an object, a queue position as a string.
func TestGenerationReadsLeniently(t *testing.T) {
	t.Parallel()
	fake, c, _ := start(t, fakeapi.Options{})
	for body, check := range map[string]func(*bwapi.Generation) bool{
		`{"id":"j","status":"succeeded","output":{"images":[{"url":"u","id":"i"}],"seed":18446744073709552000}}`: func(g *bwapi.Generation) bool {
			return g.Output != nil && g.Output.Seed == "18446744073709552000" && len(g.Output.Images) == 1
		},
		`{"id":"j","status":"failed","error":{"code":"E1","message":"boom"}}`: func(g *bwapi.Generation) bool {
			return g.Status == bwapi.Failed && strings.Contains(g.Error, "boom")
		},
		`{"id":"j","status":"queued","queue_position":"3"}`: func(g *bwapi.Generation) bool {
			return g.QueuePosition != nil && *g.QueuePosition == 3
		},
		`{"id":"j","status":"succeeded","output":{"images":[],"seed":"not a number"}}`: func(g *bwapi.Generation) bool {
			return g.Output != nil && g.Output.Seed == ""
		},
	} {
		fake.InjectFault("GET /generate/{id}", fakeapi.Fault{Status: 200, Body: body})
		g, err := c.Generation(context.Background(), "j")
		if err != nil || !check(g) {
			t.Errorf("%s: %+v, %v", body, g, err)
		}
	}
}
