package betterwaifu_test

// Review tests (issue 14). Each demonstrates one finding; they FAIL on
// 88cb9a4 where the finding is a bug.

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bwapi/fakeapi"
)

// rawCall sends a tools/call with a fixed JSON-RPC id, as a transport that
// delivers a request twice (an HTTP-level retry) would.
func rawCall(t *testing.T, e *env, id int64, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	resp, err := e.client.GetTransport().SendRequest(context.Background(), transport.JSONRPCRequest{
		JSONRPC: "2.0", ID: mcp.NewRequestId(id), Method: "tools/call",
		Params: map[string]any{"name": name, "arguments": args, "_meta": map[string]any{"progressToken": "p"}},
	})
	if err != nil {
		t.Fatalf("raw call: %v", err)
	}
	if resp.Error != nil {
		t.Fatalf("raw call: JSON-RPC error %+v", resp.Error)
	}
	res, err := mcp.ParseCallToolResult(&resp.Result)
	if err != nil {
		t.Fatalf("raw call: %v", err)
	}
	return res
}

// FINDING 1 (bug). A tools/call delivered twice with the same JSON-RPC id
// while its first delivery still waits in the key's line: the replay finds
// no submission to rejoin (Rejoin runs before awaitTurn), queues behind its
// own first delivery, and is refused with "Nothing was submitted and
// nothing was spent" — while the first delivery then submits a paid
// generation for the very same request. The client, whose first stream was
// lost, is told nothing ran and pays again when it retries.
func TestReviewReplayInLineIsToldNothingWasSubmitted(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		mustOK(t, e.call(t, "betterwaifu_generate", gen("earlier"))) // the key now cools down until about t+70 s
		args := gen("the request", "wait_seconds", 120)
		first := make(chan *mcp.CallToolResult, 1)
		go func() { first <- rawCall(t, e, 77, "betterwaifu_generate", args) }()
		time.Sleep(5 * time.Second) // the first delivery waits in line
		synctest.Wait()
		second := rawCall(t, e, 77, "betterwaifu_generate", args) // the same request, delivered again
		<-first
		gens := e.fake.Generations()
		if len(gens) != 2 || gens[1].Prompt != "the request" {
			t.Fatalf("generations %+v", gens)
		}
		if second.IsError && strings.Contains(text(second), "Nothing was submitted") {
			t.Errorf("the redelivered request was told nothing was submitted, though its first delivery started %s:\n%s",
				gens[1].ID, text(second))
		}
	})
}

// FINDING 2 (bug, wording). A 429 from the API refuses the call and defers
// the key's next turn by Retry-After, but the message does not say when the
// next slot opens ("This server now waits that long ..." has no duration),
// which the issue requires of every "cannot come in time" refusal.
func TestReview429SaysWhenTheNextSlotOpens(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		e.fake.InjectFault("POST /generate", fakeapi.Fault{Status: 429, RetryAfter: "90", Body: `{"error":"A generation is already in progress"}`})
		res := e.call(t, "betterwaifu_generate", gen("x"))
		mustError(t, res, "Nothing was started")
		if !strings.Contains(text(res), "90 s") && !strings.Contains(text(res), "UTC") {
			t.Errorf("the 429 refusal does not say when the next slot opens:\n%s", text(res))
		}
	})
}

