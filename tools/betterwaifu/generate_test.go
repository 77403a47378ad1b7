package betterwaifu_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bwapi/fakeapi"
	"github.com/bpmcp/bpmcp/internal/secret"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/betterwaifu"
)

func TestGenerateSucceeds(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		res := e.call(t, "betterwaifu_generate", gen("1girl, solo, long hair", "width", 832, "height", 1216, "seed", 42))
		mustOK(t, res)
		v := view(t, res)
		if v.Status != "succeeded" || len(v.Images) != 1 || v.Seed != "42" || v.ModelVersionID != 814910 {
			t.Fatalf("view %+v", v)
		}
		if !strings.HasSuffix(v.Images[0].URL, ".webp") || v.Images[0].ID == "" {
			t.Errorf("image %+v", v.Images[0])
		}
		links := 0
		for _, c := range res.Content {
			if l, ok := c.(mcp.ResourceLink); ok && l.MIMEType == "image/webp" && l.URI == v.Images[0].URL {
				links++
			}
		}
		if links != 1 || !strings.Contains(text(res), v.Images[0].URL) {
			t.Errorf("content lacks the image URL line or its resource_link:\n%s", text(res))
		}
		msgs := strings.Join(e.progressMessages(), "\n")
		if !strings.Contains(msgs, "queued, position") || !strings.Contains(msgs, "is processing") {
			t.Errorf("progress did not go from the queue position to processing:\n%s", msgs)
		}
		// Following it again answers at once with the same images.
		again := e.call(t, "betterwaifu_get_generation", map[string]any{"generation_id": v.GenerationID})
		mustOK(t, again)
		if w := view(t, again); w.Status != "succeeded" || w.Images[0] != v.Images[0] || w.ModelVersionID != 814910 {
			t.Errorf("get_generation %+v", w)
		}
	})
}

// Every refusal is an isError that says what to do, and those the server
// can see coming send nothing.
func TestGenerateRefusals(t *testing.T) {
	active := &fakeapi.Subscription{Status: "active", Plan: "pro"}
	cases := []struct {
		name  string
		keys  map[string]fakeapi.Key
		fault *fakeapi.Fault
		args  map[string]any
		posts int
		wants []string
	}{
		{name: "moderation", args: gen("a flagged prompt"), posts: 1, wants: []string{"moderation flagged", "Revise the prompt", "unchanged"}},
		{name: "unknown model", args: map[string]any{"prompt": "x", "model_version_id": 1}, wants: []string{"model_version_id 1", "814910: tPonynai3 v6.5 (Pony)"}},
		{name: "inactive subscription", keys: map[string]fakeapi.Key{fakeapi.TestKey: {Credits: 5, Subscription: &fakeapi.Subscription{Status: "canceled"}}},
			args: gen("x"), wants: []string{`"canceled"`, "nothing was submitted"}},
		{name: "no subscription", keys: map[string]fakeapi.Key{fakeapi.TestKey: {Credits: 5}}, args: gen("x"), wants: []string{"no subscription"}},
		{name: "no credits", keys: map[string]fakeapi.Key{fakeapi.TestKey: {Subscription: active}}, args: gen("x"), wants: []string{"no credits left"}},
		{name: "401", fault: &fakeapi.Fault{Status: 401, Body: `{"error":"Invalid or missing API key"}`}, args: gen("x"), posts: 1,
			wants: []string{"rejected the API key (401", "BETTERWAIFU_API_KEY", "nothing was spent"}},
		{name: "402", fault: &fakeapi.Fault{Status: 402, Body: `{"error":"Insufficient credits"}`}, args: gen("x"), posts: 1,
			wants: []string{"lack of credits (402"}},
		{name: "403", fault: &fakeapi.Fault{Status: 403, Body: `{"error":"Model not available on your plan"}`}, args: gen("x"), posts: 1,
			wants: []string{"403: Model not available", "subscription"}},
		{name: "400", fault: &fakeapi.Fault{Status: 400, Body: `{"error":"steps out of range"}`}, args: gen("x"), posts: 1,
			wants: []string{"400: steps out of range", "832×1216"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				e := newEnv(t, fakeapi.Options{Keys: tc.keys})
				if tc.fault != nil {
					e.fake.InjectFault("POST /generate", *tc.fault)
				}
				mustError(t, e.call(t, "betterwaifu_generate", tc.args), tc.wants...)
				if n := e.fake.Count("POST /generate"); n != tc.posts {
					t.Errorf("%d POSTs, want %d", n, tc.posts)
				}
				// A refusal starts no cooldown: the next call goes at once.
				if tc.posts == 1 && tc.fault != nil {
					mustOK(t, e.call(t, "betterwaifu_generate", gen("x")))
				}
			})
		})
	}
}

