// Package mcpserver assembles the MCP server: the mcp-go server with the
// tools and instructions of each toolset, the stdio transport, and the Streamable
// HTTP transport with its security middleware. main only reads the
// configuration and calls into it; tests drive the same code.
package mcpserver

import (
	"context"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/internal/calltrace"
	"github.com/bpmcp/bpmcp/internal/metrics"
	"github.com/bpmcp/bpmcp/tools"
	"github.com/bpmcp/bpmcp/tools/viewer"
)

// Name is the server's name in the MCP handshake.
const Name = "betterprompt"

// Option configures New.
type Option func(*options)

type options struct {
	tasks        bool
	keep         func(mcp.Tool) bool
	metrics      *metrics.Metrics
	trace        *calltrace.Writer
	mediaOrigins []string
}

// WithTrace writes a line per tool call to w (--trace).
func WithTrace(w *calltrace.Writer) Option { return func(o *options) { o.trace = w } }

// redactors removes every toolset's secret of a call from a text: an
// agent may paste a key into an argument.
func redactors(sets []tools.Toolset) func(ctx context.Context, s string) string {
	return func(ctx context.Context, s string) string {
		for _, ts := range sets {
			if r, ok := ts.(tools.Redacting); ok {
				if redact := r.Redactor(ctx); redact != nil {
					s = redact(s)
				}
			}
		}
		return s
	}
}

// traceCalls is the tool middleware of WithTrace; redact removes the
// call's secrets from what it writes.
func traceCalls(w *calltrace.Writer, redact func(context.Context, string) string) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			// The episode and, in stateless HTTP, the session are the
			// caller's own text: a key may be among them too.
			e := calltrace.Entry{Time: time.Now().UTC(), Tool: req.Params.Name, Episode: redact(ctx, calltrace.Episode(ctx))}
			if s := server.ClientSessionFromContext(ctx); s != nil {
				e.Session = redact(ctx, s.SessionID())
			}
			if raw, err := json.Marshal(req.GetRawArguments()); err == nil {
				e.Arguments = calltrace.Arguments([]byte(redact(ctx, string(raw))))
			}
			ctx, requests := calltrace.WithCounter(ctx)
			res, err := next(ctx, req)
			e.DurationMS = float64(time.Since(e.Time).Microseconds()) / 1000
			e.UpstreamRequests = requests.Load()
			e.Outcome = outcomeOf(res, err)
			if res != nil {
				e.IsError = res.IsError
				if res.IsError {
					e.Error = redact(ctx, firstLine(res))
				}
				readRun(&e, res.StructuredContent)
			}
			_ = w.Write(e) // a trace that cannot be written does not fail the call
			return res, err
		}
	}
}

// readRun copies a result's run status, id and credits into e.
func readRun(e *calltrace.Entry, structured any) {
	if structured == nil {
		return
	}
	b, err := json.Marshal(structured)
	if err != nil {
		return
	}
	var v struct {
		Status       string `json:"status"`
		RunID        string `json:"run_id"`
		GenerationID string `json:"generation_id"`
		Credits      *int   `json:"credits"`
	}
	if json.Unmarshal(b, &v) != nil {
		return
	}
	e.RunID = v.RunID
	if e.RunID == "" {
		e.RunID = v.GenerationID
	}
	if e.RunID != "" { // a run's status and charge; get_credits' credits are a balance
		e.Status, e.Credits = v.Status, v.Credits
	}
}

// firstLine is the first line of res's text.
func firstLine(res *mcp.CallToolResult) string {
	line, _, _ := strings.Cut(tools.ResultText(res), "\n")
	return line
}

// WithMetrics counts every tool call by tool and outcome in m.
func WithMetrics(m *metrics.Metrics) Option { return func(o *options) { o.metrics = m } }

// countCalls is the tool middleware of WithMetrics.
func countCalls(m *metrics.Metrics) server.ToolHandlerMiddleware {
	return func(next server.ToolHandlerFunc) server.ToolHandlerFunc {
		return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			start := time.Now()
			res, err := next(ctx, req)
			m.ToolCall(req.Params.Name, outcomeOf(res, err), time.Since(start))
			return res, err
		}
	}
}

