package betterprompt

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
)

// FuzzToolArguments feeds arbitrary argument JSON to every tool's handler.
// With no API key configured, anything that passes argument checks stops at
// the key check, so the fuzzer explores decoding and validation only. No
// input may panic, return a protocol error, or produce a result that is not
// a readable isError or a success.
func FuzzToolArguments(f *testing.F) {
	seeds := []string{
		`{}`, `null`, `[]`, `"x"`, `{"query":"cold email"}`, `{"query":123}`, `{"query":"` + strings.Repeat("a", 300) + `"}`,
		`{"prompt_id":"2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01"}`, `{"prompt_id":"../../etc"}`, `{"prompt_id":"%2e%2e"}`,
		`{"prompt_id":"2d4e6f80-1a3b-4c5d-8e9f-0a1b2c3d4e01","version_id":null}`,
		`{"prompt_version_id":"6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11","inputs":{"textInputs":{"a":"b"}},"wait_seconds":1e308}`,
		`{"prompt_version_id":"6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11","inputs":"x"}`,
		`{"run_id":"6f1c2a9e-3b7d-4c1e-9a52-0d8e4f6b7a11","wait_seconds":-1}`, `{"run_id":"\u0000"}`,
		`{"run_options":{"a":1}}`, `{"unknown":true}`, `{"query":"a","query":"b"}`, `{`, `{"query":"\ud800"}`,
	}
	for _, s := range seeds {
		f.Add(s)
	}
	d := &Toolset{Client: bpapi.New(bpapi.Options{BaseURL: "http://127.0.0.1:1/v1"})}
	all := d.Tools(nil)
	f.Fuzz(func(t *testing.T, args string) {
		for _, st := range all {
			req := mcp.CallToolRequest{}
			req.Params.Name = st.Tool.Name
			req.Params.Arguments = json.RawMessage(args)
			res, err := st.Handler(context.Background(), req)
			if err != nil {
				t.Fatalf("%s: protocol error %v", st.Tool.Name, err)
			}
			if res == nil || len(res.Content) == 0 {
				t.Fatalf("%s: empty result", st.Tool.Name)
			}
			if !res.IsError {
				t.Fatalf("%s: success without an API key for %q", st.Tool.Name, args)
			}
			msg := res.Content[0].(mcp.TextContent).Text
			for _, dump := range []string{"&{", "map[", "goroutine"} {
				// An excerpt of the caller's own argument may contain anything.
				if strings.Contains(msg, dump) && !strings.Contains(args, dump) {
					t.Fatalf("%s: unreadable error %q", st.Tool.Name, msg)
				}
			}
		}
	})
}