func TestFailedGenerationAndUnknownID(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		res := e.call(t, "betterwaifu_generate", gen("a glitch"))
		mustError(t, res, "The generation failed: Generation failed due to an internal error")
		if v := view(t, res); v.Status != "failed" || v.GenerationID == "" {
			t.Errorf("view %+v", v)
		}
		mustError(t, e.call(t, "betterwaifu_get_generation", map[string]any{"generation_id": "job_nope"}), "No generation with id job_nope")
		e.fake.InjectFault("GET /generate/{id}", fakeapi.Fault{Status: 500, Count: 10})
		mustError(t, e.call(t, "betterwaifu_get_generation", map[string]any{"generation_id": "job_nope", "wait_seconds": 0}))
	})
}

// A wait that ends before the generation returns its id; following it
// later gets the images.
func TestWaitEndsBeforeTheGeneration(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		res := e.call(t, "betterwaifu_generate", gen("x", "wait_seconds", 1))
		mustOK(t, res)
		v := view(t, res)
		if v.Status != "queued" || !strings.Contains(v.Message, "betterwaifu_get_generation") || !strings.Contains(v.Message, "position") {
			t.Fatalf("view %+v", v)
		}
		res = e.call(t, "betterwaifu_get_generation", map[string]any{"generation_id": v.GenerationID, "wait_seconds": 30})
		mustOK(t, res)
		if w := view(t, res); w.Status != "succeeded" || len(w.Images) != 1 {
			t.Errorf("followed: %+v", w)
		}
	})
}

// A dropped POST is sent once; with no list of generations the outcome is
// reported as unknown, and the key's next generation waits as if it had
// started.
func TestDroppedPOST(t *testing.T) {
	for _, kind := range []fakeapi.FaultKind{fakeapi.FaultDrop, fakeapi.FaultDropAfterCreate} {
		t.Run(fmt.Sprint(kind), func(t *testing.T) {
			inBubble(t, func(t *testing.T) {
				e := newEnv(t, fakeapi.Options{})
				e.fake.InjectFault("POST /generate", fakeapi.Fault{Kind: kind})
				res := e.call(t, "betterwaifu_generate", gen("x"))
				mustError(t, res, "without a clear answer", "cannot be known", "Do not start it again at once")
				if v := view(t, res); v.Status != "unconfirmed" || v.GenerationID == "" {
					t.Errorf("view %+v", v)
				}
				if n := e.fake.Count("POST /generate"); n != 1 {
					t.Fatalf("%d POSTs, want exactly 1", n)
				}
				// Following the handle says the same, never "not started".
				h := view(t, res).GenerationID
				time.Sleep(10 * time.Minute)
				mustError(t, e.call(t, "betterwaifu_get_generation", map[string]any{"generation_id": h, "wait_seconds": 0}), "cannot be known")
			})
		})
	}
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		e.fake.InjectFault("POST /generate", fakeapi.Fault{Kind: fakeapi.FaultDropAfterCreate})
		start := time.Now()
		mustError(t, e.call(t, "betterwaifu_generate", gen("x")), "cannot be known")
		mustOK(t, e.call(t, "betterwaifu_generate", gen("y", "wait_seconds", 600)))
		gens := e.fake.Generations()
		if len(gens) != 2 || gens[1].Submitted.Sub(start) < 3*time.Minute || e.fake.Rejected429(fakeapi.TestKey) != 0 {
			t.Errorf("after an unknown start the next went %v later (want ≥ 2 min hold + 60 s), %d refused by the API",
				gens[len(gens)-1].Submitted.Sub(start), e.fake.Rejected429(fakeapi.TestKey))
		}
	})
}

