// Package tools is the MCP adapter: it turns typed Go functions into mcp-go
// tools and knows nothing of any upstream API. It decodes and checks
// arguments with readable messages, turns failures into isError results an
// agent can act on, always returns structuredContent together with a text
// rendering, reports progress, and bounds MCP task calls. A Toolset (such
// as tools/betterprompt) declares its tools through it; the server
// assembly (mcpserver) registers every toolset the same way.
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

// ReadOnlyHints is the annotation set of a tool that only reads an
// external service.
var ReadOnlyHints = Hints{ReadOnly: true, Destructive: false, Idempotent: true, OpenWorld: true}

// Spec declares a tool: what agents see in tools/list.
type Spec struct {
	Name        string
	Title       string
	Description string
	Hints       Hints
	// InputSchema overrides the schema reflected from the argument type.
	InputSchema *jsonschema.Schema
	// TaskSupport, when set, lets task-capable hosts call the tool as an MCP
	// task (where the server offers tasks: Adapter.Tasks).
	TaskSupport mcp.TaskSupport
	// UI is the ui:// resource (an MCP App) that shows the tool's results,
	// declared in _meta.ui.resourceUri; "" for none.
	UI string
}

// Result is what a tool function returns: the structured value (which must
// match the tool's output schema) and its rendering as MCP content.
type Result[Out any] struct {
	Value   Out
	Content []mcp.Content
	// IsError marks a result that carries a conforming value but reports a
	// failure the agent should see as one (a failed run).
	IsError bool
}

// Text returns a result whose content is one text item.
func Text[Out any](v Out, text string) Result[Out] {
	return Result[Out]{Value: v, Content: []mcp.Content{mcp.NewTextContent(text)}}
}

// Adapter holds what a toolset's tools share: where failures are logged,
// how errors that are not *Error are described to the agent, and how a
// call's secret is kept out of results and logs.
type Adapter struct {
	// Logger receives a line per failed call (stderr). Nil discards them.
	Logger *slog.Logger
	// Describe writes, for the agent, an error that is not an *Error (an
	// upstream failure): what went wrong and what to do next. Nil gives a
	// generic sentence.
	Describe func(error) string
	// Redactor returns the function that removes the call's secrets (in
	// every form they may take) from a text, or nil when the call has none.
	Redactor func(context.Context) func(string) string
	// Tasks, when not nil, lets tools that declare TaskSupport be called as
	// MCP tasks, within its bounds.
	Tasks *Tasks
}

func (a *Adapter) logger() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// New builds an MCP tool from a typed function. In is decoded from the
// call's arguments (unknown arguments and wrong types are refused with
// readable messages) and then checked by its own Check method, when it has
// one. Out's reflected schema becomes the output schema.
func New[In any, Out any](a *Adapter, s Spec, fn func(ctx context.Context, in In) (Result[Out], error)) server.ServerTool {
	inSchema := s.InputSchema
	if inSchema == nil {
		inSchema = ReflectSchema[In]()
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
	return build(a, s, MustJSON(inSchema), MustJSON(reflectOutputSchema[Out]()), decode, fn)
}

// NewRaw builds an MCP tool whose input schema is known only at run time
// (a tool per published prompt, say): fn receives the arguments as one JSON
// object, which check (when not nil) has accepted first. The adapter
// refuses arguments that are not a JSON object within the size limit.
func NewRaw[Out any](a *Adapter, s Spec, inputSchema json.RawMessage, check func(json.RawMessage) error,
	fn func(ctx context.Context, args json.RawMessage) (Result[Out], error)) server.ServerTool {
	decode := func(raw any) (json.RawMessage, error) {
		args, err := objectArgs(raw)
		if err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(args); err != nil {
				return nil, err
			}
		}
		return args, nil
	}
	return build(a, s, inputSchema, MustJSON(reflectOutputSchema[Out]()), decode, fn)
}

func build[In any, Out any](a *Adapter, s Spec, inSchema, outSchema json.RawMessage, decode func(any) (In, error),
	fn func(ctx context.Context, in In) (Result[Out], error)) server.ServerTool {
	tool := mcp.NewToolWithRawSchema(s.Name, s.Description, inSchema)
	tool.Title = s.Title
	if s.UI != "" {
		tool.Meta = &mcp.Meta{AdditionalFields: map[string]any{"ui": map[string]any{"resourceUri": s.UI}}}
	}
	tool.RawOutputSchema = outSchema
	tool.Annotations = mcp.ToolAnnotation{
		Title:           s.Title,
		ReadOnlyHint:    mcp.ToBoolPtr(s.Hints.ReadOnly),
		DestructiveHint: mcp.ToBoolPtr(s.Hints.Destructive),
		IdempotentHint:  mcp.ToBoolPtr(s.Hints.Idempotent),
		OpenWorldHint:   mcp.ToBoolPtr(s.Hints.OpenWorld),
	}
	if s.TaskSupport != "" && a.Tasks != nil {
		tool.Execution = &mcp.ToolExecution{TaskSupport: s.TaskSupport}
		a.Tasks.precheck(s.Name, func(raw any) error { _, err := decode(raw); return err })
	}
	call := func(ctx context.Context, req mcp.CallToolRequest) *mcp.CallToolResult {
		if taskRefused(req) {
			return mcp.NewToolResultError(errTooManyTasks(s.Name))
		}
		in, err := decode(req.GetRawArguments())
		if err != nil {
			return a.errorResult(err)
		}
		ctx = withRequest(ctx, req)
		out, err := fn(ctx, in)
		if res, ok := needInput(err); ok {
			return res
		}
		if err != nil {
			a.logToolError(ctx, s.Name, err)
			return a.errorResult(err)
		}
		return &mcp.CallToolResult{Content: out.Content, StructuredContent: out.Value, IsError: out.IsError}
	}
	handler := func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return a.redactResult(ctx, call(ctx, req)), nil
	}
	return server.ServerTool{Tool: tool, Handler: handler}
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

// ReflectSchema returns the compact input schema of T, for a toolset that
// adjusts it before declaring a tool.
func ReflectSchema[T any]() *jsonschema.Schema {
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

// MustJSON marshals a schema declared in code; it panics on a broken
// declaration, which any test finds.
func MustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("tools: marshal schema: %v", err))
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

// logToolError records a failed call on stderr, with the call's secrets
// redacted, as in results.
func (a *Adapter) logToolError(ctx context.Context, tool string, err error) {
	var te *Error
	level := slog.LevelWarn
	if errors.As(err, &te) && te.Expected {
		level = slog.LevelDebug
	}
	redact := a.redactor(ctx)
	attrs := []any{"tool", tool, "err", redact(err.Error())}
	if te != nil && te.Cause != nil {
		attrs = append(attrs, "cause", redact(te.Cause.Error()))
	}
	a.logger().Log(ctx, level, "tool call failed", attrs...)
}

// redactResult is the last line of defence for the call's secrets: the
// upstream client already redacts what it reads, and this redacts them
// from the result's text, links and structured content, should any other
// path ever carry them there.
func (a *Adapter) redactResult(ctx context.Context, res *mcp.CallToolResult) *mcp.CallToolResult {
	if a.Redactor == nil {
		return res
	}
	redact := a.Redactor(ctx)
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

// redactor returns the call's redaction, or the identity.
func (a *Adapter) redactor(ctx context.Context) func(string) string {
	if a.Redactor != nil {
		if r := a.Redactor(ctx); r != nil {
			return r
		}
	}
	return func(s string) string { return s }
}
