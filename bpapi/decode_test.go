package bpapi

import (
	"encoding/json"
	"net/http"
	"testing"
	"unicode/utf8"
)

// FuzzDecodeEnvelope feeds arbitrary status codes, Retry-After values and
// bodies through the decoding every answer goes through. It must never
// panic, must return either data or an error (never both, never neither),
// and an error's message must stay short and printable.
func FuzzDecodeEnvelope(f *testing.F) {
	seeds := []struct {
		status int
		ra     string
		body   string
	}{
		{200, "", success(runJSON)},
		{200, "", success(promptVersionJSON)},
		{200, "", success(`{"rows":[{"promptId":"` + promptID + `","model":50,"modality":0,"samples":{},"configs":{}}]}`)},
		{200, "", success(`{"rows":[{"runId":"` + runID + `","runStatus":"succeeded","credits":null}],"hasMore":false}`)},
		{200, "", success(`{"username":"janedoe","displayName":"Jane Doe","userFlags":3}`)},
		{200, "", success(`{"credits":4250}`)},
		{200, "", success(`{"hash":"abc123","resources":{"models":[{"model":"o3","modality":"text","availableRunOptions":[{"key":"reasoningEffort","options":["low","medium","high"]}]}]}}`)},
		{200, "", success(`{"promptId":"` + promptID + `","title":"T","versions":[{"promptVersionId":"` + versionID + `","isLatest":true}]}`)},
		{422, "", failure(CodeValidation, "Invalid promptVersionId", "")},
		{404, "", failure(CodeNotFound, "Run not found", "")},
		{429, "1", failure(CodeTooManyRequests, "Rate limit exceeded", "")},
		{429, "Wed, 21 Oct 2015 07:28:00 GMT", failure(CodeTooManyRequests, "", "")},
		{504, "", failure(CodeGatewayTimeout, "The request timed out while waiting for the run to finish.", `{"runId":"`+runID+`"}`)},
		{502, "", "<html><body>502 Bad Gateway</body></html>"},
		{200, "", ""},
		{200, "", `{"status":"SUCCESS","data":{"runId":"9b8a`},
		{200, "", `{"status":"SUCCESS","data":{"outputs":[{"type":7,"data":{"x":1}},{"type":true}]}}`},
		{200, "", `[]`},
		{200, "", `null`},
		{-1, "-5", "\xff\xfe\x00"},
	}
	for _, s := range seeds {
		f.Add(s.status, s.ra, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, status int, ra string, body []byte) {
		h := http.Header{}
		h.Set("Retry-After", ra)
		data, apiErr := decodeEnvelope(status, h, body)
		if (data == nil) == (apiErr == nil) {
			t.Fatalf("decodeEnvelope returned data %q and error %v", data, apiErr)
		}
		if apiErr != nil {
			checkAPIError(t, apiErr)
		}
		targets := []func() any{
			func() any { return new(Run) }, func() any { return new(RunList) }, func() any { return new(PromptVersion) },
			func() any { return new(VersionList) }, func() any { return new(User) },
			func() any { return new(struct{ Rows []PromptSummary }) },
			func() any { return new(struct{ Credits *json.Number }) },
		}
		for _, target := range targets {
			out := target()
			_, err := decodeAnswer(status, h, body, out, nil)
			if err != nil {
				checkAPIError(t, err)
			}
		}
	})
}

func checkAPIError(t *testing.T, e *APIError) {
	t.Helper()
	if !utf8.ValidString(e.Message) {
		t.Fatalf("message is not UTF-8: %q", e.Message)
	}
	// Messages built by the client: a short description plus an excerpt
	// of at most 200 characters. Messages from the API are capped at 1000.
	if n := utf8.RuneCountInString(e.Message); n > maxMessage || (e.Code == "" && n > maxExcerpt+200) {
		t.Fatalf("message of %d characters: %q", n, e.Message)
	}
	if e.RetryAfter < 0 {
		t.Fatalf("negative RetryAfter %v", e.RetryAfter)
	}
	if e.Error() == "" {
		t.Fatal("empty error text")
	}
}
