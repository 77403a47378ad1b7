package betterprompt

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/bpmcp/bpmcp/bpapi"
	"github.com/bpmcp/bpmcp/internal/leakcheck"
	"github.com/bpmcp/bpmcp/internal/syncbuf"
	"github.com/bpmcp/bpmcp/tools"
)

// echoOutput is the structured result of the test tool below.
type echoOutput struct {
	Note string   `json:"note"`
	List []string `json:"list"`
}

// TestAdapterRedactsKey checks the adapter's last line of defence: a tool
// function that puts the call's key (raw, escaped or encoded) into its
// text, links, structured content or error, by a path that bypasses bpapi,
// still returns and logs it redacted.
func TestAdapterRedactsKey(t *testing.T) {
	t.Parallel()
	const (
		serverKey  = "bp_SERVER_0d5e3f81"
		callerKey  = "bp_CALLER_7a61c2e4"
		otherForms = "json all" // a second form put into each result
	)
	cases := []struct {
		name   string
		key    bpapi.APIKey // the server's key
		caller bpapi.APIKey // the caller's own key (HTTP mode), if any
		fail   bool         // the tool function returns an error
	}{
		{name: "server key", key: serverKey},
		{name: "server key with Bearer", key: "Bearer " + serverKey},
		{name: "caller key", key: serverKey, caller: callerKey},
		{name: "server key, error", key: serverKey, fail: true},
		{name: "caller key, error", key: serverKey, caller: callerKey, fail: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := serverKey // the key to find nowhere
			ctx := context.Background()
			if tc.caller != "" {
				want = string(tc.caller)
				ctx = WithAPIKey(ctx, tc.caller)
			}
			forms := leakcheck.Forms(want)
			logs := &syncbuf.Buffer{}
			d := &Toolset{
				Client: bpapi.New(bpapi.Options{APIKey: tc.key, BaseURL: "http://fake.invalid/v1"}),
				Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
			}
			d.Tools(nil)
			st := tools.New(&d.adapter, tools.Spec{Name: "echo", Hints: tools.ReadOnlyHints},
				func(ctx context.Context, _ struct{}) (tools.Result[echoOutput], error) {
					if tc.fail {
						return tools.Result[echoOutput]{}, tools.Failf(errors.New("cause "+forms["percent _"]), "failed for %s", forms["raw"])
					}
					return tools.Result[echoOutput]{
						Value: echoOutput{Note: "key " + want, List: []string{forms["percent all lower"], "ok"}},
						Content: []mcp.Content{
							mcp.NewTextContent("key " + want + " and " + forms[otherForms]),
							mcp.NewResourceLink("https://cdn.example.com/a.png?k="+forms["percent _"], "a.png", "for "+want, "image/png"),
						},
					}, nil
				})
			req := mcp.CallToolRequest{}
			req.Params.Name = "echo"
			req.Params.Arguments = map[string]any{}
			res, err := st.Handler(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if res.IsError != tc.fail {
				t.Fatalf("isError = %v", res.IsError)
			}
			wire, err := json.Marshal(res)
			if err != nil {
				t.Fatal(err)
			}
			for what, s := range map[string]string{"result": string(wire), "logs": logs.String()} {
				if form := leakcheck.Find(s, want); form != "" {
					t.Errorf("the key appears (%s) in the %s: %s", form, what, s)
				}
			}
			if !strings.Contains(string(wire), "[redacted]") {
				t.Errorf("the result does not show [redacted]: %s", wire)
			}
			if tc.fail && !strings.Contains(logs.String(), "[redacted]") {
				t.Errorf("the log does not show [redacted]: %s", logs.String())
			}
			if !tc.fail {
				var got echoOutput
				sc, _ := json.Marshal(res.StructuredContent)
				if err := json.Unmarshal(sc, &got); err != nil || got.Note != "key [redacted]" || len(got.List) != 2 || got.List[1] != "ok" {
					t.Errorf("structuredContent = %s (%v); want the same shape with the key redacted", sc, err)
				}
			}
		})
	}
}

// A call without a key (none configured) passes its result through.
func TestAdapterWithoutKey(t *testing.T) {
	t.Parallel()
	d := &Toolset{Client: bpapi.New(bpapi.Options{BaseURL: "http://fake.invalid/v1"})}
	d.Tools(nil)
	st := tools.New(&d.adapter, tools.Spec{Name: "echo", Hints: tools.ReadOnlyHints},
		func(context.Context, struct{}) (tools.Result[echoOutput], error) {
			return tools.Text(echoOutput{Note: `bp\u005fx 50%`}, `bp\u005fx 50%`), nil
		})
	req := mcp.CallToolRequest{}
	req.Params.Arguments = map[string]any{}
	res, err := st.Handler(context.Background(), req)
	if err != nil || res.IsError {
		t.Fatal(err, res)
	}
	if got := res.Content[0].(mcp.TextContent).Text; got != `bp\u005fx 50%` {
		t.Errorf("text = %q", got)
	}
	if _, ok := res.StructuredContent.(echoOutput); !ok {
		t.Errorf("structuredContent was rewritten: %#v", res.StructuredContent)
	}
}
