package bpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/internal/leakcheck"
)

// TestEchoedKeyRedacted sends answers that echo the key in every form the
// API, a proxy or a debugging layer could use, and checks that no form of
// the key reaches an error, an APIError field, decoded data or a log line,
// and that the placeholder does (so that the echo was really delivered).
func TestEchoedKeyRedacted(t *testing.T) {
	t.Parallel()
	const (
		unauthorized = `{"status":"UNAUTHORIZED_ERROR","message":"invalid API key KEY","data":null}`
		validation   = `{"status":"VALIDATION_ERROR","message":"the key KEY is not allowed here","data":null}`
		htmlPage     = `<html><head><title>502</title></head><body><p>upstream refused GET /v1/runs?api_key=KEY</p></body></html>`
		promptBody   = `{"status":"SUCCESS","message":"OK","data":{"promptVersionId":"` + versionID + `","promptId":"` + promptID +
			`","title":"Prompt for KEY","publishedAt":"2026-01-01T00:00:00Z","config":{"inputs":[{"name":"x","description":"uses KEY"}]}}}`
	)
	cases := []struct {
		name   string
		key    APIKey // the client's key as configured; testKey when empty
		status int
		body   string // KEY stands for form
		form   string // a name in leakcheck.Forms
		prompt bool   // call GetPrompt and expect a success, instead of GetRun
	}{
		{name: "raw in message", status: 401, body: unauthorized, form: "raw"},
		{name: "partly JSON-escaped in message", status: 401, body: unauthorized, form: "json _"},
		{name: "fully JSON-escaped in message", status: 401, body: unauthorized, form: "json all"},
		{name: "fully JSON-escaped upper hex in message", status: 401, body: unauthorized, form: "json all upper"},
		{name: "percent-encoded in message", status: 422, body: validation, form: "percent _"},
		{name: "percent-encoded lower case in message", status: 422, body: validation, form: "percent _ lower"},
		{name: "fully percent-encoded in message", status: 422, body: validation, form: "percent all"},
		{name: "fully percent-encoded lower case in message", status: 422, body: validation, form: "percent all lower"},
		{name: "JSON-escaped percent-encoding in message", status: 422, body: validation, form: "json percent _"},
		{name: "object message, JSON-escaped", status: 500, form: "json _",
			body: `{"status":"SERVER_ERROR","message":{"error":"bad key","key":"KEY"},"data":null}`},
		{name: "object message, percent-encoded", status: 500, form: "percent _ lower",
			body: `{"status":"SERVER_ERROR","message":{"error":"bad key","request":"/v1/runs?key=KEY"},"data":null}`},
		{name: "error field instead of message", status: 401, form: "json all",
			body: `{"error":"bad key KEY"}`},
		{name: "error data, fully JSON-escaped", status: 422, form: "json all",
			body: `{"status":"VALIDATION_ERROR","message":"no","data":{"auth":"Bearer KEY"}}`},
		{name: "error data object key", status: 422, form: "json _",
			body: `{"status":"VALIDATION_ERROR","message":"no","data":{"KEY":true}}`},
		{name: "HTML page, percent-encoded", status: 502, body: htmlPage, form: "percent _"},
		{name: "HTML page, fully percent-encoded lower case", status: 502, body: htmlPage, form: "percent all lower"},
		{name: "plain text, percent-encoded", status: 200, body: "upstream said: KEY", form: "percent _ lower"},
		{name: "truncated JSON, JSON-escaped", status: 500, body: `{"status":"SERVER_ERROR","message":"bad KEY`, form: "json _"},
		{name: "success, JSON-escaped in title", status: 200, body: promptBody, form: "json _", prompt: true},
		{name: "success, fully JSON-escaped in title", status: 200, body: promptBody, form: "json all", prompt: true},
		{name: "success, percent-encoded in title", status: 200, body: promptBody, form: "percent all", prompt: true},
		{name: "Bearer key, JSON-escaped", key: "Bearer " + testKey, status: 401, body: unauthorized, form: "json _"},
		{name: "bearer key, percent-encoded", key: "  bearer\t" + testKey, status: 422, body: validation, form: "percent _ lower"},
		{name: "Bearer key, success", key: "Bearer " + testKey, status: 200, body: promptBody, form: "json all", prompt: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			form, ok := leakcheck.Forms(testKey)[tc.form]
			if !ok {
				t.Fatalf("unknown form %q", tc.form)
			}
			body := strings.ReplaceAll(tc.body, "KEY", form)
			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&syncWriter{w: &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			_, c := newServer(t, answer(tc.status, body), func(o *Options) {
				o.Logger = logger
				if tc.key != "" {
					o.APIKey = tc.key
				}
			})
			var outputs []string
			if tc.prompt {
				pv, err := c.GetPrompt(context.Background(), promptID, "")
				if err != nil {
					t.Fatalf("GetPrompt: %v", err)
				}
				j, _ := json.Marshal(pv)
				outputs = append(outputs, fmt.Sprintf("%+v", *pv), string(j), string(pv.InputConfig()))
			} else {
				_, err := c.GetRun(context.Background(), runID)
				if err == nil {
					t.Fatal("GetRun succeeded")
				}
				outputs = append(outputs, err.Error(), fmt.Sprintf("%+v", err))
				var ae *APIError
				if errors.As(err, &ae) {
					outputs = append(outputs, ae.Message, string(ae.Data), fmt.Sprintf("%+v", *ae))
				}
			}
			outputs = append(outputs, logs.String())
			for _, s := range outputs {
				if name := leakcheck.Find(s, testKey); name != "" {
					t.Errorf("the key leaks (%s form): %s", name, s)
				}
			}
			if all := strings.Join(outputs, "\n"); !strings.Contains(all, redacted) {
				t.Errorf("no output shows %s, so the echo was not delivered:\n%s", redacted, all)
			}
		})
	}
}