// FINDING 3 (risk). GET /generate/{id} is decoded strictly: a seed the
// API prints beyond int64 (ComfyUI-style 64-bit seeds; a JS backend prints
// 2^64-1 as 18446744073709552000) fails the whole reading. The caller never
// gets its images, and the follower never sees the generation end, so the
// key's turn is held until MaxHold (30 min): every later call is refused.
func TestReviewUndecodableSeedHoldsTheKeyForHalfAnHour(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		res := e.call(t, "betterwaifu_generate", gen("x", "wait_seconds", 0))
		mustOK(t, res)
		id := view(t, res).GenerationID
		time.Sleep(9 * time.Second) // the generation has ended upstream
		e.fake.InjectFault("GET /generate/{id}", fakeapi.Fault{Status: 200, Count: -1,
			Body: `{"id":"` + id + `","status":"succeeded","output":{"images":[{"url":"https://images.betterwaifu.com/a/b.webp","id":"b"}],"seed":18446744073709552000},"error":null}`})
		res = e.call(t, "betterwaifu_get_generation", map[string]any{"generation_id": id, "wait_seconds": 0})
		if res.IsError || view(t, res).Seed != "18446744073709552000" {
			t.Errorf("a succeeded generation with a 64-bit seed was not readable: %s", text(res))
		}
		e.fake.ClearFaults()
		res = e.call(t, "betterwaifu_generate", gen("y", "wait_seconds", 600))
		if res.IsError || len(e.fake.Generations()) != 2 {
			t.Errorf("the key is still held after its generation ended: %s", text(res))
		}
	})
}

// FINDING 4 (risk). Line order is the order of Enter, which comes after
// the preflight (GET /account) and the model check (GET /models), both
// uncached for a first call and not shared between concurrent callers: a
// caller whose preflight is slower is overtaken by one that arrived after
// it ("first come, first served" is broken).
func TestReviewSlowPreflightLosesItsPlace(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		e.fake.InjectFault("GET /account", fakeapi.Fault{Latency: 3 * time.Second}) // the first caller's preflight only
		done := make(chan struct{})
		go func() {
			defer close(done)
			mustOK(t, e.call(t, "betterwaifu_generate", gen("arrived first", "wait_seconds", 300)))
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		mustOK(t, e.call(t, "betterwaifu_generate", gen("arrived second", "wait_seconds", 300)))
		<-done
		gens := e.fake.Generations()
		if len(gens) != 2 || gens[0].Prompt != "arrived first" {
			t.Errorf("served out of arrival order: %+v", gens)
		}
	})
}

// FINDING 5 (risk). A call whose context has already ended (the client
// cancelled it) still takes a free turn and sends a paid POST: awaitTurn
// checks ctx only while it sleeps, and Run submits on a detached context.
// The same happens when a cancel and a line change wake awaitTurn's select
// at once (the select picks at random).
func TestReviewCancelledCallStillSubmits(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		mustOK(t, e.call(t, "betterwaifu_get_account", map[string]any{})) // caches the account
		mustOK(t, e.call(t, "betterwaifu_list_models", map[string]any{})) // caches the models
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		// Straight to the server (the client library would not send it).
		_, _ = e.client.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
			JSONRPC: "2.0", ID: mcp.NewRequestId(int64(99)), Method: "tools/call",
			Params: map[string]any{"name": "betterwaifu_generate", "arguments": gen("cancelled before it ran", "wait_seconds", 60)},
		})
		synctest.Wait()
		time.Sleep(time.Minute)
		if n := e.fake.Count("POST /generate"); n != 0 {
			t.Errorf("a call cancelled before it ran sent %d POST /generate (credits spent)", n)
		}
	})
}

// FINDING 6 (nit). The follower's GET runs on its own 30 s context, not
// tied to d.stop: Drain waits for an in-flight reading that has nothing to
// report, and fails its context although every start request answered.
func TestReviewDrainWaitsForAFollowerRead(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		mustOK(t, e.call(t, "betterwaifu_generate", gen("x", "wait_seconds", 0)))
		synctest.Wait()
		e.fake.InjectFault("GET /generate/{id}", fakeapi.Fault{Latency: 25 * time.Second, Count: -1})
		time.Sleep(2500 * time.Millisecond) // the follower's next reading is now in flight
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := e.deps.Drain(ctx); err != nil {
			t.Errorf("Drain: %v (it waited for a follower's GET; every POST had answered)", err)
		}
		e.fake.ClearFaults()
	})
}

