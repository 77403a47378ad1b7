package main

import (
	"testing"
	"time"
)

// These tests cover the bench's pure helpers only; they run in
// milliseconds and start no process.

func TestQuantile(t *testing.T) {
	var s sample
	for i := 100; i >= 1; i-- {
		s = append(s, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0, time.Millisecond}, {0.5, 50 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := s.quantile(c.q); got != c.want {
			t.Errorf("quantile(%v) = %v, want %v", c.q, got, c.want)
		}
	}
	if s[0] != 100*time.Millisecond {
		t.Error("quantile sorted the sample in place")
	}
	if (sample{}).median() != 0 {
		t.Error("empty sample")
	}
}

func TestReplaceSection(t *testing.T) {
	doc := "# Title\n\nintro\n" + beginMarker + "\nold results\n" + endMarker + "\n\n## Analysis\n"
	got, err := replaceSection(doc, "new results\n")
	if err != nil {
		t.Fatal(err)
	}
	want := "# Title\n\nintro\n" + beginMarker + "\nnew results\n" + endMarker + "\n\n## Analysis\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := replaceSection("no markers", "x"); err == nil {
		t.Error("no error without markers")
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/bpmcp/bpmcp/schema
cpu: Intel(R) Xeon(R) Processor
BenchmarkParseConvertValidate-2   	   26000	     41350 ns/op	   41751 B/op	     341 allocs/op
PASS
ok  	github.com/bpmcp/bpmcp/schema	1.5s
pkg: github.com/bpmcp/bpmcp/bpapi
BenchmarkSearch10Rows-2   	    1158	    185942 ns/op	  52.53 MB/s	   63407 B/op	     160 allocs/op
ok  	github.com/bpmcp/bpmcp/bpapi	2.1s
`
	list, cpu := parseGoBench([]byte(out))
	if cpu != "Intel(R) Xeon(R) Processor" || len(list) != 2 {
		t.Fatalf("cpu %q, %d results", cpu, len(list))
	}
	b := list[1]
	if b.Pkg != "github.com/bpmcp/bpmcp/bpapi" || b.Name != "BenchmarkSearch10Rows-2" || b.NsPerOp != 185942 || b.BytesPerOp != 63407 || b.AllocsPerOp != 160 {
		t.Errorf("%+v", b)
	}
}

func TestMeasureTool(t *testing.T) {
	raw := `{"annotations":{"title":"T","readOnlyHint":true,"destructiveHint":false,"idempotentHint":true},"description":"d","inputSchema":{"type":"object"},` +
		`"name":"x","outputSchema":{"properties":{"a":{"type":"object","required":["b"]}},"required":["a"]},"title":"T"}`
	ts := measureTool([]byte(raw))
	if ts.Name != "x" || ts.Bytes != len(raw) {
		t.Errorf("%+v", ts)
	}
	if want := len(`"title":"T",`); ts.DupTitle != want {
		t.Errorf("DupTitle %d, want %d", ts.DupTitle, want)
	}
	if want := len(`"destructiveHint":false,"idempotentHint":true,`); ts.ReadOnlyHints != want {
		t.Errorf("ReadOnlyHints %d, want %d", ts.ReadOnlyHints, want)
	}
	if want := len(`,"required":["b"]`) + len(`,"required":["a"]`); ts.OutputRequired != want {
		t.Errorf("OutputRequired %d, want %d", ts.OutputRequired, want)
	}
}
