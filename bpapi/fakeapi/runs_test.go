package fakeapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	coldBody     = runBody(coldEmailVersion, map[string]any{"company_name": "Northwind", "recipient_role": "CTO", "value_proposition": "We help"})
	researchBody = runBody(researchVersion, map[string]any{"question": "Why?", "depth": "standard"})
	stockBody    = runBody(stockVersion, map[string]any{"ticker": "AAPL"})
	iconBody     = runBody(appIconVersion, map[string]any{"app_concept": "plants", "style": "clay"})
	doorbellBody = runBody(doorbellVersion, nil)
	isoMillis    = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
)

func runIDOf(t *testing.T, r *resp) string {
	t.Helper()
	var d struct {
		RunID string `json:"runId"`
	}
	r.data(t, &d)
	if !isUUID(d.RunID) {
		t.Fatalf("no runId in %s", r.raw)
	}
	return d.RunID
}

func TestCreateRunSucceedsInsideWindow(t *testing.T) {
	h := start(t, nil)
	r := h.call("POST", "/runs", coldBody)
	expect(t, r, 200, "SUCCESS", "")
	if got := keysOf(t, r.env.Data); !slices.Equal(got, sorted("runId", "promptVersionId", "outputs", "runStatus", "tokens", "createdAt")) {
		t.Fatalf("keys %v", got)
	}
	var out runOut
	r.data(t, &out)
	p := findPrompt(t, coldEmailPrompt)
	if out.RunStatus != StatusSucceeded || *out.Tokens != p.Credits || out.PromptVersionID != coldEmailVersion ||
		len(out.Outputs) != 1 || out.Outputs[0].Type != "text" || out.Outputs[0].Data != p.Outputs[0].Data || !isoMillis.MatchString(out.CreatedAt) {
		t.Fatalf("run %s", r.env.Data)
	}
	if r.message() != "" || strings.Contains(string(r.raw), `"message"`) {
		t.Fatalf("success carries a message: %s", r.raw)
	}
	if got := h.s.Credits(TestKey); got != 100000-p.Credits {
		t.Fatalf("balance %d, want %d", got, 100000-p.Credits)
	}
	// The same run read back, with an ignored ?remote=true.
	r = h.call("GET", "/runs/"+out.RunID+"?remote=true", nil)
	expect(t, r, 200, "SUCCESS", "")
	var again runOut
	r.data(t, &again)
	if again.RunID != out.RunID || again.RunStatus != StatusSucceeded || *again.Tokens != p.Credits || again.CreatedAt != out.CreatedAt {
		t.Fatalf("read back %s", r.env.Data)
	}
}

func TestCreateRunWindowThenPoll(t *testing.T) {
	h := start(t, func(o *Options) { o.SyncWindow = 50 * time.Millisecond; o.TimeScale = 0.02 })
	start := time.Now()
	r := h.call("POST", "/runs", researchBody)
	expect(t, r, 504, "GATEWAY_TIMEOUT_ERROR", "The request timed out while waiting for the run to finish.")
	if el := time.Since(start); el < 50*time.Millisecond || el > 2*time.Second {
		t.Fatalf("held %v", el)
	}
	id := runIDOf(t, r)
	if string(r.env.Data) != `{"runId":"`+id+`"}` {
		t.Fatalf("504 data %s", r.env.Data)
	}
	// Reserved while running; outputs empty and tokens 0.
	if got := h.s.Credits(TestKey); got != 100000-200 {
		t.Fatalf("balance while running %d, want reservation of 200", got)
	}
	r = h.call("GET", "/runs/"+id, nil)
	var mid runOut
	r.data(t, &mid)
	if mid.RunStatus != StatusRunning || len(mid.Outputs) != 0 || mid.Tokens == nil || *mid.Tokens != 0 || !strings.Contains(string(r.env.Data), `"outputs":[]`) {
		t.Fatalf("while running: %s", r.env.Data)
	}
	final := h.waitFinal(id)
	if final.RunStatus != StatusSucceeded || *final.Tokens != 188 || len(final.Outputs) != 1 {
		t.Fatalf("final %+v", final)
	}
	if got := h.s.Credits(TestKey); got != 100000-188 {
		t.Fatalf("balance after settling %d", got)
	}
	ri, _ := h.s.Run(id)
	if ri.Reserved != 200 || ri.Cost != 188 || ri.FinishedAt.Before(ri.CreatedAt) {
		t.Fatalf("run info %+v", ri)
	}
}