// A call cancelled while waiting its turn leaves the line and sends
// nothing; one cancelled while its generation runs leaves it running.
func TestCancellation(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		mustOK(t, e.call(t, "betterwaifu_generate", gen("first")))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = "betterwaifu_generate", gen("second", "wait_seconds", 120)
			_, _ = e.client.CallTool(ctx, req)
		}()
		time.Sleep(10 * time.Second) // in line, in the cooldown
		synctest.Wait()
		cancel()
		<-done
		time.Sleep(2 * time.Minute)
		if n := e.fake.Count("POST /generate"); n != 1 {
			t.Fatalf("a call cancelled in line sent a generation (%d POSTs)", n)
		}
		// The line moved on: a new call goes without waiting for the
		// cancelled one.
		mustOK(t, e.call(t, "betterwaifu_generate", gen("third", "wait_seconds", 1)))
		if gens := e.fake.Generations(); len(gens) != 2 || gens[1].Prompt != "third" {
			t.Errorf("generations %+v", gens)
		}
	})
}

// Ten concurrent calls on one key reach the API one at a time, in arrival
// order, each at least the cooldown after the previous one ended, with no
// 429; the calls whose turn cannot come within their wait are refused at
// once and send nothing.
func TestTenConcurrentGenerations(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		const calls, wait = 10, 300
		results := make([]*mcp.CallToolResult, calls)
		var wg sync.WaitGroup
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = e.call(t, "betterwaifu_generate", gen(fmt.Sprintf("call %d", i), "wait_seconds", wait))
			}()
			synctest.Wait() // call i is in line before call i+1 arrives
		}
		wg.Wait()
		gens := e.fake.Generations()
		var refused []int
		for i, res := range results {
			if res.IsError {
				if !strings.Contains(text(res), "Nothing was submitted") || !strings.Contains(text(res), "if the generations before it run") {
					t.Errorf("call %d: %s", i, text(res))
				}
				refused = append(refused, i)
			}
		}
		if len(gens)+len(refused) != calls || len(gens) < 2 {
			t.Fatalf("%d generations and %d refusals for %d calls", len(gens), len(refused), calls)
		}
		for i, g := range gens {
			if g.Prompt != fmt.Sprintf("call %d", i) {
				t.Errorf("generation %d is %q: not in arrival order", i, g.Prompt)
			}
			if i > 0 && g.Submitted.Sub(gens[i-1].Done) < 60*time.Second {
				t.Errorf("generation %d started %v after the previous ended; want at least the cooldown", i, g.Submitted.Sub(gens[i-1].Done))
			}
		}
		if n := e.fake.Rejected429(fakeapi.TestKey); n != 0 {
			t.Errorf("%d × 429 from the API", n)
		}
		// Generations take 8 s and the cooldown 60 s, so turns come at 0,
		// 68, 136, 204 and 272 s: with 300 s of wait, calls 0 to 4 have
		// theirs. Calls 6 to 9 are refused at once (their turn cannot come
		// before 60 s per call ahead); call 5 waits, its lower bound being
		// exactly 300 s, and is refused when its wait ends.
		if !slices.Equal(refused, []int{5, 6, 7, 8, 9}) {
			t.Errorf("refused %v, want calls 5 to 9", refused)
		}
		t.Logf("%d generations, refused %v", len(gens), refused)
		msgs := strings.Join(e.progressMessages(), "\n")
		if !strings.Contains(msgs, "Waiting for the previous generation") || !strings.Contains(msgs, "Next generation slot in") {
			t.Errorf("progress does not say why calls wait:\n%s", msgs)
		}
	})
}