// outcomeOf is how a tool call ended: ok, tool_error, input_required or
// protocol_error.
func outcomeOf(res *mcp.CallToolResult, err error) string {
	switch {
	case err != nil:
		return "protocol_error"
	case res != nil && res.IsError:
		return "tool_error"
	case res != nil && len(res.InputRequests) > 0:
		return "input_required"
	}
	return "ok"
}

// WithToolFilter offers only the tools keep accepts (the read-only mode,
// an allowlist of tool names). The instructions then say which tools are
// offered, since each toolset's paragraph names all of its own.
func WithToolFilter(keep func(mcp.Tool) bool) Option { return func(o *options) { o.keep = keep } }

// ReadOnly accepts the tools that spend nothing: those annotated read-only.
func ReadOnly(t mcp.Tool) bool {
	return t.Annotations.ReadOnlyHint != nil && *t.Annotations.ReadOnlyHint
}

// ToolNames returns the names of every tool of sets, in order, for
// checking a configured allowlist.
func ToolNames(sets []tools.Toolset) []string {
	var names []string
	for _, ts := range sets {
		for _, t := range ts.Tools(nil) {
			names = append(names, t.Tool.Name)
		}
	}
	return names
}

// WithTasks lets task-capable hosts call the tools that take them (such as
// run_prompt) as MCP tasks. Offer it only where the server has a single
// client (stdio): mcp-go v1.2.1 sends every task's status notifications to
// every session and, without a session (stateless HTTP), lets every caller
// list every task.
func WithTasks() Option { return func(o *options) { o.tasks = true } }

// New builds the MCP server with every toolset's tools and instructions.
func New(version string, sets []tools.Toolset, opts ...Option) *server.MCPServer {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if len(o.mediaOrigins) == 0 {
		o.mediaOrigins = DefaultMediaOrigins
	}
	hooks := &server.Hooks{}
	// A request delivered twice (an HTTP-level retry) must not start a
	// second paid run: the tools see the session and JSON-RPC id.
	hooks.AddBeforeCallTool(tools.NoteRequestID)
	serverOpts := []server.ServerOption{}
	if o.metrics != nil {
		serverOpts = append(serverOpts, server.WithToolHandlerMiddleware(countCalls(o.metrics)))
	}
	if o.trace != nil {
		serverOpts = append(serverOpts, server.WithToolHandlerMiddleware(traceCalls(o.trace, redactors(sets))))
	}
	serverOpts = append(serverOpts,
		server.WithIcons(Icon),
		server.WithTitle("BetterPrompt"),
		server.WithToolCapabilities(toolsChange(sets)),
		server.WithRecovery(),
		server.WithHooks(hooks),
	)
	var tasks *tools.Tasks
	if o.tasks {
		tasks = &tools.Tasks{}
		hooks.AddBeforeCallTool(tasks.Prepare)
		serverOpts = append(serverOpts,
			// Tasks can be listed but not cancelled: an upstream run cannot
			// be cancelled, and a task's wait is detached from its request.
			server.WithTaskCapabilities(true, false, true),
			server.WithMaxConcurrentTasks(maxActiveTasks),
		)
	}
	var offered []server.ServerTool
	var names []string
	var templates []server.ServerResourceTemplate
	var prompts []server.ServerPrompt
	dropped := false
	instr := make([]string, 0, len(sets))
	for _, ts := range sets {
		declared := ts.Tools(tasks)
		instr = append(instr, ts.Instructions()) // after Tools: it may say what Tools learnt
		if rs, ok := ts.(tools.ResourceSource); ok {
			templates = append(templates, rs.ResourceTemplates()...)
		}
		if ps, ok := ts.(tools.PromptSource); ok {
			prompts = append(prompts, ps.Prompts()...)
		}
		for _, t := range declared {
			if o.keep != nil && !o.keep(t.Tool) {
				dropped = true
				continue
			}
			offered = append(offered, t)
			names = append(names, t.Tool.Name)
		}
	}
	if dropped {
		instr = append(instr, "This server's configuration offers only these tools: "+strings.Join(names, ", ")+
			". Tools named above that are not in this list are not available here; do not try to call them.")
	}
	serverOpts = append(serverOpts, server.WithInstructions(strings.Join(instr, "\n\n")))
	if len(templates) > 0 || showsRuns(offered) {
		serverOpts = append(serverOpts, server.WithResourceCapabilities(false, false))
	}
	if len(prompts) > 0 {
		serverOpts = append(serverOpts, server.WithPromptCapabilities(false))
	}
	serverOpts = append(serverOpts, listCacheHints(toolsChange(sets))...)
	s := server.NewMCPServer(Name, version, serverOpts...)
	s.AddTools(offered...)
	s.AddResourceTemplates(templates...)
	if showsRuns(offered) {
		s.AddResources(viewer.Resource(o.mediaOrigins))
	}
	// A prompt that asks for a tool this configuration does not offer is
	// not offered either (prompts are named after their tools).
	s.AddPrompts(slices.DeleteFunc(prompts, func(p server.ServerPrompt) bool { return !slices.Contains(names, p.Prompt.Name) })...)
	return s
}

