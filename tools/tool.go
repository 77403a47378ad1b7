// Package tools defines the MCP tools of the BetterPrompt server: each tool is
// a typed function plus a short declaration, turned into an mcp-go tool by one
// adapter (newTool). The adapter decodes and checks arguments with readable
// messages, maps failures to isError results an agent can act on, and always
// returns structuredContent together with a text rendering.
package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"

	"github.com/invopop/jsonschema"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Hints are a tool's behaviour annotations. Every field is set on purpose,
// because mcp-go's defaults (and the spec's) mark a tool destructive.
type Hints struct {
	ReadOnly, Destructive, Idempotent, OpenWorld bool
}

// readOnlyHints is the annotation set of every tool that only reads.
var readOnlyHints = Hints{ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: true}

// spec declares a tool: what agents see in tools/list.
type spec struct {
	Name        string
	Title       string
	Description string
	Hints       Hints
	// InputSchema overrides the schema reflected from the argument type.
	InputSchema *jsonschema.Schema
	// TaskSupport, when set, lets task-capable hosts call the tool as an MCP task.
	TaskSupport mcp.TaskSupport
}

// result is what a tool function returns: the structured value (which must
// match the tool's output schema) and its rendering as MCP content.
type result[Out any] struct {
	Value   Out
	Content []mcp.Content
	// IsError marks a result that carries a conforming value but reports a
	// failure the agent should see as one (a failed run).
	IsError bool
}

// ServerTool pairs a tool definition with its handler.
type ServerTool = server.ServerTool

// newTool builds an MCP tool from a typed function. In is decoded from the
// call's arguments by decodeArgs (unknown arguments and wrong types are
// refused with readable messages) and then checked by its own Check method,
// when it has one. Out's reflected schema becomes the output schema.
func newTool[In any, Out any](d *Deps, s spec, fn func(ctx context.Context, in In) (result[Out], error)) ServerTool {
	inSchema := s.InputSchema
	if inSchema == nil {
		inSchema = reflectSchema[In]()
	}
	tool := mcp.NewToolWithRawSchema(s.Name, s.Description, mustJSON(inSchema))
	tool.Title = s.Title
	tool.RawOutputSchema = mustJSON(reflectOutputSchema[Out]())
	tool.Annotations = mcp.ToolAnnotation{
		Title:           s.Title,
		ReadOnlyHint:    mcp.ToBoolPtr(s.Hints.ReadOnly),
		DestructiveHint: mcp.ToBoolPtr(s.Hints.Destructive),
		IdempotentHint:  mcp.ToBoolPtr(s.Hints.Idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(s.Hints.OpenWorld),
	}
	if s.TaskSupport != "" && d.TaskCalls {
		tool.Execution = &mcp.ToolExecution{TaskSupport: s.TaskSupport}
	}
	allowed := argumentNames(inSchema)
	decode := func(raw any) (In, error) {
		var in In
		if err := decodeArgs(raw, allowed, &in); err != nil {
			return in, err
		}
		if c, ok := any(&in).(interface{ Check() error }); ok {
			if err := c.Check(); err != nil {
				return in, err
			}
		}
		return in, nil
	}
	if d.prechecks == nil {
		d.prechecks = make(map[string]func(any) error)
	}
	d.prechecks[s.Name] = func(raw any) error { _, err := decode(raw); return err }

	call := func(ctx context.Context, req mcp.CallToolRequest) *mcp.CallToolResult {
		if taskRefused(req) {
			return errorResult(errTooManyTasks)
		}
		in, err := decode(req.GetRawArguments())
		if err != nil {
			return errorResult(err)
		}
		ctx = withRequest(ctx, req)
		out, err := fn(ctx, in)
		if err != nil {
			d.logToolError(ctx, s.Name, err)
			return errorResult(err)
		}
		return &mcp.CallToolResult{Content: out.Content, StructuredContent: out.Value, IsError: out.IsError}
	}
	handler := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return d.redactResult(ctx, call(ctx, req)), nil
	}
	return ServerTool{Tool: tool, Handler: handler}
}

