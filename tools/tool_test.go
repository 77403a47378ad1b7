package tools

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

type greetInput struct {
	Name  string `json:"name"`
	Times int    `json:"times,omitempty"`
}

func (in *greetInput) Check() error {
	if in.Name == "" {
		return Invalidf("name is required")
	}
	return nil
}

type greeting struct {
	Text string `json:"text"`
}

func call(t *testing.T, st server.ServerTool, args any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = st.Tool.Name, args
	res, err := st.Handler(context.Background(), req)
	if err != nil {
		t.Fatalf("the handler returned a protocol error: %v", err)
	}
	return res
}

func text(res *mcp.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String()
}

// Every annotation is set from Hints, false ones included: left out, the
// spec's defaults would mark a tool destructive.
func TestHintsSetEveryAnnotation(t *testing.T) {
	for _, h := range []Hints{ReadOnlyHints, {}, {Destructive: true, OpenWorld: true}} {
		st := New(&Adapter{}, Spec{Name: "t", Title: "T", Hints: h}, func(context.Context, greetInput) (Result[greeting], error) {
			return Result[greeting]{}, nil
		})
		a := st.Tool.Annotations
		if a.ReadOnlyHint == nil || a.DestructiveHint == nil || a.IdempotentHint == nil || a.OpenWorldHint == nil {
			t.Fatalf("hints %+v: an annotation is left out: %+v", h, a)
		}
		got := Hints{*a.ReadOnlyHint, *a.DestructiveHint, *a.IdempotentHint, *a.OpenWorldHint}
		if got != h || a.Title != "T" {
			t.Errorf("annotations %+v (%q), want %+v", got, a.Title, h)
		}
	}
}

// Failures become isError results that say what went wrong: bad arguments
// (decoding, then Check) before the function runs, an *Error as written, and
// any other error through Describe, never as a Go dump.
func TestFailuresBecomeIsErrorResults(t *testing.T) {
	upstream := errors.New("dial tcp 10.0.0.1:443: connection refused")
	ran := 0
	a := &Adapter{Describe: func(err error) string { return "The API could not be reached; try again." }}
	st := New(a, Spec{Name: "greet", Hints: ReadOnlyHints}, func(_ context.Context, in greetInput) (Result[greeting], error) {
		ran++
		switch in.Name {
		case "fail":
			return Result[greeting]{}, Failf(upstream, "Greeting %s failed; ask again later.", in.Name)
		case "upstream":
			return Result[greeting]{}, upstream
		}
		return Text(greeting{Text: "hi " + in.Name}, "hi "+in.Name), nil
	})
	cases := []struct {
		name string
		args any
		want string
		runs bool
	}{
		{name: "ok", args: map[string]any{"name": "ann"}, want: "hi ann", runs: true},
		{name: "unknown argument", args: map[string]any{"name": "ann", "nmae": 1}, want: "nmae"},
		{name: "wrong type", args: map[string]any{"name": 7}, want: "name"},
		{name: "Check", args: map[string]any{}, want: "name is required"},
		{name: "not an object", args: []any{1}, want: "Invalid arguments"},
		{name: "*Error", args: map[string]any{"name": "fail"}, want: "Greeting fail failed; ask again later.", runs: true},
		{name: "other error", args: map[string]any{"name": "upstream"}, want: "could not be reached", runs: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := ran
			res := call(t, st, tc.args)
			if res.IsError != (tc.name != "ok") || !strings.Contains(text(res), tc.want) {
				t.Errorf("isError=%v %q; want %q", res.IsError, text(res), tc.want)
			}
			if (ran > before) != tc.runs {
				t.Errorf("the function ran: %v, want %v", ran > before, tc.runs)
			}
			if strings.Contains(text(res), "&{") || strings.Contains(text(res), "goroutine") {
				t.Errorf("a Go dump reached the agent: %q", text(res))
			}
		})
	}
}

// A tool whose input schema is known only at run time declares that schema
// as it is and receives the arguments as one JSON object, checked first.
func TestNewRaw(t *testing.T) {
	schema := json.RawMessage(`{"type":"object","properties":{"tone":{"type":"string","enum":["warm","dry"]}},"required":["tone"]}`)
	check := func(args json.RawMessage) error {
		var in struct {
			Tone string `json:"tone"`
		}
		if err := json.Unmarshal(args, &in); err != nil || (in.Tone != "warm" && in.Tone != "dry") {
			return Invalidf("tone must be warm or dry")
		}
		return nil
	}
	var got json.RawMessage
	st := NewRaw(&Adapter{}, Spec{Name: "typed", Hints: ReadOnlyHints}, schema, check,
		func(_ context.Context, args json.RawMessage) (Result[greeting], error) {
			got = args
			return Text(greeting{Text: "ok"}, "ok"), nil
		})
	if string(st.Tool.RawInputSchema) != string(schema) {
		t.Errorf("input schema %s, want %s", st.Tool.RawInputSchema, schema)
	}
	if res := call(t, st, map[string]any{"tone": "loud"}); !res.IsError || got != nil {
		t.Errorf("arguments the check refused reached the function: %q", text(res))
	}
	if res := call(t, st, map[string]any{"tone": "dry"}); res.IsError || string(got) != `{"tone":"dry"}` {
		t.Errorf("result %q, arguments %s", text(res), got)
	}
}

// A wrong type inside an object argument is named down to its member, not
// only the argument that holds it.
func TestNestedTypeErrorNamesTheMember(t *testing.T) {
	type in struct {
		Options map[string]string `json:"run_options"`
	}
	st := New(&Adapter{}, Spec{Name: "opts", Hints: ReadOnlyHints}, func(context.Context, in) (Result[greeting], error) {
		return Text(greeting{}, "ok"), nil
	})
	res := call(t, st, map[string]any{"run_options": map[string]any{"aspectRatio": "3:4", "numImages": 2}})
	if !res.IsError || !strings.Contains(text(res), `"run_options.numImages" must be a string, got a JSON number`) {
		t.Errorf("result %q; want the member named", text(res))
	}
}
