package bpapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/bpmcp/bpmcp/internal/leakcheck"
)

func TestErrorCodesMapped(t *testing.T) {
	t.Parallel()
	type pred struct {
		name string
		f    func(error) bool
	}
	preds := []pred{
		{"IsNotFound", IsNotFound}, {"IsUnauthorized", IsUnauthorized}, {"IsPaymentRequired", IsPaymentRequired},
		{"IsValidation", IsValidation}, {"IsRateLimited", IsRateLimited}, {"IsGone", IsGone},
	}
	tests := []struct {
		status     int
		code       string
		message    string
		data       string
		header     []string
		want       string // the predicate that must hold; others must not
		retryAfter time.Duration
		runID      string
	}{
		{status: 400, code: CodeBadRequest, message: "Request body must be valid JSON"},
		{status: 401, code: CodeUnauthorized, message: "Missing or invalid API key", want: "IsUnauthorized"},
		{status: 402, code: CodePaymentRequired, message: "Not enough credits", want: "IsPaymentRequired"},
		{status: 404, code: CodeNotFound, message: "Run not found", want: "IsNotFound"},
		{status: 410, code: CodeGone, message: "The resource is no longer available", want: "IsGone"},
		{status: 422, code: CodeValidation, message: "Invalid promptVersionId", data: `{"field":"promptVersionId"}`, want: "IsValidation"},
		{status: 429, code: CodeTooManyRequests, message: "Rate limit exceeded", header: []string{"Retry-After", "7"}, want: "IsRateLimited", retryAfter: 7 * time.Second},
		{status: 500, code: CodeServer, message: "Internal server error"},
		{status: 504, code: CodeGatewayTimeout, message: "The request timed out while waiting for the run to finish.", data: `{"runId":"` + runID + `"}`, runID: runID},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			srv, c := newServer(t, answer(tt.status, failure(tt.code, tt.message, tt.data), tt.header...),
				func(o *Options) { o.MaxRetries = -1 })
			_, err := c.GetRun(context.Background(), runID)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			want := APIError{Method: "GET", Path: "/v1/runs/" + runID, HTTPStatus: tt.status, Code: tt.code,
				Message: tt.message, RunID: tt.runID, RetryAfter: tt.retryAfter}
			if tt.data != "" {
				want.Data = []byte(tt.data)
			}
			if fmt.Sprint(*ae) != fmt.Sprint(want) {
				t.Errorf("APIError\n got %+v\nwant %+v", *ae, want)
			}
			for _, p := range preds {
				if got := p.f(err); got != (p.name == tt.want) {
					t.Errorf("%s = %v", p.name, got)
				}
			}
			if id, ok := TimedOutRunID(err); ok != (tt.runID != "") || id != tt.runID {
				t.Errorf("TimedOutRunID = %q, %v", id, ok)
			}
			if errors.Is(err, ErrOutcomeUnknown) {
				t.Error("a GET error wraps ErrOutcomeUnknown")
			}
			if !strings.Contains(err.Error(), tt.code) || !strings.Contains(err.Error(), "/v1/runs/") {
				t.Errorf("message %q lacks the code or the path", err)
			}
			if srv.count() != 1 {
				t.Errorf("server saw %d requests", srv.count())
			}
		})
	}
}

