package bpapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/state"
)

const runJSON = `{"runId":"` + runID + `","promptVersionId":"` + versionID + `",
	"outputs":[{"type":"text","data":"## 5 LinkedIn headlines"},{"type":1,"data":"https://cdn.example/x.png"}],
	"runStatus":"succeeded","tokens":58,"createdAt":"2026-03-05T10:00:01.123Z","futureField":{"x":1}}`

const promptVersionJSON = `{"promptVersionId":"` + versionID + `","promptId":"` + promptID + `",
	"title":"Image caption generator","publishedAt":"2025-08-27T12:34:56.789Z",
	"config":{"variables":{"topic":{"type":0}},"images":[]}}`

func TestEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		call      func(context.Context, *Client) (any, error)
		method    string
		path      string
		query     url.Values
		body      string // expected JSON body, compared semantically; "" for none
		data      string // the data payload the server answers with
		want      any
		wantEmpty bool // the result's slice must be empty, not nil
	}{
		{
			name:   "search prompts trims q",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.SearchPrompts(ctx, "  blog post & more  ") },
			method: "GET", path: "/v1/prompts/publish", query: url.Values{"q": {"blog post & more"}},
			data: `{"rows":[{"promptId":"` + promptID + `","promptVersionId":"` + versionID + `","title":"Blog post writer",
				"description":"d","slug":"blog-post-writer","model":50,"modality":0,"estimatedCredits":150,"uses":2340,
				"upVotes":187,"publishedAt":"2025-11-03T10:15:30.000Z","samples":{},"configs":{"variables":{}},"newThing":true}]}`,
			want: []PromptSummary{{
				PromptID: promptID, PromptVersionID: versionID, Title: "Blog post writer", Description: "d",
				Slug: "blog-post-writer", Model: ModelRef{Index: ptr(50)}, Modality: "text", EstimatedCredits: ptr(150), Uses: 2340, UpVotes: 187,
				PublishedAt: "2025-11-03T10:15:30.000Z", Samples: json.RawMessage(`{}`), Config: json.RawMessage(`{"variables":{}}`),
			}},
		},
		{
			name:   "search prompts, no rows",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.SearchPrompts(ctx, "zzz") },
			method: "GET", path: "/v1/prompts/publish", query: url.Values{"q": {"zzz"}},
			data: `{"rows":null}`, want: []PromptSummary{}, wantEmpty: true,
		},
		{
			name:   "get prompt, latest",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetPrompt(ctx, promptID, "") },
			method: "GET", path: "/v1/prompts/" + promptID,
			data: promptVersionJSON,
			want: &PromptVersion{PromptVersionID: versionID, PromptID: promptID, Title: "Image caption generator",
				PublishedAt: "2025-08-27T12:34:56.789Z", Config: json.RawMessage(`{"variables":{"topic":{"type":0}},"images":[]}`)},
		},
		{
			name: "get prompt, pinned version (upper-case ids accepted)",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.GetPrompt(ctx, strings.ToUpper(promptID), strings.ToUpper(versionID))
			},
			method: "GET", path: "/v1/prompts/" + strings.ToUpper(promptID), query: url.Values{"versionId": {strings.ToUpper(versionID)}},
			data: `{"promptVersionId":"` + versionID + `","inputsJTD":{"properties":{}}}`,
			want: &PromptVersion{PromptVersionID: versionID, InputsJTD: json.RawMessage(`{"properties":{}}`)},
		},
		{
			name:   "list prompt versions",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.ListPromptVersions(ctx, promptID) },
			method: "GET", path: "/v1/prompts/" + promptID + "/versions",
			data: `{"promptId":"` + promptID + `","title":"T","versions":[
				{"promptVersionId":"aaaa1111-bbbb-cccc-dddd-eeee1111ffff","publishedAt":"2025-08-27T12:34:56.789Z","isLatest":true},
				{"promptVersionId":"99998888-7777-6666-5555-444433332222","publishedAt":"2025-07-15T08:20:10.123Z"}]}`,
			want: &VersionList{PromptID: promptID, Title: "T", Versions: []VersionRef{
				{PromptVersionID: "aaaa1111-bbbb-cccc-dddd-eeee1111ffff", PublishedAt: "2025-08-27T12:34:56.789Z", IsLatest: true},
				{PromptVersionID: "99998888-7777-6666-5555-444433332222", PublishedAt: "2025-07-15T08:20:10.123Z"},
			}},
		},
		{
			name:   "get prompt version",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetPromptVersion(ctx, versionID) },
			method: "GET", path: "/v1/prompt-versions/" + versionID,
			data: promptVersionJSON,
			want: &PromptVersion{PromptVersionID: versionID, PromptID: promptID, Title: "Image caption generator",
				PublishedAt: "2025-08-27T12:34:56.789Z", Config: json.RawMessage(`{"variables":{"topic":{"type":0}},"images":[]}`)},
		},
		{
			name: "create run",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateRun(ctx, CreateRunRequest{
					PromptVersionID: versionID,
					Inputs: RunInputs{
						TextInputs:  map[string]string{"topic": "Remote work", "tone": "friendly"},
						ImageInputs: []ImageInput{{Type: "url", URL: "https://example.com/img.png"}},
					},
					RunModel:   "gpt-4o",
					RunOptions: map[string]string{"reasoningEffort": "high"},
				})
			},
			method: "POST", path: "/v1/runs",
			body: `{"promptVersionId":"` + versionID + `","inputs":{"textInputs":{"topic":"Remote work","tone":"friendly"},
				"imageInputs":[{"type":"url","url":"https://example.com/img.png"}]},"runModel":"gpt-4o","runOptions":{"reasoningEffort":"high"}}`,
			data: runJSON,
			want: &Run{RunID: runID, PromptVersionID: versionID, Status: RunSucceeded, Tokens: ptr(58), CreatedAt: "2026-03-05T10:00:01.123Z",
				Outputs: []Output{{Type: OutputText, Data: "## 5 LinkedIn headlines"}, {Type: OutputImage, Data: "https://cdn.example/x.png"}}},
		},
		{
			name: "create run sends textInputs as {} when nil",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateRun(ctx, CreateRunRequest{PromptVersionID: versionID})
			},
			method: "POST", path: "/v1/runs",
			body: `{"promptVersionId":"` + versionID + `","inputs":{"textInputs":{}}}`,
			data: `{"runId":"` + runID + `","runStatus":"running"}`,
			want: &Run{RunID: runID, Status: RunRunning, Outputs: []Output{}},
		},
		{
			name:   "get run",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.GetRun(ctx, runID) },
			method: "GET", path: "/v1/runs/" + runID,
			data: `{"runId":"` + runID + `","outputs":[],"runStatus":"running","tokens":0}`,
			want: &Run{RunID: runID, Status: RunRunning, Tokens: ptr(0), Outputs: []Output{}},
		},
		{
			name: "list runs with every parameter",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListRuns(ctx, ListRunsParams{Limit: 10, StartingAfter: runID, Status: RunSucceeded, Since: 1700000000, Until: 1710000000})
			},
			method: "GET", path: "/v1/runs",
			query: url.Values{"limit": {"10"}, "startingAfter": {runID}, "status": {"succeeded"}, "since": {"1700000000"}, "until": {"1710000000"}},
			data: `{"rows":[{"runId":"` + runID + `","promptVersionId":"` + versionID + `","outputs":[{"type":"text","data":"x"}],
				"runStatus":"succeeded","credits":150,"runName":"Blog post writer","createdAt":"2026-01-14T09:30:00.000Z"},
				{"runId":"` + promptID + `","runStatus":"failed","credits":null}],"hasMore":true}`,
			want: &RunList{HasMore: true, Rows: []Run{
				{RunID: runID, PromptVersionID: versionID, Outputs: []Output{{Type: OutputText, Data: "x"}}, Status: RunSucceeded,
					Credits: ptr(150), RunName: "Blog post writer", CreatedAt: "2026-01-14T09:30:00.000Z"},
				{RunID: promptID, Status: RunFailed, Outputs: []Output{}},
			}},
		},
		{
			name: "list runs, no parameters, endingBefore",
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.ListRuns(ctx, ListRunsParams{EndingBefore: runID})
			},
			method: "GET", path: "/v1/runs", query: url.Values{"endingBefore": {runID}},
			data: `{"hasMore":false}`,
			want: &RunList{Rows: []Run{}},
		},
		{
			name:   "me",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Me(ctx) },
			method: "GET", path: "/v1/me",
			data: `{"username":"janedoe","displayName":null,"userFlags":3}`,
			want: &User{Username: ptr("janedoe"), UserFlags: 3},
		},
		{
			name:   "credits",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Credits(ctx) },
			method: "GET", path: "/v1/me/credits",
			data: `{"credits":4250}`, want: 4250,
		},
		{
			name:   "credits, fractional, rounded down",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Credits(ctx) },
			method: "GET", path: "/v1/me/credits",
			data: `{"credits":1250000.7}`, want: 1250000,
		},
		{
			name:   "resources",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Resources(ctx) },
			method: "GET", path: "/v1/resources",
			data: `{"hash":"abc123","resources":{"models":[
				{"model":"model-1","modality":"text","availableRunOptions":[{"key":"mode","options":["fast","accurate"]}]},
				{"model":"model-2","modality":"image","availableRunOptions":[]}],"other":{}}}`,
			want: &Resources{Hash: "abc123", Models: []Model{
				{Model: "model-1", Modality: "text", AvailableRunOptions: []RunOption{{Key: "mode", Options: []string{"fast", "accurate"}}}},
				{Model: "model-2", Modality: "image", AvailableRunOptions: []RunOption{}},
			}},
		},
		{
			name:   "resources, flat shape tolerated",
			call:   func(ctx context.Context, c *Client) (any, error) { return c.Resources(ctx) },
			method: "GET", path: "/v1/resources",
			data: `{"hash":"h","models":[{"model":"o3","modality":"text"}]}`,
			want: &Resources{Hash: "h", Models: []Model{{Model: "o3", Modality: "text"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, c := newServer(t, answer(200, success(tt.data)), func(o *Options) { o.UserAgent = "bpmcp/1.2.3" })
			got, err := tt.call(context.Background(), c)
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				gj, _ := json.Marshal(got)
				wj, _ := json.Marshal(tt.want)
				t.Errorf("result\n got %s\nwant %s", gj, wj)
			}
			if tt.wantEmpty && reflect.ValueOf(got).IsNil() {
				t.Errorf("result is nil, want an empty slice")
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tt.method || r.Path != tt.path {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tt.method, tt.path)
			}
			gotQuery, _ := url.ParseQuery(r.RawQuery)
			if tt.query == nil {
				tt.query = url.Values{}
			}
			if !reflect.DeepEqual(gotQuery, tt.query) {
				t.Errorf("query %v, want %v", gotQuery, tt.query)
			}
			wantHeaders := map[string]string{
				"Authorization": "Bearer " + testKey,
				"Accept":        "application/json",
				"Content-Type":  "application/json",
				"User-Agent":    "bpmcp/1.2.3",
			}
			for k, v := range wantHeaders {
				if got := r.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			switch {
			case tt.body == "" && len(r.Body) != 0:
				t.Errorf("unexpected body %s", r.Body)
			case tt.body != "":
				var got, want any
				if err := json.Unmarshal(r.Body, &got); err != nil {
					t.Fatalf("body is not JSON: %v", err)
				}
				if err := json.Unmarshal([]byte(tt.body), &want); err != nil {
					t.Fatalf("bad test body: %v", err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("body\n got %s\nwant %s", r.Body, tt.body)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestInvalidIDsSendNothing(t *testing.T) {
	t.Parallel()
	bad := []string{
		"",
		"not-a-uuid",
		"urn:uuid:" + runID,
		"{" + runID + "}",
		strings.ReplaceAll(runID, "-", ""),
		runID + " ",
		" " + runID,
		runID[:35] + "g",
		runID[:8] + "_" + runID[9:],
		runID + "0",
		"../../me/credits",
		runID[:8] + "/" + runID[9:],
	}
	calls := []struct {
		field string
		call  func(ctx context.Context, c *Client, id string) error
	}{
		{"promptId", func(ctx context.Context, c *Client, id string) error { _, err := c.GetPrompt(ctx, id, ""); return err }},
		{"versionId", func(ctx context.Context, c *Client, id string) error {
			if id == "" {
				return &bogusError{} // an empty versionId means "latest"; nothing to check
			}
			_, err := c.GetPrompt(ctx, promptID, id)
			return err
		}},
		{"promptId", func(ctx context.Context, c *Client, id string) error {
			_, err := c.ListPromptVersions(ctx, id)
			return err
		}},
		{"promptVersionId", func(ctx context.Context, c *Client, id string) error {
			_, err := c.GetPromptVersion(ctx, id)
			return err
		}},
		{"promptVersionId", func(ctx context.Context, c *Client, id string) error {
			_, err := c.CreateRun(ctx, CreateRunRequest{PromptVersionID: id})
			return err
		}},
		{"runId", func(ctx context.Context, c *Client, id string) error { _, err := c.GetRun(ctx, id); return err }},
		{"startingAfter", func(ctx context.Context, c *Client, id string) error {
			if id == "" {
				return &bogusError{}
			}
			_, err := c.ListRuns(ctx, ListRunsParams{StartingAfter: id})
			return err
		}},
		{"endingBefore", func(ctx context.Context, c *Client, id string) error {
			if id == "" {
				return &bogusError{}
			}
			_, err := c.ListRuns(ctx, ListRunsParams{EndingBefore: id})
			return err
		}},
	}
	srv, c := newServer(t, answer(200, success(`{}`)))
	for _, call := range calls {
		for _, id := range bad {
			err := call.call(context.Background(), c, id)
			var be *bogusError
			if errors.As(err, &be) {
				continue
			}
			if !errors.Is(err, ErrInvalidID) {
				t.Errorf("%s %q: err = %v, want ErrInvalidID", call.field, id, err)
				continue
			}
			if !strings.Contains(err.Error(), call.field) {
				t.Errorf("%s %q: error %q does not name the field", call.field, id, err)
			}
		}
	}
	if n := srv.count(); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}

type bogusError struct{}

func (*bogusError) Error() string { return "skipped" }

func TestIsUUID(t *testing.T) {
	t.Parallel()
	for id, want := range map[string]bool{
		runID:                                     true,
		strings.ToUpper(runID):                    true,
		"00000000-0000-0000-0000-000000000000":    true,
		"urn:uuid:" + runID:                       false,
		"{" + runID + "}":                         false,
		strings.ReplaceAll(runID, "-", ""):        false,
		"9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c0":     false,
		"9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c0\x00": false,
		"9b8a7c6d+5e4f-4a3b-8c2d-1e0f9a8b7c01":    false,
	} {
		if got := IsUUID(id); got != want {
			t.Errorf("IsUUID(%q) = %v, want %v", id, got, want)
		}
	}
}

func TestEmptyQuerySendsNothing(t *testing.T) {
	t.Parallel()
	srv, c := newServer(t, answer(200, success(`{"rows":[]}`)))
	for _, q := range []string{"", "   ", "\t\n"} {
		_, err := c.SearchPrompts(context.Background(), q)
		if !errors.Is(err, ErrEmptyQuery) {
			t.Errorf("SearchPrompts(%q) err = %v, want ErrEmptyQuery", q, err)
		}
	}
	if n := srv.count(); n != 0 {
		t.Errorf("server saw %d requests, want 0", n)
	}
}

func TestAuthorizationHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key     APIKey
		want    string // "" means no header
		hasKey  bool
		sends   bool
		wantErr string
	}{
		{key: "bp_live_123", want: "Bearer bp_live_123", hasKey: true, sends: true},
		{key: "Bearer bp_live_123", want: "Bearer bp_live_123", hasKey: true, sends: true},
		{key: "bearer   bp_live_123 ", want: "Bearer bp_live_123", hasKey: true, sends: true},
		{key: "  bp_live_123\n", want: "Bearer bp_live_123", hasKey: true, sends: true},
		{key: "", want: "", hasKey: false, sends: true},
		{key: "Bearer ", want: "", hasKey: false, sends: true},
		{key: "bearer\tbp_x", want: "Bearer bp_x", hasKey: true, sends: true},
		{key: "Bearerbp_x", want: "Bearer Bearerbp_x", hasKey: true, sends: true},
		{key: "bp_live\r\nX-Evil: 1", hasKey: true, sends: false, wantErr: "characters that cannot be sent"},
	}
	for _, tt := range tests {
		srv, c := newServer(t, answer(200, success(`{"username":null,"displayName":null,"userFlags":0}`)), func(o *Options) { o.APIKey = tt.key })
		if c.HasAPIKey() != tt.hasKey {
			t.Errorf("key %q: HasAPIKey = %v", tt.key.Reveal(), c.HasAPIKey())
		}
		_, err := c.Me(context.Background())
		if !tt.sends {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("key %q: err = %v, want %q", tt.key.Reveal(), err, tt.wantErr)
			}
			if strings.Contains(err.Error(), "bp_live") {
				t.Errorf("error shows the key: %v", err)
			}
			if srv.count() != 0 {
				t.Errorf("key %q: a request was sent", tt.key.Reveal())
			}
			continue
		}
		if err != nil {
			t.Fatalf("key %q: %v", tt.key.Reveal(), err)
		}
		h := srv.requests()[0].Header
		if got := h.Get("Authorization"); got != tt.want || (tt.want == "" && len(h.Values("Authorization")) != 0) {
			t.Errorf("key %q: Authorization %q, want %q", tt.key.Reveal(), got, tt.want)
		}
		// State is kept per KeyID: it must name the key as sent, so that
		// the forms of one key share their state and no two keys do.
		if sent := New(Options{APIKey: APIKey(strings.TrimPrefix(tt.want, "Bearer "))}); sent.KeyID() != c.KeyID() {
			t.Errorf("key %q: KeyID %s differs from the KeyID %s of the key it sends", tt.key.Reveal(), c.KeyID(), sent.KeyID())
		}
	}
	if a, b := New(Options{APIKey: "bp_x"}), New(Options{APIKey: "bp_X"}); a.KeyID() == b.KeyID() {
		t.Error("two keys share a KeyID")
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	c := New(Options{})
	t.Cleanup(c.CloseIdleConnections)
	if c.BaseURL() != DefaultBaseURL {
		t.Errorf("BaseURL = %q", c.BaseURL())
	}
	if c.HasAPIKey() {
		t.Error("HasAPIKey on a client without a key")
	}
	if c.userAgent != "bpmcp/dev" || c.maxRetries != 3 || c.maxRetryWait != DefaultMaxRetryWait || c.maxBodyBytes != 8<<20 {
		t.Errorf("defaults: ua %q retries %d wait %v body %d", c.userAgent, c.maxRetries, c.maxRetryWait, c.maxBodyBytes)
	}
	if c.requestTimeout != DefaultRequestTimeout {
		t.Errorf("default request timeout %v", c.requestTimeout)
	}
	if c.httpc.Timeout != 0 {
		t.Errorf("default HTTP client has an overall Timeout %v", c.httpc.Timeout)
	}
	if lim, ok := c.limiter.(*state.RateLimiter); !ok {
		t.Errorf("default limiter: %T", c.limiter)
	} else if rate, burst := lim.Rate(); rate != 5 || burst != DefaultBurst || DefaultBurst >= 5 {
		t.Errorf("default limiter: %v/s, burst %d", rate, burst)
	}
	if New(Options{RateLimit: -1}).limiter != nil {
		t.Error("RateLimit < 0 should disable the limiter")
	}
	if got := New(Options{MaxRetries: -1}).maxRetries; got != 0 {
		t.Errorf("MaxRetries -1 gives %d retries", got)
	}
	if got := New(Options{BaseURL: "http://127.0.0.1:9/api/v1/"}).BaseURL(); got != "http://127.0.0.1:9/api/v1" {
		t.Errorf("trailing slash kept: %q", got)
	}
}

func TestBadBaseURL(t *testing.T) {
	t.Parallel()
	for _, base := range []string{"ftp://example.com/v1", "http://", "http://[::1/v1", "/v1", "http://h/v1?x=1"} {
		c := New(Options{BaseURL: base, APIKey: testKey})
		_, err := c.Me(context.Background())
		if err == nil || !strings.Contains(err.Error(), "BaseURL") {
			t.Errorf("BaseURL %q: err = %v", base, err)
		}
	}
}

func TestDefaultClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/runs" {
			http.Redirect(w, r, "/v2/runs", http.StatusFound)
			return
		}
		reply(w, 200, success(`{"rows":[]}`))
	})
	c := New(Options{BaseURL: srv.URL + "/v1", APIKey: testKey, RateLimit: -1})
	t.Cleanup(c.CloseIdleConnections)
	_, err := c.CreateRun(context.Background(), CreateRunRequest{PromptVersionID: versionID})
	var ae *APIError
	if !errors.As(err, &ae) || ae.HTTPStatus != http.StatusFound || !strings.Contains(ae.Message, "redirect") {
		t.Fatalf("err = %v, want an APIError for the 302", err)
	}
	if n := srv.count(); n != 1 {
		t.Errorf("server saw %d requests, want 1 (no redirect followed)", n)
	}
}

func TestLenientDecoding(t *testing.T) {
	t.Parallel()
	// tokens as a float does not fit *int: that field is zero, the rest is kept.
	_, c := newServer(t, answer(200, success(`{"runId":"`+runID+`","runStatus":"succeeded","tokens":1.5,
		"outputs":[{"type":"text","data":"hi","thoughtSignature":"sig","extra":1},{"type":"video","data":{"url":"u"}}]}`)))
	run, err := c.GetRun(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	if run.Cost() != 0 || run.Status != RunSucceeded || len(run.Outputs) != 2 || run.Outputs[0].ThoughtSignature != "sig" ||
		run.Outputs[1].Data != `{"url":"u"}` {
		t.Errorf("run = %+v", run)
	}
}
