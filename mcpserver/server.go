// Package mcpserver assembles the MCP server: the mcp-go server with the
// tools and instructions of each toolset, the stdio transport, and the Streamable
// HTTP transport with its security middleware. main only reads the
// configuration and calls into it; tests drive the same code.
package mcpserver

import (
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/tools"
)

// Name is the server's name in the MCP handshake.
const Name = "betterprompt"

// Option configures New.
type Option func(*options)

type options struct {
	tasks bool
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
	instr := make([]string, len(sets))
	for i, ts := range sets {
		instr[i] = ts.Instructions()
	}
	hooks := &server.Hooks{}
	// A request delivered twice (an HTTP-level retry) must not start a
	// second paid run: the tools see the session and JSON-RPC id.
	hooks.AddBeforeCallTool(tools.NoteRequestID)
	serverOpts := []server.ServerOption{
		server.WithTitle("BetterPrompt"),
		server.WithToolCapabilities(false),
		server.WithInstructions(strings.Join(instr, "\n\n")),
		server.WithRecovery(),
		server.WithHooks(hooks),
	}
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
	s := server.NewMCPServer(Name, version, serverOpts...)
	for _, ts := range sets {
		s.AddTools(ts.Tools(tasks)...)
	}
	return s
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