func TestRunStatusesQueuedRunning(t *testing.T) {
	h := start(t, func(o *Options) { o.SyncWindow = -1; o.TimeScale = 0.1 }) // 3 s run, queued 100 ms
	r := h.call("POST", "/runs", researchBody)
	expect(t, r, 504, "GATEWAY_TIMEOUT_ERROR", "")
	id := runIDOf(t, r)
	status := func() string {
		var out runOut
		h.call("GET", "/runs/"+id, nil).data(t, &out)
		return out.RunStatus
	}
	if s := status(); s != StatusQueued {
		t.Fatalf("status %s, want queued", s)
	}
	time.Sleep(150 * time.Millisecond)
	if s := status(); s != StatusRunning {
		t.Fatalf("status %s, want running", s)
	}
	h.s.FinishRun(id)
	if s := status(); s != StatusSucceeded {
		t.Fatalf("status %s after FinishRun", s)
	}
	h.s.FinishRun(id)      // already final: no-op
	h.s.FinishRun("bogus") // unknown: no-op
}

func TestFinishRunWakesHold(t *testing.T) {
	h := start(t, func(o *Options) { o.SyncWindow = 20 * time.Second; o.TimeScale = 1 })
	go func() {
		for {
			if runs := h.s.Runs(TestKey); len(runs) == 1 {
				h.s.FinishRun(runs[0].RunID)
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	begin := time.Now()
	r := h.call("POST", "/runs", researchBody)
	expect(t, r, 200, "SUCCESS", "")
	if time.Since(begin) > 5*time.Second {
		t.Fatal("hold not woken")
	}
}

func TestCloseWakesHold(t *testing.T) {
	h := start(t, func(o *Options) { o.SyncWindow = 20 * time.Second; o.TimeScale = 1 })
	go func() {
		for len(h.s.Runs(TestKey)) == 0 {
			time.Sleep(2 * time.Millisecond)
		}
		h.s.Close()
		h.s.Close() // twice is fine
	}()
	begin := time.Now()
	r := h.call("POST", "/runs", researchBody)
	expect(t, r, 504, "GATEWAY_TIMEOUT_ERROR", "")
	if time.Since(begin) > 5*time.Second {
		t.Fatal("Close did not wake the hold")
	}
}

func TestClientGoneRunContinues(t *testing.T) {
	h := start(t, func(o *Options) { o.SyncWindow = 10 * time.Second; o.TimeScale = 0.01 }) // 300 ms run
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	data, _ := json.Marshal(researchBody)
	req, _ := http.NewRequestWithContext(ctx, "POST", h.base+"/runs", strings.NewReader(string(data)))
	req.Header.Set("Authorization", "Bearer "+TestKey)
	if _, err := h.client.Do(req); err == nil {
		t.Fatal("expected the client timeout")
	}
	runs := h.s.Runs(TestKey)
	if len(runs) != 1 {
		t.Fatalf("%d runs", len(runs))
	}
	final := h.waitFinal(runs[0].RunID)
	if final.RunStatus != StatusSucceeded || h.s.Credits(TestKey) != 100000-188 {
		t.Fatalf("run %+v, balance %d", final, h.s.Credits(TestKey))
	}
	// The abandoned POST is logged without a status.
	for _, req := range h.s.Requests() {
		if req.Route == "POST /v1/runs" && req.Status != 0 {
			t.Fatalf("abandoned POST logged with status %d", req.Status)
		}
	}
}

func TestFailedRuns(t *testing.T) {
	for _, refund := range []bool{false, true} {
		t.Run(fmt.Sprintf("RefundFailed=%v", refund), func(t *testing.T) {
			h := start(t, func(o *Options) { o.RefundFailed = refund })
			r := h.call("POST", "/runs", stockBody)
			expect(t, r, 200, "SUCCESS", "")
			var out runOut
			r.data(t, &out)
			wantCost := 25
			if refund {
				wantCost = 0
			}
			if out.RunStatus != StatusFailed || *out.Tokens != wantCost || len(out.Outputs) != 1 || out.Outputs[0].Type != "error" || !strings.Contains(out.Outputs[0].Data, "refused") {
				t.Fatalf("failed run %s", r.env.Data)
			}
			if got := h.s.Credits(TestKey); got != 100000-wantCost {
				t.Fatalf("balance %d", got)
			}
			r = h.call("GET", "/runs?status=failed", nil)
			want := `"credits":25`
			if refund {
				want = `"credits":null`
			}
			if !strings.Contains(string(r.env.Data), want) {
				t.Fatalf("list %s, want %s", r.env.Data, want)
			}
		})
	}
	t.Run("no error item in the fixture", func(t *testing.T) {
		p := findPrompt(t, coldEmailPrompt)
		p.Fail = true
		h := start(t, func(o *Options) { o.Catalogue = []Prompt{p} })
		var out runOut
		h.call("POST", "/runs", coldBody).data(t, &out)
		if out.RunStatus != StatusFailed || out.Outputs[len(out.Outputs)-1].Type != "error" {
			t.Fatalf("run %+v", out)
		}
	})
}

func TestCredits402(t *testing.T) {
	h := start(t, nil)
	h.s.SetCredits(TestKey, 39) // cold email estimates 40
	expect(t, h.call("POST", "/runs", coldBody), 402, "PAYMENT_REQUIRED_ERROR", "Not enough credits")
	if len(h.s.Runs(TestKey)) != 0 || h.s.Credits(TestKey) != 39 {
		t.Fatal("a refused run left a trace")
	}
	h.s.SetCredits(TestKey, 40)
	expect(t, h.call("POST", "/runs", coldBody), 200, "SUCCESS", "")
	if got := h.s.Credits(TestKey); got != 2 {
		t.Fatalf("balance %d, want 40-38", got)
	}
	// A reservation blocks a second run while the first is pending.
	h2 := start(t, func(o *Options) { o.SyncWindow = -1; o.TimeScale = 1 })
	h2.s.SetCredits(TestKey, 250)
	first := h2.call("POST", "/runs", researchBody)
	expect(t, first, 504, "GATEWAY_TIMEOUT_ERROR", "")
	expect(t, h2.call("POST", "/runs", researchBody), 402, "PAYMENT_REQUIRED_ERROR", "Not enough credits")
	r := h2.call("GET", "/me/credits", nil)
	if string(r.env.Data) != `{"credits":50}` {
		t.Fatalf("credits %s", r.env.Data)
	}
	h2.s.FinishRun(runIDOf(t, first))
	if got := h2.s.Credits(TestKey); got != 250-188 {
		t.Fatalf("settled balance %d", got)
	}
}

func TestRunsArePerKey(t *testing.T) {
	h := start(t, func(o *Options) { o.Keys = map[string]Key{"bp_a": {Credits: 1000}, "bp_b": {Credits: 1000}} })
	r := h.callKey("bp_a", "POST", "/runs", coldBody)
	expect(t, r, 200, "SUCCESS", "")
	id := runIDOf(t, r)
	expect(t, h.callKey("bp_b", "GET", "/runs/"+id, nil), 404, "NOT_FOUND_ERROR", "Run not found")
	expect(t, h.callKey("bp_a", "GET", "/runs/"+strings.ToUpper(id), nil), 200, "SUCCESS", "")
	r = h.callKey("bp_b", "GET", "/runs", nil)
	if !strings.Contains(string(r.env.Data), `"rows":[]`) {
		t.Fatalf("other key's list %s", r.env.Data)
	}
	expect(t, h.callKey("bp_b", "GET", "/runs?startingAfter="+id, nil), 404, "NOT_FOUND_ERROR", "Run not found")
	if len(h.s.Runs("bp_b")) != 0 || len(h.s.Runs("bp_a")) != 1 || h.s.Credits("bp_b") != 1000 {
		t.Fatal("runs or credits leaked between keys")
	}
}

func TestGetRunErrors(t *testing.T) {
	h := start(t, nil)
	expect(t, h.call("GET", "/runs/not-a-uuid", nil), 422, "VALIDATION_ERROR", "Invalid runId")
	expect(t, h.call("GET", "/runs/"+unknownUUID, nil), 404, "NOT_FOUND_ERROR", "Run not found")
}

type listOut struct {
	Rows []struct {
		RunID           string          `json:"runId"`
		PromptVersionID string          `json:"promptVersionId"`
		RunStatus       string          `json:"runStatus"`
		Credits         *int            `json:"credits"`
		RunName         string          `json:"runName"`
		CreatedAt       string          `json:"createdAt"`
		Outputs         json.RawMessage `json:"outputs"`
	} `json:"rows"`
	HasMore *bool `json:"hasMore"`
}

func (l listOut) ids() []string {
	var out []string
	for _, r := range l.Rows {
		out = append(out, r.RunID)
	}
	return out
}

func TestListRuns(t *testing.T) {
	h := start(t, func(o *Options) { o.TimeScale = 0.001 })
	t0 := h.clock.Now()
	var ids []string // oldest first
	for i := 0; i < 7; i++ {
		body := coldBody
		if i == 3 {
			body = stockBody
		}
		r := h.call("POST", "/runs", body)
		expect(t, r, 200, "SUCCESS", "")
		ids = append(ids, runIDOf(t, r))
		h.clock.Advance(10 * time.Second)
	}
	newest := slices.Clone(ids)
	slices.Reverse(newest)
	list := func(query string) listOut {
		t.Helper()
		r := h.call("GET", "/runs"+query, nil)
		expect(t, r, 200, "SUCCESS", "")
		var l listOut
		r.data(t, &l)
		if l.HasMore == nil || l.Rows == nil {
			t.Fatalf("list %s lacks rows or hasMore", r.env.Data)
		}
		return l
	}

	t.Run("row fields", func(t *testing.T) {
		r := h.call("GET", "/runs?limit=1", nil)
		var d struct{ Rows []json.RawMessage }
		r.data(t, &d)
		if got := keysOf(t, d.Rows[0]); !slices.Equal(got, sorted("runId", "promptVersionId", "outputs", "runStatus", "credits", "runName", "createdAt")) {
			t.Fatalf("keys %v", got)
		}
		l := list("?limit=1")
		row := l.Rows[0]
		if row.RunID != newest[0] || row.RunName != "Cold Email Opener" || *row.Credits != 38 || row.RunStatus != StatusSucceeded || !isoMillis.MatchString(row.CreatedAt) || row.PromptVersionID != coldEmailVersion {
			t.Fatalf("row %+v", row)
		}
	})
	t.Run("default limit 10, newest first", func(t *testing.T) {
		l := list("")
		if !slices.Equal(l.ids(), newest) || *l.HasMore {
			t.Fatalf("ids %v", l.ids())
		}
	})
	t.Run("forward paging", func(t *testing.T) {
		var got []string
		cursor := ""
		pages := 0
		for {
			q := "?limit=3"
			if cursor != "" {
				q += "&startingAfter=" + cursor
			}
			l := list(q)
			pages++
			got = append(got, l.ids()...)
			if !*l.HasMore {
				break
			}
			cursor = l.Rows[len(l.Rows)-1].RunID
		}
		if pages != 3 || !slices.Equal(got, newest) {
			t.Fatalf("%d pages, ids %v", pages, got)
		}
	})
	t.Run("backward paging", func(t *testing.T) {
		l := list("?limit=2&endingBefore=" + newest[5])
		if !slices.Equal(l.ids(), newest[3:5]) || !*l.HasMore {
			t.Fatalf("ids %v hasMore %v", l.ids(), *l.HasMore)
		}
		l = list("?limit=5&endingBefore=" + newest[3])
		if !slices.Equal(l.ids(), newest[0:3]) || *l.HasMore {
			t.Fatalf("ids %v hasMore %v", l.ids(), *l.HasMore)
		}
		l = list("?endingBefore=" + newest[0])
		if len(l.Rows) != 0 || *l.HasMore {
			t.Fatalf("ids %v", l.ids())
		}
	})
	t.Run("status filter", func(t *testing.T) {
		l := list("?status=failed")
		if !slices.Equal(l.ids(), []string{ids[3]}) || l.Rows[0].RunName != "Guaranteed Stock Pick" {
			t.Fatalf("ids %v", l.ids())
		}
		if l := list("?status=running"); len(l.Rows) != 0 {
			t.Fatalf("running %v", l.ids())
		}
		if l := list("?status=succeeded&limit=50"); len(l.Rows) != 6 {
			t.Fatalf("succeeded %v", l.ids())
		}
	})
	t.Run("since and until", func(t *testing.T) {
		// Run i was created at about t0 + 10 s * i.
		since := t0.Add(15 * time.Second).Unix()
		until := t0.Add(45 * time.Second).Unix()
		l := list(fmt.Sprintf("?since=%d&until=%d", since, until))
		if !slices.Equal(l.ids(), []string{ids[4], ids[3], ids[2]}) {
			t.Fatalf("ids %v", l.ids())
		}
		if l := list(fmt.Sprintf("?since=%d", t0.Add(time.Hour).Unix())); len(l.Rows) != 0 {
			t.Fatalf("future since: %v", l.ids())
		}
		if l := list(fmt.Sprintf("?until=%d", t0.Add(-time.Hour).Unix())); len(l.Rows) != 0 {
			t.Fatalf("past until: %v", l.ids())
		}
		// Filters combine with cursors.
		l = list(fmt.Sprintf("?since=%d&startingAfter=%s&limit=1", since, newest[0]))
		if !slices.Equal(l.ids(), []string{newest[1]}) || !*l.HasMore {
			t.Fatalf("ids %v", l.ids())
		}
	})
	for _, c := range []struct {
		name, query string
		status      int
		msg         string
	}{
		{"limit 0", "?limit=0", 422, "limit"},
		{"limit 51", "?limit=51", 422, "limit"},
		{"limit text", "?limit=ten", 422, "limit"},
		{"both cursors", "?startingAfter=" + ids[0] + "&endingBefore=" + ids[1], 422, "cannot be combined"},
		{"bad cursor", "?startingAfter=123", 422, "Invalid startingAfter"},
		{"bad endingBefore", "?endingBefore=123", 422, "Invalid endingBefore"},
		{"unknown cursor", "?startingAfter=" + unknownUUID, 404, "Run not found"},
		{"bad status", "?status=done", 422, "status"},
		{"bad since", "?since=yesterday", 422, "since"},
		{"since equals until", "?since=100&until=100", 422, "since must be less than until"},
		{"since after until", "?since=200&until=100", 422, "since must be less than until"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code := "VALIDATION_ERROR"
			if c.status == 404 {
				code = "NOT_FOUND_ERROR"
			}
			expect(t, h.call("GET", "/runs"+c.query, nil), c.status, code, c.msg)
		})
	}
	t.Run("limit 50 and 1 accepted, unknown params ignored", func(t *testing.T) {
		list("?limit=50&foo=bar")
		list("?limit=1&status=")
	})
}

func TestListRunsFrozenClock(t *testing.T) {
	frozen := time.Date(2026, 3, 5, 10, 0, 1, 123e6, time.UTC)
	h := start(t, func(o *Options) { o.Now = func() time.Time { return frozen } })
	var ids []string
	for i := 0; i < 4; i++ {
		r := h.call("POST", "/runs", coldBody)
		ids = append(ids, runIDOf(t, r))
		var out runOut
		r.data(t, &out)
		if out.CreatedAt != "2026-03-05T10:00:01.123Z" {
			t.Fatalf("createdAt %s", out.CreatedAt)
		}
	}
	var l listOut
	h.call("GET", "/runs?limit=2&startingAfter="+ids[3], nil).data(t, &l)
	if !slices.Equal(l.ids(), []string{ids[2], ids[1]}) || !*l.HasMore {
		t.Fatalf("ties not ordered by creation: %v", l.ids())
	}
}

func TestRunsListedFromCreation(t *testing.T) {
	h := start(t, func(o *Options) { o.SyncWindow = -1; o.TimeScale = 1 })
	r := h.call("POST", "/runs", researchBody)
	id := runIDOf(t, r)
	var l listOut
	h.call("GET", "/runs?status=queued", nil).data(t, &l)
	if !slices.Equal(l.ids(), []string{id}) || l.Rows[0].Credits != nil || string(l.Rows[0].Outputs) != "[]" {
		t.Fatalf("queued list %+v", l)
	}
	h.s.FinishRun(id)
}

func TestTextPlaceholders(t *testing.T) {
	p := findPrompt(t, coldEmailPrompt)
	p.Outputs = []Output{{Type: "text", Data: "Dear {{recipient_role}} at {{company_name}}", ThoughtSignature: "sig"}}
	h := start(t, func(o *Options) { o.Catalogue = []Prompt{p} })
	r := h.call("POST", "/runs", coldBody)
	if !strings.Contains(string(r.env.Data), `{"type":"text","data":"Dear CTO at Northwind","thoughtSignature":"sig"}`) {
		t.Fatalf("outputs %s", r.env.Data)
	}
}

// TestConcurrentClients hits the fake with many clients and keys at once
// (run with -race).
func TestConcurrentClients(t *testing.T) {
	keys := map[string]Key{}
	for i := 0; i < 4; i++ {
		keys[fmt.Sprintf("bp_key_%d", i)] = Key{Credits: 100000}
	}
	h := start(t, func(o *Options) { o.Keys = keys; o.TimeScale = 0.002 })
	var wg sync.WaitGroup
	const clients = 100
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := fmt.Sprintf("bp_key_%d", i%4)
			hdr := http.Header{"Authorization": {"Bearer " + key}}
			r, err := h.trySend("POST", "/runs", coldBody, hdr)
			if err != nil || r.status != 200 {
				errs <- fmt.Errorf("create: %v %v", err, r)
				return
			}
			for _, path := range []string{"/runs?limit=5", "/me/credits", "/prompts/publish?q=email", "/runs/" + unknownUUID} {
				if _, err := h.trySend("GET", path, nil, hdr); err != nil {
					errs <- err
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for k := range keys {
		if n := len(h.s.Runs(k)); n != clients/4 {
			t.Fatalf("%s has %d runs", k, n)
		}
		if got := h.s.Credits(k); got != 100000-38*clients/4 {
			t.Fatalf("%s balance %d", k, got)
		}
	}
	if h.s.Count("POST /v1/runs") != clients || h.s.Count("GET /v1/runs/{runId}") != clients {
		t.Fatalf("counts %d %d", h.s.Count("POST /v1/runs"), h.s.Count("GET /v1/runs/{runId}"))
	}
}
