package bpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bpmcp/bpmcp/bpapi/fakeapi"
)

// The benchmarks here measure the response path of a typical GET: the
// client's whole call (request building, rate limiter off, reading the body,
// key redaction, envelope and data decoding) on answers written by the fake
// API, served from memory by a RoundTripper so that no network is measured.
// The json.Unmarshal benchmarks on the same bodies are the floor that
// decoding alone costs.
//
//	go test -run '^$' -bench . -benchmem ./bpapi/

const benchAPIKey = "bp_bench_key"

// cannedTransport answers every request with the same body.
type cannedTransport struct{ body []byte }

func (c cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode:    http.StatusOK,
		Header:        http.Header{"Content-Type": {"application/json"}},
		Body:          io.NopCloser(bytes.NewReader(c.body)),
		ContentLength: int64(len(c.body)),
		Request:       r,
	}, nil
}

func benchClient(body []byte) *Client {
	return New(Options{
		BaseURL:    "http://fake.invalid/v1",
		APIKey:     benchAPIKey,
		RateLimit:  -1,
		HTTPClient: &http.Client{Transport: cannedTransport{body}},
	})
}

// fakeAnswers returns answers of the fake API: a search with exactly 10
// rows and a finished run with a text and two image outputs
// (family-portrait-trio).
func fakeAnswers(b *testing.B) (search, run []byte) {
	b.Helper()
	cat, err := fakeapi.LoadCatalogueDir("../testdata/catalogue")
	if err != nil {
		b.Fatal(err)
	}
	fake := fakeapi.New(fakeapi.Options{
		Catalogue: cat,
		Keys:      map[string]fakeapi.Key{benchAPIKey: {Credits: 1 << 20}},
		RateLimit: -1,
		TimeScale: 1e-6, // runs finish at once
	})
	defer fake.Close()
	serve := func(method, target, body string) []byte {
		req := httptest.NewRequest(method, target, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+benchAPIKey)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		fake.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%s %s: %d %s", method, target, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}

	// Gather rows from a few searches and keep exactly ten, in the fake's
	// own wire format.
	var rows []json.RawMessage
	seen := map[string]bool{}
	for _, q := range []string{"email", "image", "writer", "list", "photo", "prompt", "a"} {
		var env struct {
			Data struct {
				Rows []json.RawMessage `json:"rows"`
			} `json:"data"`
		}
		if err := json.Unmarshal(serve(http.MethodGet, "/v1/prompts/publish?q="+q, ""), &env); err != nil {
			b.Fatal(err)
		}
		for _, r := range env.Data.Rows {
			if len(rows) < 10 && !seen[string(r)] {
				seen[string(r)] = true
				rows = append(rows, r)
			}
		}
	}
	if len(rows) != 10 {
		b.Fatalf("found %d distinct search rows, want 10", len(rows))
	}
	search, err = json.Marshal(map[string]any{"status": "SUCCESS", "message": "OK", "data": map[string]any{"rows": rows}})
	if err != nil {
		b.Fatal(err)
	}

	run = serve(http.MethodPost, "/v1/runs", `{"promptVersionId":"1a44f51f-d331-42ca-aecb-040afb8008be","inputs":{"textInputs":{},"imageInputs":[`+
		`{"type":"url","url":"https://example.com/a.png"},{"type":"url","url":"https://example.com/b.png"},{"type":"url","url":"https://example.com/c.png"}]}}`)
	var check struct {
		Data Run `json:"data"`
	}
	if err := json.Unmarshal(run, &check); err != nil || !check.Data.Status.Final() || len(check.Data.Outputs) != 3 {
		b.Fatalf("the run answer is not a finished run with 3 outputs: %s", run)
	}
	return search, bytes.Clone(run)
}

func BenchmarkSearch10Rows(b *testing.B) {
	search, _ := fakeAnswers(b)
	c := benchClient(search)
	ctx := context.Background()
	b.SetBytes(int64(len(search)))
	b.ReportAllocs()
	for b.Loop() {
		rows, err := c.SearchPrompts(ctx, "email")
		if err != nil || len(rows) != 10 {
			b.Fatal(len(rows), err)
		}
	}
}

func BenchmarkGetRunTextAnd2Images(b *testing.B) {
	_, run := fakeAnswers(b)
	c := benchClient(run)
	ctx := context.Background()
	id := "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c01"
	b.SetBytes(int64(len(run)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := c.GetRun(ctx, id)
		if err != nil || len(r.Outputs) != 3 {
			b.Fatal(err)
		}
	}
}

// BenchmarkCredits is the smallest GET (/me/credits): mostly the fixed cost
// of a call, without much to decode.
func BenchmarkCredits(b *testing.B) {
	body := []byte(`{"status":"SUCCESS","message":"OK","data":{"credits":99960}}`)
	c := benchClient(body)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Credits(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// The floor: json.Unmarshal of the same bodies into the same types, with no
// client around it.

func BenchmarkUnmarshalOnlySearch10Rows(b *testing.B) {
	search, _ := fakeAnswers(b)
	b.SetBytes(int64(len(search)))
	b.ReportAllocs()
	for b.Loop() {
		var env struct {
			Status string `json:"status"`
			Data   struct {
				Rows []PromptSummary `json:"rows"`
			} `json:"data"`
		}
		if err := json.Unmarshal(search, &env); err != nil || len(env.Data.Rows) != 10 {
			b.Fatal(err)
		}
	}
}

func BenchmarkUnmarshalOnlyRun(b *testing.B) {
	_, run := fakeAnswers(b)
	b.SetBytes(int64(len(run)))
	b.ReportAllocs()
	for b.Loop() {
		var env struct {
			Status string `json:"status"`
			Data   Run    `json:"data"`
		}
		if err := json.Unmarshal(run, &env); err != nil || len(env.Data.Outputs) != 3 {
			b.Fatal(err)
		}
	}
}

// BenchmarkRedact measures key redaction alone on a body the client reads:
// the search answer (its JSON escapes and '%' signs cannot make the key, so
// they are only looked at), the run answer (neither, so it is only searched
// for the raw key), and an error answer that echoes the key JSON-escaped (so
// it is rewritten).
func BenchmarkRedact(b *testing.B) {
	search, run := fakeAnswers(b)
	echo := []byte(`{"status":"UNAUTHORIZED_ERROR","message":"invalid API key ` +
		strings.ReplaceAll(benchAPIKey, "_", `\u005f`) + `","data":null}`)
	c := benchClient(nil)
	for _, bc := range []struct {
		name string
		body []byte
		same bool // the body comes back unchanged
	}{{"search", search, true}, {"run", run, true}, {"escaped key", echo, false}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(bc.body)))
			b.ReportAllocs()
			for b.Loop() {
				if out := c.redactBytes(bc.body); bytes.Equal(out, bc.body) != bc.same {
					b.Fatalf("redactBytes(%s) = %s", bc.body, out)
				}
			}
		})
	}
}
