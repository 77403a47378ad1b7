// Package mcpserver assembles the BetterPrompt MCP server: the mcp-go server
// with its tools and instructions, the stdio transport, and the Streamable
// HTTP transport with its security middleware. main only reads the
// configuration and calls into it; tests drive the same code.
package mcpserver

import (
	"context"
	"io"
	"log"

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

// New builds the MCP server with every tool registered.
func New(version string, deps *tools.Deps) *server.MCPServer {
	instr := instructions
	if deps.Sandbox {
		instr += sandboxInstructions
	}
	s := server.NewMCPServer(Name, version,
		server.WithTitle("BetterPrompt"),
		server.WithToolCapabilities(false),
		server.WithInstructions(instr),
		server.WithRecovery(),
		// Tasks can be listed but not cancelled: BetterPrompt cannot cancel
		// a run, and a task's wait is detached from its request.
		server.WithTaskCapabilities(true, false, true),
	)
	s.AddTools(tools.All(deps)...)
	return s
}

// ServeStdio serves MCP over stdin and stdout until ctx ends or the input
// closes. Nothing else may write to out.
func ServeStdio(ctx context.Context, s *server.MCPServer, in io.Reader, out io.Writer, stderr io.Writer) error {
	ss := server.NewStdioServer(s)
	// Tool calls run on a worker pool; size it for many concurrent runs,
	// since each run_prompt call occupies a worker while it waits.
	server.WithWorkerPoolSize(100)(ss) // mcp-go's maximum; above the default wait limit per key (64)
	server.WithQueueSize(1000)(ss)
	ss.SetErrorLogger(log.New(stderr, "mcp: ", 0))
	return ss.Listen(ctx, in, out)
}