// TestRedactBytes checks what redaction makes of a body: the key replaced
// in every form, JSON kept as JSON with its numbers exact, and a body
// without the key left as it is.
func TestRedactBytes(t *testing.T) {
	t.Parallel()
	c := New(Options{APIKey: testKey})
	f := leakcheck.Forms(testKey)
	upper := strings.ToUpper(testKey) // another key: keys are case-sensitive
	cases := []struct {
		name, body, want string
	}{
		{"no key, escapes", `{"title":"Caf\u00e9 \"menu\"","url":"https://x.test/a%20b?c=%zz","n":1.50}`,
			`{"title":"Caf\u00e9 \"menu\"","url":"https://x.test/a%20b?c=%zz","n":1.50}`},
		{"no key, no escapes", `{"status":"SUCCESS","data":{"credits":3}}`, `{"status":"SUCCESS","data":{"credits":3}}`},
		{"raw", `{"m":"k=` + testKey + `"}`, `{"m":"k=[redacted]"}`},
		{"JSON-escaped, numbers kept exact", `{"m":"k=` + f["json _"] + `","n":12345678901234567890.10,"e":1e400}`,
			`{"m":"k=[redacted]","n":12345678901234567890.10,"e":1e400}`},
		{"fully JSON-escaped twice", `{"a":[1,{"b":"` + f["json all"] + `"}],"c":"` + f["json all upper"] + `"}`,
			`{"a":[1,{"b":"[redacted]"}],"c":"[redacted]"}`},
		{"object key", `{"` + f["json _"] + `":{"x":null}}`, `{"[redacted]":{"x":null}}`},
		{"percent-encoded in a URL", `{"u":"https://x.test/?k=` + f["percent _"] + `&q=a%20b"}`,
			`{"u":"https://x.test/?k=[redacted]&q=a b"}`},
		{"fully percent-encoded lower case", `["` + f["percent all lower"] + `"]`, `["[redacted]"]`},
		{"JSON-escaped percent", `{"m":"` + f["json percent _"] + `"}`, `{"m":"[redacted]"}`},
		{"percent-encoded twice", `{"m":"` + strings.ReplaceAll(testKey, "_", "%255F") + `"}`, `{"m":"[redacted]"}`},
		{"JSON inside a JSON string", `{"m":"{\"k\":\"` + strings.ReplaceAll(testKey, "_", `\\u005f`) + `\"}"}`,
			`{"m":"{\"k\":\"[redacted]\"}"}`},
		{"twice in one string", `{"m":"` + f["json _"] + `/` + f["percent _"] + `"}`, `{"m":"[redacted]/[redacted]"}`},
		{"another key's case is not ours", `{"m":"` + strings.ReplaceAll(upper, "_", "%5F") + `"}`,
			`{"m":"` + strings.ReplaceAll(upper, "_", "%5F") + `"}`},
		{"HTML, percent-encoded", `<p>k=` + f["percent _ lower"] + `&amp;x=%zz</p>`, `<p>k=[redacted]&amp;x=%zz</p>`},
		{"plain text, fully percent-encoded", `key: ` + f["percent all"] + `.`, `key: [redacted].`},
		{"truncated JSON", `{"status":"SERVER_ERROR","message":"bad ` + f["json _"], `{"status":"SERVER_ERROR","message":"bad [redacted]`},
		{"JSON then garbage", `{"m":"` + f["json _"] + `"} x`, `{"m":"[redacted]"} x`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := string(c.redactBytes([]byte(tc.body)))
			if tc.want == tc.body && got != tc.body {
				t.Errorf("redactBytes rewrote a body without the key:\n got %s\nwant %s", got, tc.want)
			}
			if !sameBody(got, tc.want) {
				t.Errorf("redactBytes(%s)\n got %s\nwant %s", tc.body, got, tc.want)
			}
			if name := leakcheck.Find(got, testKey); name != "" {
				t.Errorf("the key leaks (%s form): %s", name, got)
			}
		})
	}
}

// sameBody reports whether two bodies are equal: as JSON values (numbers
// compared as written) when both are JSON, byte for byte otherwise.
func sameBody(a, b string) bool {
	if a == b {
		return true
	}
	decode := func(s string) (any, bool) {
		d := json.NewDecoder(strings.NewReader(s))
		d.UseNumber()
		var v any
		if d.Decode(&v) != nil || d.More() {
			return nil, false
		}
		return v, true
	}
	va, okA := decode(a)
	vb, okB := decode(b)
	return okA && okB && reflect.DeepEqual(va, vb)
}