// A 429 from the API (a generation started elsewhere) refuses the call,
// sends nothing more, and holds the key's next generation as long as the
// API asked.
func TestAPIBusyDefersTheNextTurn(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		e.fake.InjectFault("POST /generate", fakeapi.Fault{Status: 429, RetryAfter: "90", Body: `{"error":"A generation is already in progress"}`})
		mustError(t, e.call(t, "betterwaifu_generate", gen("x")), "429", "Nothing was started")
		start := time.Now()
		mustOK(t, e.call(t, "betterwaifu_generate", gen("y", "wait_seconds", 200)))
		if gens := e.fake.Generations(); len(gens) != 1 || gens[0].Submitted.Sub(start) < 90*time.Second {
			t.Errorf("the next generation did not wait for Retry-After: %+v", gens)
		}
	})
}

// A 500 to the start may have created a generation: reported as unknown,
// never sent again.
func TestServerErrorOnStart(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		e.fake.InjectFault("POST /generate", fakeapi.Fault{Status: 500})
		res := e.call(t, "betterwaifu_generate", gen("x"))
		mustError(t, res, "cannot be known")
		if n := e.fake.Count("POST /generate"); n != 1 {
			t.Errorf("%d POSTs after a 500", n)
		}
	})
}

// A call cancelled while its generation runs leaves it running: the key's
// turn is held until it ends, and the next generation waits the cooldown
// after that.
func TestCancelledWhileGenerating(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{QueueTime: 20 * time.Second, ProcessTime: 20 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = "betterwaifu_generate", gen("first", "wait_seconds", 120)
			_, _ = e.client.CallTool(ctx, req)
		}()
		time.Sleep(5 * time.Second)
		cancel()
		<-done
		mustOK(t, e.call(t, "betterwaifu_generate", gen("second", "wait_seconds", 300)))
		gens := e.fake.Generations()
		if len(gens) != 2 || gens[1].Submitted.Sub(gens[0].Done) < 60*time.Second || e.fake.Rejected429(fakeapi.TestKey) != 0 {
			t.Errorf("the second generation went %v after the first ended (want ≥ 60 s), %d × 429",
				gens[len(gens)-1].Submitted.Sub(gens[0].Done), e.fake.Rejected429(fakeapi.TestKey))
		}
	})
}

// In per-request-keys mode each caller's own key is used, and a caller
// without one is told to send it; two keys have lines of their own.
func TestPerRequestKeys(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		other := "bw_other_key"
		active := &fakeapi.Subscription{Status: "active", Plan: "pro"}
		e := newEnv(t, fakeapi.Options{Keys: map[string]fakeapi.Key{
			fakeapi.TestKey: {Username: "a", Credits: 50, Subscription: active}, other: {Username: "b", Credits: 50, Subscription: active}}},
			func(d *betterwaifu.Toolset) { d.PerRequestKeys = true })
		mustError(t, e.call(t, "betterwaifu_get_account", map[string]any{}), betterwaifu.KeyHeader)
		for _, key := range []string{fakeapi.TestKey, other} {
			ctx := tools.WithCallerKey(context.Background(), betterwaifu.KeyHeader, secret.String(key))
			mustOK(t, e.callCtx(ctx, t, "betterwaifu_generate", gen("x", "wait_seconds", 0)))
		}
		synctest.Wait() // with no wait, the calls answer before their starts are sent
		if gens := e.fake.Generations(); len(gens) != 2 || gens[0].Submitted != gens[1].Submitted {
			t.Errorf("two keys waited for one line: %+v", gens)
		}
	})
}
