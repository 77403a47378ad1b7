package betterprompt

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/runs"
)

// Benchmarks of the server's own work per call, without any transport:
//
//	go test -run '^$' -bench . -benchmem ./tools/betterprompt/

// benchFinishedJob is benchFinishedRun as the run engine hands it over.
func benchFinishedJob() *runs.Job {
	job := jobOf(benchFinishedRun())
	return &job
}

// benchFinishedRun is a finished run with one text output and two images,
// shaped like the fake's answers (family-portrait-trio).
func benchFinishedRun() *bpapi.Run {
	tokens := 120
	const id = "0e7d4c1a-5b2f-4d8e-9a63-7c1b2e3f4a5d"
	url := func(n string) string {
		return "http://127.0.0.1:40123/files/" + id + "/" + n + ".png?expires=" + "1767312000"
	}
	return &bpapi.Run{
		RunID:           id,
		PromptVersionID: "1a44f51f-d331-42ca-aecb-040afb8008be",
		Status:          bpapi.RunSucceeded,
		Tokens:          &tokens,
		CreatedAt:       time.Now().UTC().Format("2006-01-02T15:04:05.000Z"),
		Outputs: []bpapi.Output{
			{Type: bpapi.OutputText, Data: "Here are two takes on your family portrait: a warm, window-lit version in the style of a " +
				"1970s film photograph, and a crisper studio version with a soft grey backdrop. Both keep everyone's " +
				"expressions from the photos you sent; the first crops a little tighter so the three of you fill the frame."},
			{Type: bpapi.OutputImage, Data: url("2")},
			{Type: bpapi.OutputImage, Data: url("3")},
		},
	}
}

// BenchmarkRenderOutcome measures turning a finished run (text + 2 images)
// into the tool result: structuredContent and 6 content items.
func BenchmarkRenderOutcome(b *testing.B) {
	d := &Toolset{}
	o := runs.Outcome{Job: benchFinishedJob()}
	b.ReportAllocs()
	for b.Loop() {
		res := d.renderOutcome(o)
		if len(res.Content) != 6 || res.IsError {
			b.Fatalf("%d content items", len(res.Content))
		}
	}
}

// BenchmarkRenderOutcomeJSON adds the JSON encoding of the result as it
// goes on the wire, which mcp-go does after the handler returns.
func BenchmarkRenderOutcomeJSON(b *testing.B) {
	d := &Toolset{}
	o := runs.Outcome{Job: benchFinishedJob()}
	var size int
	b.ReportAllocs()
	for b.Loop() {
		res := d.renderOutcome(o)
		out, err := json.Marshal(&mcp.CallToolResult{Content: res.Content, StructuredContent: res.Value, IsError: res.IsError})
		if err != nil {
			b.Fatal(err)
		}
		size = len(out)
	}
	b.ReportMetric(float64(size), "result-bytes")
}

// cannedCredits answers every request with a credits envelope.
type cannedCredits struct{}

var creditsBody = []byte(`{"status":"SUCCESS","message":"OK","data":{"credits":99960}}`)

func (cannedCredits) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{
		StatusCode: http.StatusOK, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewReader(creditsBody)), ContentLength: int64(len(creditsBody)), Request: r,
	}, nil
}

// BenchmarkGetCreditsHandler measures one get_credits call through the tool
// adapter (argument decoding, the bpapi call with an in-memory transport,
// rendering), i.e. the server's per-call work minus the MCP transport.
func BenchmarkGetCreditsHandler(b *testing.B) {
	d := &Toolset{Client: bpapi.New(bpapi.Options{
		BaseURL: "http://fake.invalid/v1", APIKey: "bp_bench_key", RateLimit: -1,
		HTTPClient: &http.Client{Transport: cannedCredits{}},
	})}
	var handler func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error)
	for _, t := range d.Tools(nil) {
		if t.Tool.Name == "get_credits" {
			handler = t.Handler
		}
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "get_credits"
	req.Params.Arguments = json.RawMessage(`{}`)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, err := handler(ctx, req)
		if err != nil || res.IsError {
			b.Fatal(err, res)
		}
	}
}
