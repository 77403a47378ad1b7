package betterprompt

import (
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/bpmcp/bpmcp/tools"
)

// ResourceTemplates offers a prompt and a run as resources, read through
// get_prompt and get_run (with no wait), so that a host can attach them
// to a conversation: betterprompt://prompts/{prompt_id} (its price, type,
// input schema and run options) and betterprompt://runs/{run_id} (its
// status and outputs).
func (d *Toolset) ResourceTemplates() []server.ServerResourceTemplate {
	return []server.ServerResourceTemplate{
		tools.ToolResource(mcp.NewResourceTemplate("betterprompt://prompts/{prompt_id}", "BetterPrompt prompt",
			mcp.WithTemplateDescription("A published prompt: its title, price (estimated_credits), type, input_schema "+
				"and run_options_schema, as get_prompt returns them. prompt_id is an id, a slug or a page link."),
			mcp.WithTemplateMIMEType("application/json")), getPrompt(d), nil),
		tools.ToolResource(mcp.NewResourceTemplate("betterprompt://runs/{run_id}", "BetterPrompt run",
			mcp.WithTemplateDescription("A run of this key: its status, outputs (URLs last 24 h), credits and expiry, as "+
				"get_run returns them without waiting."),
			mcp.WithTemplateMIMEType("application/json")), getRun(d), map[string]any{"wait_seconds": 0}),
	}
}
