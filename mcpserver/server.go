// Package mcpserver assembles the BetterPrompt MCP server: the mcp-go server
// with its tools and instructions, the stdio transport, and the Streamable
// HTTP transport with its security middleware. main only reads the
// configuration and calls into it; tests drive the same code.
package mcpserver

import (
	"github.com/bpmcp/bpmcp/tools"
	"github.com/mark3labs/mcp-go/server"
)

// Name is the server's name in the MCP handshake.
const Name = "betterprompt"

// instructions tell the agent the workflow; hosts show them to the model.
const instructions = `BetterPrompt runs published prompts from its marketplace and returns their text, image and video outputs.
Workflow: search_prompts (find a prompt; note its prompt_id) → get_prompt (read input_schema: the exact inputs it needs) → run_prompt (spends credits; inputs are checked first) → get_run (only when run_prompt answered before the run finished: pass its run_id).
Image and video outputs are URLs that expire 24 hours after generation: show them to the user. Runs cannot be cancelled. get_credits shows the balance.`

const sandboxInstructions = "\nSANDBOX MODE: this server runs against a simulated BetterPrompt API. Outputs are canned examples, not real generations; the credits shown are a simulated balance, and no real account is touched."

// Option configures New.
type Option func(*options)

type options struct{ tasks bool }

// WithTasks lets task-capable hosts call run_prompt as an MCP task. Offer
// it only where the server has a single client (stdio): mcp-go v1.2.1 sends
// every task's status notifications to every session and, without a
// session (stateless HTTP), lets every caller list every task.
func WithTasks() Option { return func(o *options) { o.tasks = true } }

// New builds the MCP server with every tool registered.
func New(version string, deps *tools.Deps, opts ...Option) *server.MCPServer {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	instr := instructions
	if deps.Sandbox {
		instr += sandboxInstructions
	}
	deps.TaskCalls = o.tasks
	hooks := &server.Hooks{}
	// A request delivered twice (an HTTP-level retry) must not start a
	// second paid run: the tools see the session and JSON-RPC id.
	hooks.AddBeforeCallTool(tools.NoteRequestID)
	serverOpts := []server.ServerOption{
		server.WithTitle("BetterPrompt"),
		server.WithToolCapabilities(false),
		server.WithInstructions(instr),
		server.WithRecovery(),
		server.WithHooks(hooks),
	}
	if o.tasks {
		hooks.AddBeforeCallTool(deps.PrepareTaskCall)
		serverOpts = append(serverOpts,
			// Tasks can be listed but not cancelled: BetterPrompt cannot
			// cancel a run, and a task's wait is detached from its request.
			server.WithTaskCapabilities(true, false, true),
			server.WithMaxConcurrentTasks(maxActiveTasks),
		)
	}
	s := server.NewMCPServer(Name, version, serverOpts...)
	s.AddTools(tools.All(deps)...)
	return s
}

// maxActiveTasks bounds the task calls running at once.
const maxActiveTasks = 256