// FINDING 7 (nit). The refusal says the turn "would come at X at the
// earliest", but Earliest assumes the holder's job runs and costs a
// cooldown: when the holder's POST is refused (400, moderation, 402), the
// turn comes at once, long before the "earliest" time given.
func TestReviewEarliestIsNotALowerBound(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		mustOK(t, e.call(t, "betterwaifu_list_models", map[string]any{}))
		mustOK(t, e.call(t, "betterwaifu_get_account", map[string]any{}))
		e.fake.InjectFault("POST /generate", fakeapi.Fault{Status: 400, Latency: 5 * time.Second, Body: `{"error":"steps out of range"}`})
		go func() { _ = e.call(t, "betterwaifu_generate", gen("refused after 5 s")) }()
		time.Sleep(time.Second)
		synctest.Wait()
		start := time.Now()
		res := e.call(t, "betterwaifu_generate", gen("y", "wait_seconds", 30))
		synctest.Wait()
		if res.IsError {
			t.Errorf("refused after %v (%s); the turn came free 4 s later, well within the 30 s wait", time.Since(start), text(res))
		}
	})
}

// FINDING 8 (nit, test bug). TestPerRequestKeys checks the fake right
// after two wait_seconds=0 calls return: their POSTs run on the engine's
// goroutines and may not have arrived yet, so the test is flaky (fails about
// one run in three with -race). A synctest.Wait() before the check fixes it.
func TestReviewWaitZeroReturnsBeforeThePOST(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		res := e.call(t, "betterwaifu_generate", gen("x", "wait_seconds", 0))
		mustOK(t, res)
		b, _ := json.Marshal(res.StructuredContent)
		t.Logf("wait 0: %s; POSTs so far %d", b, e.fake.Count("POST /generate"))
		synctest.Wait()
		if e.fake.Count("POST /generate") != 1 {
			t.Fatal("the POST was not sent")
		}
	})
}

// FINDING 9 (nit, wording). A 201 without an id the client can read
// (ErrNoID) certainly started a (paid) generation, and a 500 is an answer;
// both are told "The request that starts the generation got no answer ...
// whether it started (and was charged) cannot be known".
func TestReviewNoIDIsToldNoAnswer(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		e.fake.InjectFault("POST /generate", fakeapi.Fault{Status: 201, Body: `{"status":"queued","message":"Generation queued"}`})
		res := e.call(t, "betterwaifu_generate", gen("x"))
		mustError(t, res)
		if strings.Contains(text(res), "got no answer") || strings.Contains(text(res), "whether it started") {
			t.Errorf("a 201 (certainly started, id unreadable) is reported as no answer / maybe not started:\n%s", text(res))
		}
	})
}

// FINDING 10 (nit, wording). A call cancelled while its POST is still in
// flight is told the generation "had been submitted; it goes on ... and is
// charged", even when the API then refuses it (here a 400): nothing ran
// and nothing was charged. "may have been" is the honest wording.
func TestReviewCancelledWhilePendingIsToldCharged(t *testing.T) {
	inBubble(t, func(t *testing.T) {
		e := newEnv(t, fakeapi.Options{})
		e.fake.InjectFault("POST /generate", fakeapi.Fault{Status: 400, Latency: 5 * time.Second, Body: `{"error":"steps out of range"}`})
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(time.Second, cancel)
		resp, err := e.client.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
			JSONRPC: "2.0", ID: mcp.NewRequestId(int64(5)), Method: "tools/call",
			Params: map[string]any{"name": "betterwaifu_generate", "arguments": gen("x")},
		})
		if err != nil || resp.Error != nil {
			t.Fatalf("%v %+v", err, resp)
		}
		res, _ := mcp.ParseCallToolResult(&resp.Result)
		synctest.Wait()
		time.Sleep(10 * time.Second)
		if strings.Contains(text(res), "is charged") {
			t.Errorf("told the cancelled call's generation is charged; the API refused it (400):\n%s", text(res))
		}
	})
}