// reflector builds compact, inline schemas: no $schema, $id or $defs, and
// additionalProperties false, so the tools/list answer stays small.
var reflector = jsonschema.Reflector{
	DoNotReference:            true,
	ExpandedStruct:            true,
	AllowAdditionalProperties: false,
	Anonymous:                 true,
}

// outputReflector builds output schemas: results are written by this
// server, so they need no additionalProperties guard, and field descriptions
// would only repeat what the text content says; both would cost tokens in
// every tools/list.
// Nor do they list required fields: every field is always sent, and the
// lists would cost about 500 bytes of every tools/list.
var outputReflector = jsonschema.Reflector{
	DoNotReference:             true,
	ExpandedStruct:             true,
	AllowAdditionalProperties:  true,
	Anonymous:                  true,
	RequiredFromJSONSchemaTags: true,
}

func reflectSchema[T any]() *jsonschema.Schema {
	return compact(reflector.ReflectFromType(reflect.TypeFor[T]()))
}

func reflectOutputSchema[T any]() *jsonschema.Schema {
	s := compact(outputReflector.ReflectFromType(reflect.TypeFor[T]()))
	dropDescriptions(s)
	return s
}

func compact(s *jsonschema.Schema) *jsonschema.Schema {
	s.Version = ""
	s.ID = ""
	return s
}

func dropDescriptions(s *jsonschema.Schema) {
	if s == nil {
		return
	}
	s.Description = ""
	dropDescriptions(s.Items)
	if s.Properties != nil {
		for p := s.Properties.Oldest(); p != nil; p = p.Next() {
			dropDescriptions(p.Value)
		}
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("tools: marshal schema: %v", err)) // a broken declaration, found by any test
	}
	return b
}

// argumentNames lists the properties a schema declares.
func argumentNames(s *jsonschema.Schema) []string {
	if s == nil || s.Properties == nil {
		return nil
	}
	names := make([]string, 0, s.Properties.Len())
	for p := s.Properties.Oldest(); p != nil; p = p.Next() {
		names = append(names, p.Key)
	}
	return names
}

// logToolError records a failed call on stderr. Errors do not carry the
// API key (bpapi redacts every answer); the call's key is redacted here
// once more, as in results.
func (d *Deps) logToolError(ctx context.Context, tool string, err error) {
	var te *toolError
	level := slog.LevelWarn
	if errors.As(err, &te) && te.expected {
		level = slog.LevelDebug
	}
	redact := d.redactor(ctx)
	if redact == nil {
		redact = func(s string) string { return s }
	}
	attrs := []any{"tool", tool, "err", redact(err.Error())}
	if te != nil && te.cause != nil {
		attrs = append(attrs, "cause", redact(te.cause.Error()))
	}
	d.logger().Log(ctx, level, "tool call failed", attrs...)
}

// redactResult is the last line of defence for the API key: bpapi already
// redacts every answer it reads, and this redacts the call's key, in every
// form bpapi.Client.Redact knows, from the result's text, links and
// structured content, should any other path ever carry it there.
func (d *Deps) redactResult(ctx context.Context, res *mcp.CallToolResult) *mcp.CallToolResult {
	redact := d.redactor(ctx)
	if redact == nil {
		return res
	}
	for i, content := range res.Content {
		switch ct := content.(type) {
		case mcp.TextContent:
			ct.Text = redact(ct.Text)
			res.Content[i] = ct
		case mcp.ResourceLink:
			ct.URI, ct.Name, ct.Description = redact(ct.URI), redact(ct.Name), redact(ct.Description)
			res.Content[i] = ct
		}
	}
	if res.StructuredContent != nil {
		if b, err := json.Marshal(res.StructuredContent); err == nil {
			if r := redact(string(b)); r != string(b) {
				res.StructuredContent = json.RawMessage(r)
			}
		}
	}
	return res
}

// redactor returns the function that redacts the call's API key, or nil
// when the call has no key.
func (d *Deps) redactor(ctx context.Context) func(string) string {
	if d.Client == nil {
		return nil
	}
	c, _, err := d.client(ctx)
	if err != nil {
		return nil
	}
	return c.Redact
}