//go:embed icon.svg
var iconSVG []byte

// Icon is the server's icon (serverInfo.icons): a small embedded SVG. The
// tools carry none: an icon on each would grow tools/list, which goes into
// every agent's context, by a fifth.
var Icon = mcp.Icon{Src: "data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(iconSVG),
	MIMEType: "image/svg+xml", Sizes: []string{"any"}}

// listCacheHints tell 2026-07-28 clients how long they may reuse the
// lists (SEP-2549): they are the same for every caller and change only at
// a restart, or when pin_prompt adds a tool (which it announces). Reads of
// resources carry no hint: a run is a caller's own and changes.
func listCacheHints(toolsChange bool) []server.ServerOption {
	ttl := int64(time.Hour / time.Millisecond)
	tools := ttl
	if toolsChange {
		tools = int64(time.Minute / time.Millisecond)
	}
	return []server.ServerOption{
		server.WithMethodCacheHints(mcp.MethodToolsList, tools, mcp.CacheScopePublic),
		server.WithMethodCacheHints(mcp.MethodPromptsList, tools, mcp.CacheScopePublic),
		server.WithMethodCacheHints(mcp.MethodResourcesList, ttl, mcp.CacheScopePublic),
		server.WithMethodCacheHints(mcp.MethodResourcesTemplatesList, ttl, mcp.CacheScopePublic),
	}
}

// showsRuns reports whether a tool shows its results in the run viewer,
// which the server must then serve.
func showsRuns(offered []server.ServerTool) bool {
	return slices.ContainsFunc(offered, func(t server.ServerTool) bool {
		if t.Tool.Meta == nil {
			return false
		}
		ui, _ := t.Tool.Meta.AdditionalFields["ui"].(map[string]any)
		return ui["resourceUri"] == viewer.URI
	})
}

// WithMediaOrigins names the origins the run viewer loads images and
// videos from, for its content security policy (DefaultMediaOrigins when
// not given).
func WithMediaOrigins(origins ...string) Option {
	return func(o *options) { o.mediaOrigins = append(o.mediaOrigins, origins...) }
}

// DefaultMediaOrigins are where BetterPrompt and BetterWaifu outputs are
// served from, as far as their documentation and answers show.
var DefaultMediaOrigins = []string{"https://*.betterprompt.me", "https://betterprompt.me", "https://*.betterwaifu.com",
	"https://betterwaifu.com"}

// toolsChange reports whether a toolset may add tools while the server
// runs.
func toolsChange(sets []tools.Toolset) bool {
	for _, ts := range sets {
		if tc, ok := ts.(tools.ToolsChanger); ok && tc.ChangesTools() {
			return true
		}
	}
	return false
}

// beginShutdown tells every toolset that the server stops: calls waiting
// for runs must answer within answerWithin.
func beginShutdown(sets []tools.Toolset, answerWithin time.Duration) {
	for _, set := range sets {
		set.BeginShutdown(answerWithin)
	}
}

// maxActiveTasks bounds the task calls running at once.
const maxActiveTasks = 256