func TestUnusableBodies(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("word   \n\t ", 300)
	tests := []struct {
		name    string
		status  int
		body    string
		code    string
		wantMsg []string // substrings of Message
	}{
		{name: "html 502 from a proxy", status: 502, body: "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>nginx</body></html>",
			wantMsg: []string{"HTML", "<html> <head><title>502 Bad Gateway</title></head> <body>nginx</body></html>"}},
		{name: "html 200", status: 200, body: "<!doctype html><p>maintenance</p>", wantMsg: []string{"HTML", "maintenance"}},
		{name: "empty 200", status: 200, body: "", wantMsg: []string{"empty response body"}},
		{name: "blank 503", status: 503, body: " \n ", wantMsg: []string{"empty response body"}},
		{name: "truncated JSON 200", status: 200, body: `{"status":"SUCCESS","data":{"runId":"9b8a`, wantMsg: []string{"truncated JSON", `{"status":"SUCCESS","data":{"runId":"9b8a`}},
		{name: "truncated JSON 500", status: 500, body: `{"status":"SERVER_ERR`, wantMsg: []string{"truncated JSON"}},
		{name: "plain text", status: 500, body: "upstream connect error or disconnect/reset before headers", wantMsg: []string{"not valid JSON", "upstream connect error"}},
		{name: "JSON array", status: 200, body: `[1,2,3]`, wantMsg: []string{"not an object", "[1,2,3]"}},
		{name: "JSON without status", status: 404, body: `{"error":"Not Found","path":"/v1/nope"}`, wantMsg: []string{"Not Found"}},
		{name: "JSON, no status, no message", status: 200, body: `{"runId":"x"}`, wantMsg: []string{"not a BetterPrompt envelope", `{"runId":"x"}`}},
		{name: "2xx with an error status", status: 200, body: `{"status":"ERROR","message":"Skill not found"}`, code: "ERROR", wantMsg: []string{"Skill not found"}},
		{name: "SUCCESS without data", status: 200, body: `{"status":"SUCCESS"}`, wantMsg: []string{"no data"}},
		{name: "SUCCESS with null data", status: 200, body: `{"status":"SUCCESS","data":null}`, wantMsg: []string{"no data"}},
		{name: "data of the wrong shape", status: 200, body: `{"status":"SUCCESS","data":"hello"}`, wantMsg: []string{"not usable", "hello"}},
		{name: "SUCCESS with a 500", status: 500, body: `{"status":"SUCCESS","data":{}}`, wantMsg: []string{"HTTP 500 with status SUCCESS"}},
		{name: "long body is cut", status: 502, body: "<p>" + long, wantMsg: []string{"word word word", "…"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, c := newServer(t, answer(tt.status, tt.body), func(o *Options) { o.MaxRetries = -1 })
			_, err := c.GetRun(context.Background(), runID)
			var ae *APIError
			if !errors.As(err, &ae) {
				t.Fatalf("err = %v (%T), want *APIError", err, err)
			}
			if ae.HTTPStatus != tt.status || ae.Code != tt.code {
				t.Errorf("status %d code %q, want %d %q", ae.HTTPStatus, ae.Code, tt.status, tt.code)
			}
			for _, s := range tt.wantMsg {
				if !strings.Contains(ae.Message, s) {
					t.Errorf("message %q lacks %q", ae.Message, s)
				}
			}
			if strings.ContainsAny(ae.Message, "\n\t") || strings.Contains(ae.Message, "  ") {
				t.Errorf("message %q has uncollapsed white space", ae.Message)
			}
			if len([]rune(ae.Message)) > 300 {
				t.Errorf("message is %d characters long", len([]rune(ae.Message)))
			}
		})
	}
}

func TestOversizeBody(t *testing.T) {
	t.Parallel()
	big := success(`{"runId":"` + runID + `","outputs":[{"type":"text","data":"` + strings.Repeat("x", 5000) + `"}],"runStatus":"succeeded"}`)
	for _, status := range []int{200, 500} {
		srv, c := newServer(t, answer(status, big), func(o *Options) { o.MaxBodyBytes = 1024; o.MaxRetries = -1 })
		_, err := c.GetRun(context.Background(), runID)
		var ae *APIError
		if !errors.As(err, &ae) || ae.HTTPStatus != status || !strings.Contains(ae.Message, "larger than the 1024-byte limit") {
			t.Errorf("status %d: err = %v", status, err)
		}
		// Exactly at the limit is fine.
		_, c2 := newServer(t, answer(200, big), func(o *Options) { o.MaxBodyBytes = int64(len(big)) })
		if _, err := c2.GetRun(context.Background(), runID); err != nil {
			t.Errorf("body of exactly MaxBodyBytes: %v", err)
		}
		_ = srv
	}
}

func TestExcerpt(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"":                     "(blank)",
		"  a\n\n b\t\tc  ":     "a b c",
		"bad \xff utf8":        "bad \uFFFD utf8",
		"ctl\x00\x1b[31mred":   "ctl [31mred",
		"rtl\u202eevil\u202c!": "rtl evil !",
	}
	for in, want := range tests {
		if got := excerpt([]byte(in)); got != want {
			t.Errorf("excerpt(%q) = %q, want %q", in, got, want)
		}
	}
	long := excerpt([]byte(strings.Repeat("é", 1000)))
	if n := len([]rune(long)); n != maxExcerpt || !strings.HasSuffix(long, "…") {
		t.Errorf("long excerpt has %d characters: %q", n, long)
	}
}

