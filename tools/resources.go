package tools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// ResourceSource is implemented by a Toolset that also offers resources.
// The server asks for them after Tools.
type ResourceSource interface {
	ResourceTemplates() []server.ServerResourceTemplate
}

// ToolsChanger is implemented by a Toolset that may add tools while the
// server runs; the server then declares tools.listChanged.
type ToolsChanger interface {
	ChangesTools() bool
}

// PromptSource is implemented by a Toolset that also offers MCP prompts.
// The server asks for them after Tools.
type PromptSource interface {
	Prompts() []server.ServerPrompt
}

// ToolResource is a resource template read through a read-only tool: its
// URI's variables are the tool's arguments (with fixed ones added), and
// the resource is the tool's structuredContent as JSON. The tool's own
// checks, wording and redaction apply; a tool error is the read's error.
func ToolResource(template mcp.ResourceTemplate, tool server.ServerTool, fixed map[string]any) server.ServerResourceTemplate {
	return server.ServerResourceTemplate{Template: template, Handler: func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		args := map[string]any{}
		for k, v := range req.Params.Arguments {
			if s, ok := v.([]string); ok { // a list variable: the first value
				if len(s) == 0 {
					continue
				}
				v = s[0]
			}
			args[k] = v
		}
		for k, v := range fixed {
			args[k] = v
		}
		call := mcp.CallToolRequest{}
		call.Params.Name, call.Params.Arguments = tool.Tool.Name, args
		res, err := tool.Handler(ctx, call)
		if err != nil {
			return nil, err
		}
		if res.IsError {
			return nil, errors.New(ResultText(res))
		}
		body, err := json.MarshalIndent(res.StructuredContent, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", req.Params.URI, err)
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "application/json", Text: string(body)}}, nil
	}}
}

// ResultText joins a tool result's text content, one item a line.
func ResultText(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if t, ok := c.(mcp.TextContent); ok {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, "\n")
}
