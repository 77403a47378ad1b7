package betterprompt

import (
	"testing"

	"github.com/bpmcp/bpmcp/bpapi"
)

// Output types stay within the four the output schema promises, whatever
// the API sends.
func TestOutputType(t *testing.T) {
	cases := []struct {
		in   bpapi.Output
		want bpapi.OutputType
	}{
		{bpapi.Output{Type: "text", Data: "hi"}, bpapi.OutputText},
		{bpapi.Output{Type: "IMAGE", Data: "https://cdn.example/a.png"}, bpapi.OutputImage},
		{bpapi.Output{Type: "picture", Data: "https://cdn.example/a.jpg"}, bpapi.OutputImage},
		{bpapi.Output{Type: "clip", Data: "https://cdn.example/a.mp4"}, bpapi.OutputVideo},
		{bpapi.Output{Type: "markdown", Data: "# hi"}, bpapi.OutputText},
		{bpapi.Output{Type: "", Data: "https://cdn.example/file"}, bpapi.OutputText},
		{bpapi.Output{Type: "error", Data: "failed"}, bpapi.OutputError},
	}
	for _, tc := range cases {
		if got := outputType(tc.in); got != tc.want {
			t.Errorf("outputType(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