// TestKeyNeverLeaks triggers every error path with a distinctive key, some
// with a server that echoes the Authorization header back, and checks that
// the key appears in no error, no printed value and no log line.
func TestKeyNeverLeaks(t *testing.T) {
	t.Parallel()
	echo := func(status int, format string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			reply(w, status, fmt.Sprintf(format, r.Header.Get("Authorization")))
		}
	}
	var logs bytes.Buffer
	var logMu syncWriter
	logMu.w = &logs
	logger := slog.New(slog.NewTextHandler(&logMu, &slog.HandlerOptions{Level: slog.LevelDebug}))

	handlers := map[string]http.HandlerFunc{
		"401 echo json": echo(401, `{"status":"UNAUTHORIZED_ERROR","message":"bad key %s","data":null}`),
		"422 echo data": func(w http.ResponseWriter, r *http.Request) {
			reply(w, 422, failure(CodeValidation, "no", `{"auth":"`+r.Header.Get("Authorization")+`"}`))
		},
		"502 echo html":     echo(502, "<html><pre>Authorization: %s</pre></html>"),
		"200 echo garbage":  echo(200, "not json %s"),
		"200 echo data":     echo(200, `{"status":"SUCCESS","data":"%s"}`),
		"500 echo long":     echo(500, strings.Repeat("x", 190)+" %s"),
		"429 no retry-wait": answer(429, failure(CodeTooManyRequests, "slow down", ""), "Retry-After", "3600"),
		"504 with run":      answer(504, failure(CodeGatewayTimeout, "timeout", `{"runId":"`+runID+`"}`)),
		"hang up":           func(w http.ResponseWriter, _ *http.Request) { hangUp(w) },
		"empty":             answer(500, ""),
		"oversize":          echo(200, strings.Repeat(" ", 50)+"%s"+strings.Repeat("y", 5000)),
	}
	var errs []error
	var clients []*Client
	for name, h := range handlers {
		srv, c := newServer(t, h, func(o *Options) { o.Logger = logger; o.MaxBodyBytes = 4096 })
		clients = append(clients, c)
		ctx := context.Background()
		if _, err := c.GetRun(ctx, runID); err != nil {
			errs = append(errs, err)
		} else {
			t.Errorf("%s: GetRun succeeded", name)
		}
		if _, err := c.CreateRun(ctx, CreateRunRequest{PromptVersionID: versionID}); err != nil {
			errs = append(errs, err)
		}
		if _, err := c.SearchPrompts(ctx, "x"); err != nil {
			errs = append(errs, err)
		}
		if !strings.Contains(srv.requests()[0].Header.Get("Authorization"), testKey) {
			t.Fatalf("%s: the key was not sent", name)
		}
	}
	// Errors without an answer.
	_, c := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}, func(o *Options) { o.Logger = logger })
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := c.CreateRun(ctx, CreateRunRequest{PromptVersionID: versionID})
	errs = append(errs, err)
	_, err = c.GetRun(ctx, runID)
	errs = append(errs, err)
	_, err = c.GetRun(context.Background(), testKey) // the key passed as an id by mistake
	errs = append(errs, err)
	_, err = c.SearchPrompts(context.Background(), " ")
	errs = append(errs, err)
	refused := New(Options{BaseURL: "http://127.0.0.1:1/v1", APIKey: testKey, MaxRetries: -1, Logger: logger})
	_, err = refused.CreateRun(context.Background(), CreateRunRequest{PromptVersionID: versionID})
	errs = append(errs, err)
	_, err = New(Options{BaseURL: "ftp://x", APIKey: testKey}).Me(context.Background())
	errs = append(errs, err)
	_, err = New(Options{APIKey: testKey + "\n\x00"}).Me(context.Background())
	errs = append(errs, err)

	for i, err := range errs {
		if err == nil {
			t.Errorf("error %d is nil", i)
			continue
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%v %+v %#v %s %q", err, err, err, err, err)} {
			if form := leakcheck.Find(s, testKey); form != "" {
				t.Errorf("error %d shows the key (%s): %s", i, form, s)
			}
			if strings.Contains(s, "http://") {
				t.Errorf("error %d shows a URL: %s", i, s)
			}
		}
		var ae *APIError
		if errors.As(err, &ae) {
			if s := fmt.Sprintf("%v %+v %#v %s", *ae, *ae, *ae, ae.Data); leakcheck.Find(s, testKey) != "" {
				t.Errorf("APIError %d shows the key: %s", i, s)
			}
		}
	}
	opts := Options{APIKey: testKey, BaseURL: "http://h/v1", Logger: logger}
	clients = append(clients, New(opts), New(opts).WithAPIKey(testKey))
	for _, c := range clients {
		for _, s := range []string{
			fmt.Sprintf("%v %+v %#v", opts, opts, opts),
			fmt.Sprintf("%v %+v %#v", c, c, c),
			fmt.Sprintf("%v %+v %#v", *c, *c, *c),
		} {
			if leakcheck.Find(s, testKey) != "" {
				t.Fatalf("printed value shows the key: %s", s)
			}
		}
		logger.Info("client", "client", c, "opts", opts, "key", opts.APIKey)
	}
	if leakcheck.Find(logs.String(), testKey) != "" {
		t.Errorf("a log line shows the key:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "betterprompt request") {
		t.Errorf("no request was logged:\n%s", logs.String())
	}
}

func TestLogLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	w := &syncWriter{w: &buf}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	_, c := newServer(t, sequence(answer(503, "busy"), answer(200, success(`{"credits":3}`))), func(o *Options) { o.Logger = logger })
	if _, err := c.Credits(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, s := range []string{"method=GET", "path=/v1/me/credits", "status=503", "status=200", "attempt=1", "attempt=2", "duration=", "betterprompt retry"} {
		if !strings.Contains(out, s) {
			t.Errorf("log lacks %q:\n%s", s, out)
		}
	}
}
